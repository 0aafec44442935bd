"""Prediction-log traffic and a webhook receiver on loopback, for the monitor tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd

from driftline.serving.predlog import PredictionLog, prediction_root
from driftline.workspace import Workspace


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


class Receiver:
    """An HTTP server on 127.0.0.1 that answers 503 to the first ``fail`` POSTs."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.attempts = 0
        self.bodies: list[dict[str, Any]] = []
        self.keys: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                receiver.keys.append(self.headers.get("Idempotency-Key", ""))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@contextmanager
def receiver(fail: int = 0) -> Iterator[Receiver]:
    """A running :class:`Receiver`, shut down afterwards."""
    r = Receiver(fail)
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        thread.join(10)
