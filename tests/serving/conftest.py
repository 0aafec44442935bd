"""Serving fixtures: a workspace with registered models, and `driftline serve` processes.

The workspace (``build_workspace``) registers the model ``churn``:

- v1 ``picky``: a logistic regression wrapped in a PythonModel that raises
  ``ZeroDivisionError`` when ``f0 == 13`` and waits ``f1`` seconds when ``f0 == 7``
  (a slow request, for load shedding); ``@champion`` at first;
- v2 a plain scikit-learn logistic regression;
- v3 ``broken``: raises on every input, so it fails its warm-up and is never swapped in.

Inputs are four double columns ``f0..f3``.
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

FEATURES = ["f0", "f1", "f2", "f3"]


def _data(seed: int = 0) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(200, 4)), columns=FEATURES)
    y = (x["f0"] + 0.5 * x["f1"] > 0).astype(int)
    return x, y


def _python_models() -> tuple[type, type]:
    """Classes defined in a function, so cloudpickle saves them by value (a serving
    process cannot import this test module)."""
    import driftline as dl

    class Picky(dl.models.PythonModel):  # type: ignore[name-defined,misc]
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def predict(self, context: Any, model_input: Any) -> Any:
            import time as _time

            if (model_input["f0"] == 13).any():
                raise ZeroDivisionError("f0 == 13 is unlucky")
            slow = model_input["f0"] == 7
            if slow.any():
                _time.sleep(float(model_input["f1"][slow].iloc[0]))
            return self.inner.predict(model_input)

    class Broken(dl.models.PythonModel):  # type: ignore[name-defined,misc]
        def predict(self, context: Any, model_input: Any) -> Any:
            raise RuntimeError("this version cannot predict")

    return Picky, Broken


def build_workspace(home: Path, uri: str | None = None) -> dict[str, Any]:
    """Register churn v1 (picky, @champion), v2 (sklearn), v3 (broken) in a workspace."""
    from sklearn.linear_model import LogisticRegression

    import driftline as dl

    overrides: dict[str, Any] = {"home": home, "capture_environment": False}
    if uri:
        overrides["uri"] = uri
    dl.configure(**overrides)
    x, y = _data()
    picky_cls, broken_cls = _python_models()
    lr1 = LogisticRegression().fit(x, y)
    lr2 = LogisticRegression(C=0.01).fit(x, -y + 1)  # predicts the opposite: easy to tell
    with dl.start_run(experiment="serving-tests") as run:
        dl.models.log_model(picky_cls(lr1), "picky", input_example=x.head(3))
        dl.models.log_model(lr2, "sklearn", input_example=x.head(3))
        signature = dl.models.load(f"runs:/{run.id}/sklearn").signature
        # An explicit signature: logging does not run the model on the example.
        dl.models.log_model(broken_cls(), "broken", signature=signature, input_example=x.head(3))
    versions = {
        name: dl.register_model(f"runs:/{run.id}/{name}", "churn").version
        for name in ("picky", "sklearn", "broken")
    }
    dl.registry.set_alias("churn", "champion", versions["picky"])
    settings = dl.get_workspace().settings
    dl.get_workspace().close()
    return {"versions": versions, "settings": settings, "x": x}


class ServeProcess:
    """A `driftline serve` process on loopback."""

    def __init__(self, home: Path, model: str, *args: str, uri: str | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "driftline.cli", "--home", str(home)]
        if uri:
            command += ["--uri", uri]
        command += ["serve", model, "--port", str(self.port), "--poll-interval", "0.2", *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home
            )

    def wait_ready(self, timeout: float = 60.0) -> ServeProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"driftline serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"driftline serve did not start: {self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


@pytest.fixture(scope="session")
def sqlite_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace on SQLite with the three churn versions (built once; tests that move
    aliases use a workspace of their own)."""
    home = tmp_path_factory.mktemp("serving") / ".driftline"
    built = build_workspace(home)
    reset_default_workspace()
    built["home"] = home
    return built


@pytest.fixture(scope="session")
def server(sqlite_home: dict[str, Any]) -> Iterator[ServeProcess]:
    """`driftline serve churn@champion`, one worker, no batching, small limits."""
    proc = ServeProcess(
        sqlite_home["home"], "churn@champion", "--max-rows", "100", "--max-body-kb", "64"
    )
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()
