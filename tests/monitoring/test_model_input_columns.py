"""Checks compare only the model's input columns: a reference fitted on training data
also holds the target, which no request carries, and must not raise ``missing_column``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from monitor_traffic import frame, write_traffic

import driftline as dl
from driftline.monitoring import MonitoringService
from driftline.workspace import Workspace

DAY1 = datetime(2026, 3, 1, 12, tzinfo=UTC)
AT = DAY1 + timedelta(minutes=1)


@pytest.fixture
def ws(configure_default: Callable[..., Workspace]) -> Workspace:
    workspace = configure_default(async_logging=False)
    write_traffic(workspace, "churn", frame(600, seed=2), at=DAY1)
    return workspace


def training_frame() -> object:
    """The training table: the model's inputs and the ``churned`` target."""
    data = frame(800, seed=1)
    data["churned"] = np.arange(len(data)) % 2
    return data


def test_a_reference_with_the_target_gives_no_missing_column(ws: Workspace) -> None:
    svc = ws.service("monitoring", MonitoringService)
    svc.fit_reference(training_frame(), name="train")
    dl.monitoring.create_monitor("q", deployment="churn", reference="train", checks="drift,quality")
    run = dl.monitoring.run_monitor("q", at=AT)
    outcomes = {c.check: c for c in run.evaluation.checks}
    assert outcomes["quality"].status == "ok", outcomes["quality"].message
    assert outcomes["drift"].status == "ok", outcomes["drift"].message
    assert run.raised == ()
    assert "churned" not in {f.column for f in run.evaluation.figures}
    assert {"age", "plan"} <= {f.column for f in run.evaluation.figures if f.check == "drift"}

    result = dl.monitoring.check(
        "churn", window="1d", since=DAY1 - timedelta(hours=12), until=AT,
        reference="train", checks=("drift", "quality"),
    )  # fmt: skip
    scored = [w for w in result.windows if w.quality is not None]
    assert scored, result.windows
    for window in scored:
        assert [i.column for i in window.quality.issues] == []
        assert window.drift is not None
        assert "churned" not in window.drift.columns


def test_the_served_versions_signature_names_the_inputs(ws: Workspace) -> None:
    """With a registered signature, an input the traffic lacks is still a finding."""
    from sklearn.linear_model import LogisticRegression

    x = frame(200, seed=9)[["age", "income", "visits"]]
    x["tenure"] = np.arange(200, dtype=float)
    model = LogisticRegression().fit(x, np.arange(200) % 2)
    with dl.start_run(experiment="churn") as run:
        dl.models.log_model(model, "model", input_example=x.head(3))
    assert dl.register_model(f"runs:/{run.id}/model", "churn").version == 1  # served churn/1
    train = training_frame()
    train["tenure"] = np.arange(len(train), dtype=float)  # type: ignore[index]
    svc = ws.service("monitoring", MonitoringService)
    svc.fit_reference(train, name="train")
    dl.monitoring.create_monitor("sig", deployment="churn", reference="train", checks="quality")
    (outcome,) = dl.monitoring.run_monitor("sig", at=AT).evaluation.checks
    assert outcome.status == "alert"
    assert outcome.severity == "critical"
    # tenure is a signature input the requests lack; plan (not an input) and the
    # target are left out
    assert outcome.summary["issues"] == ["tenure: missing_column"]
