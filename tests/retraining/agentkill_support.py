"""The pipelines the killed-agent tests run, as the module ``kill_pipes`` in the test's
folder (the real ``driftline agent`` imports it from its working directory).

``kill_retrain`` trains a logistic regression on ``dataset`` and registers it as
``churn``. ``hold`` makes it wait at the gate folder ``gate`` until the test creates
``go`` there, after writing a file that says where it waits:

- ``training``: the step writes ``training`` and waits before fitting;
- ``evaluating``: the registered model's ``predict`` writes ``scoring`` and waits, once
  the step has armed it (``log_model`` also predicts, on the input example; that call
  must not wait): the cycle is then judging it.

``kill_busy`` (a pipeline a plain trigger runs) writes ``busy`` and waits: an agent
running it has not looked at retraining yet, so a cycle asked for meanwhile stays
``triggered``.
"""

from __future__ import annotations

PIPELINES = """\
import os
import time
from pathlib import Path

import pandas as pd

import driftline as dl
from driftline.models import PythonModel
from sklearn.linear_model import LogisticRegression

FEATURES = ["f0", "f1", "f2"]


def hold_at(gate, name):
    Path(gate, name).write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not Path(gate, "go").exists():  # the test lets it go, or kills the agent
        if time.monotonic() > deadline:
            raise RuntimeError("the test never let it go")
        time.sleep(0.02)


class Scoring(PythonModel):
    def __init__(self, model, gate):
        self.model = model
        self.gate = gate

    def predict(self, context, model_input):
        if Path(self.gate, "armed").exists():
            hold_at(self.gate, "scoring")
        return self.model.predict(model_input[FEATURES])

    @property
    def classes_(self):
        return self.model.classes_

    def predict_proba(self, rows):  # judged on roc_auc (given an array)
        return self.model.predict_proba(pd.DataFrame(rows, columns=FEATURES))


@dl.step
def fit(dataset: str, gate: str, hold: str) -> int:
    if hold == "training":
        hold_at(gate, "training")
    data = dl.data.get(dataset)
    frame = data.to_pandas()
    x, y = frame[FEATURES], frame["label"]
    dl.log_input(data)
    model = LogisticRegression().fit(x, y)
    if hold == "evaluating":
        dl.models.log_model(Scoring(model, gate), "model", input_example=x.head(3))
    else:
        dl.models.log_model(model, "model", input_example=x.head(3))
    version = dl.register_model(f"runs:/{dl.active_run().id}/model", "churn").version
    if hold == "evaluating":
        Path(gate, "armed").write_text("")
    return version


@dl.pipeline
def kill_retrain(dataset: str = "customers@latest", gate: str = "", hold: str = ""):
    return fit(dataset, gate, hold)


@dl.step
def wait(gate: str) -> int:
    hold_at(gate, "busy")
    return 0


@dl.pipeline
def kill_busy(gate: str = ""):
    return wait(gate)
"""
