"""The pipeline and the driver process the retraining engine's tests use.

``engine_retrain`` trains a logistic regression on ``dataset`` and registers it as
``churn``; ``mode`` makes it fail (``fail``) or register a model that cannot be loaded
again (``broken``: its ``load_context`` raises once the step has registered it). With
``gate`` (a folder) the step first writes ``started`` there and blocks until the test
creates ``go``: a driver can be killed while the cycle trains.

``drive.py HOME TTL run|advance [KEY=VALUE ...]`` is a driver in its own process: it
triggers a cycle of ``churn`` and drives it (``run``) or advances the open one
(``advance``), with a cycle lease of TTL seconds, and prints the cycle as JSON.
"""

from __future__ import annotations

PIPELINES = """\
import os
import time
from pathlib import Path

import driftline as dl
from driftline.models import PythonModel
from sklearn.linear_model import LogisticRegression


class Broken(PythonModel):
    def __init__(self, marker):
        self.marker = marker

    def load_context(self, context):
        if Path(self.marker).exists():
            raise RuntimeError("its weights file is gone")

    def predict(self, context, model_input):
        return [0.5] * len(model_input)


@dl.step
def fit(dataset: str, gate: str, mode: str) -> int:
    if gate:
        Path(gate, "started").write_text(str(os.getpid()))
        deadline = time.monotonic() + 300
        while not Path(gate, "go").exists():  # the test lets it go, or kills the driver
            if time.monotonic() > deadline:
                raise RuntimeError("the test never let the step go")
            time.sleep(0.02)
    if mode == "fail":
        raise RuntimeError("training diverged")
    frame = dl.data.get(dataset).to_pandas()
    x, y = frame[["f0", "f1", "f2"]], frame["label"]
    dl.log_input(dl.data.get(dataset))
    if mode == "broken":
        marker = Path.cwd() / "broken.marker"
        dl.models.log_model(Broken(str(marker)), "model", input_example=x.head(3))
        version = dl.register_model(f"runs:/{dl.active_run().id}/model", "churn").version
        marker.write_text("gone")
        return version
    model = LogisticRegression().fit(x, y)
    dl.models.log_model(model, "model", input_example=x.head(3))
    return dl.register_model(f"runs:/{dl.active_run().id}/model", "churn").version


@dl.pipeline
def engine_retrain(dataset: str = "customers@latest", gate: str = "", mode: str = "good"):
    return fit(dataset, gate, mode)
"""

DRIVER = """\
import json
import sys

import driftline as dl
from driftline.retraining import RetrainingService

home, ttl, mode, *pairs = sys.argv[1:]
dl.configure(home=home, capture_environment=False, async_logging=False)
ws = dl.get_workspace()
loop = ws.service("retraining", RetrainingService).cycles
loop.lease_ttl = float(ttl)
if mode == "run":
    payload = dict(pair.split("=", 1) for pair in pairs)
    cycle = loop.run("churn", ws, payload=payload).cycle
else:
    cycle = loop.advance("churn", ws)
print(json.dumps(None if cycle is None else cycle.to_dict()))
"""
