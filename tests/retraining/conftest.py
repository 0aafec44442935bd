"""Lineage fixtures: a real git repository, training processes, a real `driftline serve`.

``project`` (built once per session) is a workspace plus a git repository in which

- ``train.py`` reads ``customers@<n>`` (``dl.log_input``), fits a logistic regression,
  logs ``C``, ``accuracy`` and the model, and registers it as ``churn``;
- ``driftline_pipelines.py`` defines the pipeline ``churn_training`` whose ``train``
  step does the same and registers ``churn_pipe``; ``run_pipeline.py`` runs it inside
  a tracked run (which is what records the commit the pipeline ran).

Versions: ``churn/1`` (clean commit), ``churn/2`` (trained with an uncommitted change
to ``train.py``, so the run is dirty and its diff recorded), ``churn_pipe/1``. Then
``driftline serve churn/1`` answers a few requests and is stopped (which writes the
prediction log).

``ws`` opens the workspace a test module builds once as its ``built`` fixture (see
``retrain_support.build_in``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

try:  # `python -m pytest` from the repository root, as CI runs it
    from tests.conftest import free_port, reset_default_workspace
except ImportError:  # pragma: no cover - only tests/ on sys.path
    from conftest import free_port, reset_default_workspace  # type: ignore[no-redef]

from driftline.workspace import Workspace

FEATURES = ["f0", "f1", "f2"]

TRAIN = """\
import sys

import driftline as dl
from sklearn.linear_model import LogisticRegression

C = 1.0
dataset = sys.argv[1]
with dl.start_run(experiment="churn", name="train") as run:
    version = dl.data.get(dataset)
    dl.log_input(version)
    frame = version.to_pandas()
    x, y = frame[["f0", "f1", "f2"]], frame["label"]
    model = LogisticRegression(C=C).fit(x, y)
    dl.log_params({"C": C, "dataset": dataset})
    dl.log_metric("accuracy", float(model.score(x, y)))
    dl.models.log_model(model, "model", input_example=x.head(3))
dl.register_model(f"runs:/{run.id}/model", "churn")
"""

PIPELINES = """\
import driftline as dl
from sklearn.linear_model import LogisticRegression


@dl.step
def train(dataset: str, C: float) -> float:
    version = dl.data.get(dataset)
    dl.log_input(version)
    frame = version.to_pandas()
    x, y = frame[["f0", "f1", "f2"]], frame["label"]
    model = LogisticRegression(C=C).fit(x, y)
    accuracy = float(model.score(x, y))
    dl.log_metric("accuracy", accuracy)
    dl.models.log_model(model, "model", input_example=x.head(3))
    dl.register_model(f"runs:/{dl.active_run().id}/model", "churn_pipe")
    return accuracy


@dl.pipeline
def churn_training(dataset: str = "customers@1", C: float = 0.5):
    return train(dataset, C)
"""

RUN_PIPELINE = """\
import driftline as dl
from driftline_pipelines import churn_training

with dl.start_run(experiment="churn-pipelines", name="launch"):
    churn_training.run(dataset="customers@1", C=0.5)
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def child_env(home: Path) -> dict[str, str]:
    """The environment of a process recording into the workspace at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env["DRIFTLINE_HOME"] = str(home)
    env["DRIFTLINE_ASYNC_LOGGING"] = "false"
    return env


def run_python(repo: Path, home: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, *args], cwd=repo, env=child_env(home), capture_output=True, timeout=240
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


class Serve:
    """`driftline serve` on loopback for one workspace."""

    def __init__(self, home: Path, model: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / f"serve-{self.port}.log"
        command = [
            sys.executable, "-m", "driftline.cli", "--home", str(home), "serve", model,
            "--port", str(self.port), "--poll-interval", "0.5",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home.parent
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"driftline serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"driftline serve did not start: {self.log.read_text()[-3000:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # closing writes the prediction log
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


def _customers(seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)
    frame["label"] = (frame["f0"] + 0.5 * frame["f1"] > 0).astype(int)
    return frame


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The workspace and repository described in the module docstring (built once)."""
    import driftline as dl

    root = tmp_path_factory.mktemp("lineage")
    home = root / "ws" / ".driftline"
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@driftline.invalid")
    git(repo, "config", "user.name", "driftline")
    (repo / "train.py").write_text(TRAIN)
    (repo / "driftline_pipelines.py").write_text(PIPELINES)
    (repo / "run_pipeline.py").write_text(RUN_PIPELINE)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "training code")
    first = git(repo, "rev-parse", "HEAD")

    dl.configure(home=home, capture_environment=False, async_logging=False)
    dl.data.commit("customers", _customers(0))
    dl.data.commit("customers", _customers(1))
    dl.get_workspace().close()
    reset_default_workspace()

    run_python(repo, home, "train.py", "customers@1")  # churn/1: a clean commit
    (repo / "train.py").write_text(TRAIN.replace("C = 1.0", "C = 0.25"))
    run_python(repo, home, "train.py", "customers@2")  # churn/2: uncommitted change
    git(repo, "checkout", "-q", "--", "train.py")
    run_python(repo, home, "run_pipeline.py")  # churn_pipe/1

    server = Serve(home, "churn/1")
    try:
        rows = {"f0": [0.1, -1.0], "f1": [0.2, 0.3], "f2": [0.0, 1.0]}
        given = httpx.post(
            f"{server.url}/predict",
            json={"inputs": rows},
            headers={"X-Request-ID": "req-given-by-client"},
            timeout=30,
        )
        assert given.status_code == 200, given.text
        generated = httpx.post(f"{server.url}/predict", json={"inputs": rows}, timeout=30)
        assert generated.status_code == 200, generated.text
    finally:
        server.stop()
    return {
        "home": home,
        "repo": repo,
        "commit": first,
        "client_id": "req-given-by-client",
        "generated_id": generated.headers["X-Request-ID"],
    }


@pytest.fixture
def ws(built: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """The test module's ``built`` workspace (see ``retrain_support.build_in``), opened
    from its folder; the default workspace is reset after the test."""
    from tests.retraining.retrain_support import work_in

    work_in(built["root"], monkeypatch)
    with Workspace.from_settings(built["settings"]) as workspace:
        yield workspace
    reset_default_workspace()


@pytest.fixture
def lineage_ws(project: dict[str, Any]) -> Any:
    """The project's workspace as the default one (closed after the test)."""
    import driftline as dl

    dl.configure(home=project["home"], capture_environment=False, async_logging=False)
    yield dl.get_workspace()
    reset_default_workspace()
