"""Prediction-log files for monitoring tests, written by serving's own writer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from driftline.serving.predlog import PredictionLog


def write_log(
    root: str,
    deployment: str,
    start: datetime,
    inputs: pd.DataFrame,
    outputs: np.ndarray,
    *,
    spacing: timedelta = timedelta(minutes=1),
    prefix: str = "r",
    rows_per_request: int = 1,
    version: int = 1,
    variant: str = "stable",
) -> list[str]:
    """Log one request per ``rows_per_request`` rows, ``spacing`` apart; their ids."""
    log = PredictionLog(root, deployment, flush_rows=1_000_000, capacity=10_000_000)
    ids: list[str] = []
    try:
        for k, lo in enumerate(range(0, len(inputs), rows_per_request)):
            hi = min(lo + rows_per_request, len(inputs))
            rid = f"{prefix}{k}"
            ids.append(rid)
            row: Sequence[Any] = (
                rid, "model", version, variant, start + k * spacing, "predict",
                inputs.iloc[lo:hi].reset_index(drop=True), outputs[lo:hi], hi - lo, 1.0, 200, None,
            )  # fmt: skip
            assert log.append(tuple(row))
    finally:
        log.close()
    assert log.stats()["dropped"] == 0
    return ids


def failed_request(root: str, deployment: str, when: datetime, rid: str) -> None:
    """Log one request that failed (status 500, no outputs)."""
    log = PredictionLog(root, deployment)
    log.append(
        (rid, "model", 1, "stable", when, "predict", {"x": [1.0]}, None, 1, 1.0, 500, "E: boom")
    )
    log.close()
