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
