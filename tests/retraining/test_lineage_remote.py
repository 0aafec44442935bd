"""Lineage against a team server: the links come over HTTP, the log from a shared folder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import driftline as dl
from driftline.retraining import MAX_TRACE_DAYS


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


@pytest.mark.server
def test_the_server_bounds_a_trace_by_days_and_refuses_bad_ids(
    live_server: Any, tmp_path: Path, configure_default: Any
) -> None:
    import httpx
    from sklearn.linear_model import LogisticRegression

    from driftline.serving.predlog import PredictionLog

    live_server.reset()
    configure_default(uri=live_server.url, home=tmp_path / "client" / ".driftline")
    with dl.start_run(experiment="remote-window") as run:
        dl.models.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "model")
    version = dl.register_model(f"runs:/{run.id}/model", "remote_window")
    # The server's own prediction log: a client's id answered 30 days ago.
    log = PredictionLog(str(live_server.root / ".driftline" / "predictions"), "remote_window")
    log.append(("req-a-month-old", "remote_window", version.version, "stable",
                datetime.now(UTC) - timedelta(days=30), "predict", None, [1], 1, 2.0, 200,
                None))  # fmt: skip
    log.close()

    with pytest.raises(dl.NotFoundError, match=r"--days N") as missed:
        dl.trace("req-a-month-old")
    assert "remote workspace" in str(missed.value)
    found = dl.trace("req-a-month-old", deployment="remote_window", days=31)
    assert [p.request_id for p in found.predictions] == ["req-a-month-old"]
    assert found.versions[0].ref == f"remote_window/{version.version}"

    api = f"{live_server.url}/api/v1/retraining/trace"
    widened = httpx.get(f"{api}/req-a-month-old", params={"days": 31}, timeout=30)
    assert widened.status_code == 200, widened.text
    for path, params in (
        ("req-a-month-old", {"days": MAX_TRACE_DAYS + 1}),
        ("req-a-month-old", {"days": 0}),
        ("req-a-month-old", {"days": "a year"}),
        ("two%20words", {}),
        ("a/b", {}),
        ("x" * 129, {}),
    ):
        refused = httpx.get(f"{api}/{path}", params=params, timeout=30)
        assert refused.status_code == 400, (path, params, refused.text)
    over = httpx.get(f"{api}/req-a-month-old", params={"days": MAX_TRACE_DAYS + 1}, timeout=30)
    assert f"from 1 to {MAX_TRACE_DAYS}" in over.text
    assert "Invalid request id" in httpx.get(f"{api}/a/b", timeout=30).text


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
