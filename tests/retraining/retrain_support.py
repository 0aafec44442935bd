"""A small workspace for retraining-policy tests: data, a model, a deployment, a monitor,
and a pipeline module in the test's folder that trains and registers a challenger.

A test module builds its workspace once with :func:`build_in` (its ``built`` fixture);
the ``ws`` fixture of ``conftest.py`` opens it for each test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.conftest import reset_default_workspace

if TYPE_CHECKING:
    from driftline.retraining.loop import Retrainer
    from driftline.workspace import Workspace

FEATURES = ["f0", "f1", "f2"]

#: A policy with a trigger of each kind (the policy tests parse it, the REST tests apply it).
FULL_POLICY = """\
model: churn
deployment: churn
triggers:
  - drift: {monitor: churn-prod, columns: any, min_share: 0.3}
  - new_data: {dataset: customers}
  - schedule: {cron: "0 3 * * 0"}
pipeline: {name: retrain_churn, module: retrain_pipes, params: {dataset: "{trigger.dataset}"}}
evaluate: {data: recent_labelled, window: 14d, fallback: customers@latest, metric: roc_auc}
challenger_must_beat: {metric: roc_auc, by: 0.0, confidence: 0.95}
approvals: 0
rollout: direct
cooldown: 6h
max_cycles_per_day: 4
"""


def edited(text: str, *changes: tuple[str, str]) -> str:
    """``text`` (a policy) with each ``(old, new)`` of ``changes`` made, in order; an
    ``old`` the text lacks fails the test (a policy text changed since would otherwise
    leave the test checking a policy it did not mean to)."""
    for old, new in changes:
        assert old in text, f"{old!r} is not in the text to edit:\n{text}"
        text = text.replace(old, new)
    return text


PIPELINES = """\
import driftline as dl
from sklearn.linear_model import LogisticRegression


@dl.step
def train(dataset: str, C: float, flip: bool) -> int:
    frame = dl.data.get(dataset).to_pandas()
    x, y = frame[["f0", "f1", "f2"]], frame["label"]
    model = LogisticRegression(C=C).fit(x, (1 - y) if flip else y)
    dl.log_input(dl.data.get(dataset))
    dl.models.log_model(model, "model", input_example=x.head(3))
    return dl.register_model(f"runs:/{dl.active_run().id}/model", "churn").version


@dl.pipeline
def retrain_churn(dataset: str = "customers@latest", C: float = 1.0, flip: bool = False):
    return train(dataset, C, flip)
"""


def customers(seed: int, rows: int = 300) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=FEATURES)
    frame["label"] = (frame["f0"] + 0.5 * frame["f1"] > 0).astype(int)
    return frame


def build(home: Path, **settings: Any) -> dict[str, Any]:
    """churn/1 (a weak model, @champion) behind deployment ``churn``; monitor ``churn-prod``.

    ``settings``: more of the workspace's settings (a server's ``uri``, ``artifact_root``).
    """
    from sklearn.linear_model import LogisticRegression

    import driftline as dl
    from driftline.serving import DeploymentService

    dl.configure(home=home, capture_environment=False, async_logging=False, **settings)
    dl.data.commit("customers", customers(0))
    frame = customers(1)
    x, y = frame[FEATURES], frame["label"]
    # A weak champion: fitted on shuffled labels, so a trained challenger beats it.
    weak = LogisticRegression().fit(x, y.sample(frac=1.0, random_state=3).to_numpy())
    with dl.start_run(experiment="retrain-tests") as run:
        dl.models.log_model(weak, "model", input_example=x.head(3))
    dl.register_model(f"runs:/{run.id}/model", "churn")
    dl.registry.set_alias("churn", "champion", 1)
    ws = dl.get_workspace()
    ws.service("serving", DeploymentService).apply(
        {"name": "churn", "model": "churn", "stable": "champion"}
    )
    _traffic(ws.service("serving", DeploymentService).prediction_root)
    dl.monitoring.create_monitor("churn-prod", deployment="churn", checks=["drift"])
    settings = ws.settings
    ws.close()
    return {"settings": settings}


def _traffic(root: str, rows: int = 5) -> None:
    """A few logged predictions (a monitor needs a deployment with traffic)."""
    from datetime import UTC, datetime, timedelta

    from driftline.serving.predlog import PredictionLog

    log = PredictionLog(root, "churn", flush_rows=10**6, flush_seconds=3600)
    at = datetime.now(UTC) - timedelta(hours=1)
    for i in range(rows):
        at += timedelta(milliseconds=1)
        log.append(
            (f"req-{i}", "churn", 1, "stable", at, "predict", {"f0": [1.0], "f1": [0.0],
             "f2": [0.0]}, [i % 2], 1, 2.0, 200, None)
        )  # fmt: skip
    log.close()


def build_in(
    tmp_path_factory: pytest.TempPathFactory, name: str, files: Mapping[str, str], **settings: Any
) -> dict[str, Any]:
    """:func:`build` in a new folder ``name`` that also holds ``files`` (file name -> text:
    the pipeline modules a policy names). Returns the settings, ``root`` and ``home``."""
    root = tmp_path_factory.mktemp(name)
    for file, text in files.items():
        (root / file).write_text(text)
    found = build(root / ".driftline", **settings)
    reset_default_workspace()
    return {**found, "root": root, "home": root / ".driftline"}


def work_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from ``folder`` with its modules importable, as a policy's pipeline module is
    found: in the working directory of the process that runs the cycle."""
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))


def cli(built: Mapping[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """``driftline --home <built home> ARGS`` in a process of its own, from the built root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "--home", str(built["home"]), *args],
        cwd=built["root"], env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def cycles(ws: Workspace) -> Retrainer:
    """The workspace's retraining loop."""
    from driftline.retraining import RetrainingService

    return ws.service("retraining", RetrainingService).cycles


def champion(ws: Workspace, alias: str = "champion") -> int:
    """The version of ``churn`` that ``alias`` points to."""
    return ws.registry.get_model("churn").aliases[alias]
