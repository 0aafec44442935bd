"""The quality, prediction drift and performance checks of a monitor, run through
``run_monitor`` on prediction-log traffic and labels logged as a user would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from traffic_log import write_log

import driftline as dl
from driftline.cli import main
from driftline.errors import BackendError, InvalidArgumentError
from driftline.monitoring.checks import known_checks
from driftline.serving.predlog import prediction_root
from driftline.workspace import Workspace

DAY = timedelta(days=1)
# Labels are stamped when they are logged and join predictions at most 14 days older:
# the traffic is of the last days.
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - 4 * DAY
N = 400


@pytest.fixture
def ws(configure_default: Callable[..., Workspace]) -> Workspace:
    return configure_default(async_logging=False)


def day(ws: Workspace, k: int, *, shift: float = 0.0, new_plan: bool = False) -> list[str]:
    """A day of binary-classifier traffic (probabilities); the request ids."""
    rng = np.random.default_rng(k)
    x = rng.normal(shift, 1, N)
    plans = ["a", "b", "c"] if new_plan else ["a", "b"]
    frame = pd.DataFrame({"x": x, "plan": rng.choice(plans, N)})
    p = 1 / (1 + np.exp(-2 * x))
    root = prediction_root(ws.settings.home, ws.settings.artifact_root)
    return write_log(
        root, "churn", START + k * DAY, frame, np.column_stack([1 - p, p]),
        spacing=DAY / (2 * N), prefix=f"d{k}-",
    )  # fmt: skip


def labels_for(ids: list[str], k: int) -> pd.DataFrame:
    """Labels of day ``k``'s first requests, drawn from the model's own probabilities (a
    useful, imperfect model: the inputs are drawn again from the day's seed)."""
    rng = np.random.default_rng(k)
    x = rng.normal(0.0, 1, N)
    p = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(N) < p).astype(int)
    return pd.DataFrame({"request_id": ids, "label": y[: len(ids)]})


def figures(run: Any, check: str) -> dict[tuple[str | None, str], float | None]:
    return {(f.column, f.metric): f.value for f in run.evaluation.figures if f.check == check}


def test_the_checks_are_registered() -> None:
    assert known_checks() == ["drift", "performance", "prediction_drift", "quality"]


def test_quality_and_prediction_drift_alert_on_a_changed_window(ws: Workspace) -> None:
    day(ws, 0)
    day(ws, 1, shift=1.0, new_plan=True)
    dl.monitoring.fit_traffic_reference("churn", since=START, until=START + DAY, name="calm")
    dl.monitoring.create_monitor(
        "m", deployment="churn", reference="calm", checks="drift,prediction_drift,quality"
    )
    calm = dl.monitoring.run_monitor("m", at=START + DAY)
    assert [(c.check, c.status) for c in calm.evaluation.checks] == [
        ("drift", "ok"),
        ("prediction_drift", "ok"),
        ("quality", "ok"),
    ], [c.message for c in calm.evaluation.checks]
    assert calm.evaluation.rows == N
    assert figures(calm, "quality")[(None, "issues")] == 0.0
    assert figures(calm, "prediction_drift")[(None, "rows")] == float(N)

    moved = dl.monitoring.run_monitor("m", at=START + 2 * DAY)
    outcomes = {c.check: c for c in moved.evaluation.checks}
    assert {c: o.status for c, o in outcomes.items()} == {
        "drift": "alert",
        "prediction_drift": "alert",
        "quality": "alert",
    }
    assert "prediction_1" in outcomes["prediction_drift"].summary["drifted_columns"]
    assert outcomes["prediction_drift"].message.startswith("prediction drift")
    quality = outcomes["quality"]
    assert quality.severity == "warning"
    assert "plan: new_categories" in quality.summary["issues"]
    share = figures(moved, "quality")[("plan", "new_categories")]
    assert share is not None
    assert 0.2 < share < 0.5  # a third of the rows
    assert {a.check for a in moved.raised} == {"drift", "prediction_drift", "quality"}
    series = dl.monitoring.monitor_series("m", check="quality", column="", metric="issues")
    assert series[0].value == 0.0
    assert (series[1].value or 0) >= 2  # new categories and values outside the range


def test_a_reference_without_predictions_says_how_to_fit_one(ws: Workspace) -> None:
    day(ws, 0)
    inputs = pd.DataFrame({"x": np.random.default_rng(5).normal(0, 1, 500), "plan": "a"})
    svc = ws.service("monitoring", dl.monitoring.MonitoringService)
    svc.fit_reference(inputs, name="inputs-only")
    dl.monitoring.create_monitor(
        "p", deployment="churn", reference="inputs-only", checks=["prediction_drift"]
    )
    run = dl.monitoring.run_monitor("p", at=START + DAY)
    (outcome,) = run.evaluation.checks
    assert outcome.status == "error"
    assert "fit_traffic_reference" in outcome.message


def test_performance_is_realized_with_coverage_or_estimated_or_insufficient(
    ws: Workspace,
) -> None:
    ids = day(ws, 0)
    day(ws, 1)
    dl.monitoring.create_monitor(
        "perf",
        deployment="churn",
        checks=["performance"],
        thresholds={"performance": {"metric": "roc_auc", "below": 0.99}},
    )
    before = dl.monitoring.run_monitor("perf", at=START + DAY)
    (outcome,) = before.evaluation.checks
    assert outcome.status == "insufficient_data", outcome.message
    assert figures(before, "performance")[(None, "label_coverage")] == 0.0

    ingest = dl.monitoring.log_labels("churn", labels_for(ids[: N // 2], 0))
    assert ingest.inserted == N // 2
    realized = dl.monitoring.run_monitor("perf", at=START + DAY)
    (outcome,) = realized.evaluation.checks
    got = figures(realized, "performance")
    assert got[(None, "label_coverage")] == pytest.approx(0.5)
    assert got[(None, "labelled")] == N / 2
    auc = got[(None, "roc_auc")]
    assert auc is not None
    assert 0.6 < auc < 0.99
    assert outcome.status == "alert"  # below the monitor's 0.99
    assert outcome.summary["kind"] == "realized"
    assert "estimated" not in outcome.message
    (alert,) = realized.raised
    assert alert.check == "performance"
    assert alert.figures["value"] == pytest.approx(auc)

    # the next day has no labels: CBPE, calibrated on the labelled day before, marked so
    estimated = dl.monitoring.run_monitor("perf", at=START + 2 * DAY)
    (outcome,) = estimated.evaluation.checks
    got = figures(estimated, "performance")
    assert got[(None, "label_coverage")] == 0.0
    assert (None, "roc_auc") not in got
    value, low, high = (got[(None, f"estimated_roc_auc{s}")] for s in ("", "_lower", "_upper"))
    assert value is not None
    assert low is not None
    assert high is not None
    assert low <= value <= high
    assert outcome.summary["kind"] == "estimated"
    assert "(estimated, CBPE)" in outcome.message
    page = dl.monitoring.monitor_report("perf")
    assert "id='check-performance'" in page  # performance and label coverage over time
    assert "label_coverage" in page


def test_performance_without_a_threshold_records_figures(ws: Workspace) -> None:
    ids = day(ws, 0)
    dl.monitoring.create_monitor("plain", deployment="churn", checks=["performance"])
    dl.monitoring.log_labels("churn", labels_for(ids, 0))
    run = dl.monitoring.run_monitor("plain", at=START + DAY)
    (outcome,) = run.evaluation.checks
    assert outcome.status == "ok", outcome.message
    assert run.healthy
    got = figures(run, "performance")
    assert got[(None, "label_coverage")] == 1.0
    assert {"roc_auc", "accuracy", "log_loss"} <= {m for _, m in got}
    series = dl.monitoring.monitor_series("plain", check="performance", metric="label_coverage")
    assert [p.value for p in series] == [1.0]


def test_performance_beside_the_other_checks_matches_it_alone_and_fails_alone(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run reads the labels and scores performance beside the other checks: the same
    # figures as a run of performance alone, and a label read that fails is that check's
    # error, never the other checks'.
    from driftline.monitoring import MonitoringService

    ids = day(ws, 0)
    dl.monitoring.fit_traffic_reference("churn", since=START, until=START + DAY, name="calm")
    dl.monitoring.log_labels("churn", labels_for(ids, 0))
    checks = ["drift", "performance", "prediction_drift"]
    dl.monitoring.create_monitor("all", deployment="churn", reference="calm", checks=checks)
    dl.monitoring.create_monitor("alone", deployment="churn", checks=["performance"])
    both = dl.monitoring.run_monitor("all", at=START + DAY)
    assert [c.check for c in both.evaluation.checks] == checks
    assert figures(both, "performance") == figures(
        dl.monitoring.run_monitor("alone", at=START + DAY), "performance"
    )

    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise BackendError("the labels table cannot be read")

    monkeypatch.setattr(MonitoringService, "window_labels", unreadable)
    broken = dl.monitoring.run_monitor("all", at=START + DAY)
    status = {c.check: (c.status, c.message) for c in broken.evaluation.checks}
    assert status["performance"] == ("error", "BackendError: the labels table cannot be read")
    assert status["drift"][0] == status["prediction_drift"][0] == "ok"
    assert not broken.healthy


def test_bad_performance_thresholds_name_the_field(ws: Workspace) -> None:
    day(ws, 0)
    create = dl.monitoring.create_monitor
    with pytest.raises(InvalidArgumentError, match="needs both metric and below"):
        create("x", deployment="churn", thresholds={"performance": {"metric": "roc_auc"}})
    with pytest.raises(InvalidArgumentError, match=r"thresholds.performance: .*'above'"):
        create("x", deployment="churn", thresholds={"performance": {"above": 0.8}})
    with pytest.raises(InvalidArgumentError, match=r"performance\.below must be a number"):
        create("x", deployment="churn", thresholds={"performance": {"metric": "f1", "below": "x"}})
    with pytest.raises(InvalidArgumentError, match=r"thresholds.quality"):
        create("x", deployment="churn", thresholds={"quality": {"missing": 0.2}})
    kept = create(
        "x",
        deployment="churn",
        thresholds={"psi": 0.3, "quality": {"missing_jump": 0.2}},
        checks="quality",
    )
    assert kept.thresholds == {"psi": 0.3, "quality": {"missing_jump": 0.2}}


def test_the_cli_creates_a_monitor_with_every_check(ws: Workspace, capsys: Any) -> None:
    day(ws, 0)
    with pytest.raises(SystemExit) as exited:
        main(
            ["--home", str(ws.settings.home), "--uri", ws.settings.uri,
             "--artifact-root", ws.settings.artifact_root, "monitor", "create", "all",
             "--deployment", "churn", "--checks", "drift,quality,performance,prediction_drift",
             "--json"]
        )  # fmt: skip
    assert not exited.value.code, capsys.readouterr()
    assert dl.monitoring.get_monitor("all").checks == (
        "drift",
        "quality",
        "performance",
        "prediction_drift",
    )


def test_a_monitor_reads_durations_like_every_monitoring_call(ws: Workspace) -> None:
    day(ws, 0)
    create = dl.monitoring.create_monitor
    assert create("a", deployment="churn", window="1.5h", cooldown=90).window == "90m"
    with pytest.raises(InvalidArgumentError, match=r"Invalid window '0s'.*longer than zero"):
        create("b", deployment="churn", window="0s")
    with pytest.raises(InvalidArgumentError, match=r"Invalid cooldown '0.5s'.*whole seconds"):
        create("b", deployment="churn", cooldown="0.5s")
    with pytest.raises(InvalidArgumentError, match=r"Invalid window '1y': not a duration"):
        create("b", deployment="churn", window="1y")
