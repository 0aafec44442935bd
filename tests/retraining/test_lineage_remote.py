"""Lineage against a team server: the links come over HTTP, the log from a shared folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import driftline as dl


@pytest.mark.server
def test_trace_and_maturity_work_against_a_server(
    live_server: Any, tmp_path: Path, configure_default: Any
) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from driftline.serving.predlog import PredictionLog

    live_server.reset()
    configure_default(uri=live_server.url, home=tmp_path / "client" / ".driftline")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(100, 2)), columns=["f0", "f1"])
    frame["label"] = (frame["f0"] > 0).astype(int)
    data = dl.data.commit("remote_points", frame)
    with dl.start_run(experiment="remote", name="fit") as run:
        dl.log_input(data)
        dl.log_params({"C": 1.0})
        model = LogisticRegression().fit(frame[["f0", "f1"]], frame["label"])
        dl.log_metric("accuracy", float(model.score(frame[["f0", "f1"]], frame["label"])))
        dl.models.log_model(model, "model")
    version = dl.register_model(f"runs:/{run.id}/model", "remote_churn")

    # The serving process's log, in a folder this client can read (a shared store).
    shared = tmp_path / "shared-predictions"
    log = PredictionLog(str(shared), "remote_churn")
    log.append(("req-1", "remote_churn", version.version, "stable", datetime.now(UTC),
                "predict", None, [1], 1, 2.0, 200, None))  # fmt: skip
    log.close()

    with pytest.raises(dl.NotFoundError, match="remote workspace"):
        dl.trace("req-1")  # the workspace's own log folder is not where the server wrote
    found = dl.trace("req-1", log_root=str(shared))
    (lineage,) = found.versions
    assert lineage.ref == f"remote_churn/{version.version}"
    assert lineage.run is not None
    assert lineage.run.id == run.id
    assert lineage.run.params == {"C": "1.0"}
    assert [i.ref for i in lineage.run.inputs] == ["remote_points@1"]
    assert lineage.missing == ("code commit",)  # this client records no git state

    (assessed,) = dl.maturity("remote_churn", log_root=str(shared))
    checks = {c.name: c for c in assessed.checks}
    assert checks["served"].evidence == "answered as stable"
    assert checks["tracked_runs"].present
    assert checks["data_versions"].present
    assert checks["audit"].present
    assert "not visible from a remote workspace" in checks["monitoring"].evidence


SCRIPT = """\
import driftline as dl
from sklearn.linear_model import LogisticRegression

with dl.start_run(experiment="remote-repro") as run:  # a random name
    x = [[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]]
    y = [0, 1, 0, 1]
    model = LogisticRegression().fit(x, y)
    dl.log_params({"solver": "lbfgs"})
    dl.log_metric("accuracy", float(model.score(x, y)))
    dl.models.log_model(model, "model", input_example=[[0.5, 0.5]])
dl.register_model(f"runs:/{run.id}/model", "remote_repro")
"""


@pytest.mark.server
def test_reproduce_against_a_server_records_the_rerun_there(
    live_server: Any, tmp_path: Path, configure_default: Any
) -> None:
    import os
    import subprocess
    import sys

    live_server.reset()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "fit.py").write_text(SCRIPT)
    for args in (
        ("init", "-q"),
        ("add", "fit.py"),
        ("-c", "user.name=d", "-c", "user.email=d@driftline.invalid", "commit", "-qm", "fit"),
    ):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env |= {"DRIFTLINE_URI": live_server.url, "DRIFTLINE_HOME": str(tmp_path / "trainer")}
    done = subprocess.run(
        [sys.executable, "fit.py"], cwd=repo, env=env, capture_output=True, timeout=240
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]

    configure_default(uri=live_server.url, home=tmp_path / "client" / ".driftline")
    report = dl.reproduce("remote_repro/1", repo=repo)
    assert report.code == "recorded commit"
    assert report.predictions_match is True
    assert report.reproduced
    assert dl.get_run(report.reproduced_run).params == {"solver": "lbfgs"}
    # The re-run did what the script does, against the server: it registered version 2.
    assert sorted(v.version for v in dl.registry.list_versions("remote_repro")) == [1, 2]
