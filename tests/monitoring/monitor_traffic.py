"""Prediction-log traffic for the monitor tests (and the shared webhook receiver)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from driftline.serving.predlog import PredictionLog, prediction_root
from driftline.workspace import Workspace

try:  # `python -m pytest` from the repository root, as CI runs it
    from tests.conftest import webhook_receiver as receiver
except ImportError:  # pragma: no cover - only tests/ on sys.path
    from conftest import webhook_receiver as receiver  # type: ignore[no-redef]

__all__ = ["frame", "receiver", "write_traffic"]


def frame(n: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    """Three numeric columns and one categorical; ``shift`` moves ``age`` by that many sd."""
    r = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": r.normal(40.0, 10.0, n) + shift * 10.0,
            "income": r.lognormal(10.0, 0.5, n),
            "visits": r.poisson(3.0, n).astype(np.int64),
            "plan": r.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1]),
        }
    )


def write_traffic(
    ws: Workspace,
    deployment: str,
    data: pd.DataFrame,
    *,
    at: datetime,
    model: str = "churn",
    version: int = 1,
    per_request: int = 50,
    spread: timedelta = timedelta(minutes=30),
) -> int:
    """Log ``data`` as requests of ``per_request`` rows between ``at - spread`` and ``at``."""
    root = prediction_root(ws.settings.home, ws.settings.artifact_root)
    plog = PredictionLog(root, deployment, flush_rows=10_000, flush_seconds=60)
    chunks = [data.iloc[i : i + per_request] for i in range(0, len(data), per_request)]
    for i, chunk in enumerate(chunks):
        when = at - spread + spread * (i / max(len(chunks), 1))
        plog.append(
            (f"r-{deployment}-{at.timestamp()}-{i}", model, version, "stable", when, "predict",
             chunk, [0.5] * len(chunk), len(chunk), 1.0, 200, None)
        )  # fmt: skip
    plog.close()
    assert plog.stats()["written"] == len(chunks)
    return len(chunks)
