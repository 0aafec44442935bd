"""Serving's extension points: the live-metric spec key, contributed canary checks and
contributed ``/metrics`` collectors, without serving processes (those are in
``test_live_canary.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from driftline.errors import InvalidArgumentError
from driftline.serving.analysis import CANARY_CHECKS, CanaryWindow, with_contributed
from driftline.serving.metrics import METRICS, CachedCollector, ContributedMetrics
from driftline.serving.models import LIVE_METRICS, DeploymentSpec, LiveMetricCheck
from driftline.serving.spec import parse_spec, spec_from_dict, spec_to_dict
from driftline.workspace import Workspace

BASE = "name: d\nmodel: churn\nstable: champion\ncanary:\n  version: 2\n  checks:\n"


def test_the_live_metric_is_read_strictly_and_reads_back() -> None:
    spec = parse_spec(BASE + "    metric: {name: roc_auc, max_drop: 0.05, min_labels: 30}\n")
    assert spec.canary is not None
    assert spec.canary.checks.metric == LiveMetricCheck(
        name="roc_auc", max_drop=0.05, min_labels=30
    )
    assert spec_from_dict(spec_to_dict(spec)) == spec
    defaults = parse_spec(BASE + "    metric: {name: accuracy}\n").canary
    assert defaults is not None
    assert defaults.checks.metric == LiveMetricCheck(name="accuracy", max_drop=0.02, min_labels=50)
    without = parse_spec(BASE + "    error_rate: 0.02\n").canary
    assert without is not None
    assert without.checks.metric is None
    assert (
        "metric"
        not in spec_to_dict(parse_spec(BASE + "    error_rate: 0.02\n"))["canary"]["checks"]
    )


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ("{name: auc}", r"line 7: canary\.checks\.metric\.name must be one of accuracy"),
        ("{max_drop: 0.1}", r"canary\.checks\.metric\.name must be one of"),
        ("{name: f1, min_labels: 0}", r"canary\.checks\.metric\.min_labels must be between"),
        ("{name: f1, min_labels: 2.5}", r"min_labels must be a whole number"),
        ("{name: f1, max_drop: -1}", r"canary\.checks\.metric\.max_drop must be between"),
        ("{name: f1, max_drop: yes}", r"max_drop must be a number"),
        ("{name: f1, drop: 0.1}", r"unknown key 'canary\.checks\.metric\.drop'"),
        ("roc_auc", r"canary\.checks\.metric must be a mapping"),
        ("{}", r"canary\.checks\.metric\.name must be one of"),
    ],
)
def test_a_bad_live_metric_is_refused_naming_the_field(metric: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        parse_spec(BASE + f"    metric: {metric}\n")


def test_serving_names_exactly_the_metrics_monitoring_computes() -> None:
    from driftline.monitoring import LOWER_IS_BETTER
    from driftline.monitoring.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS

    assert set(LIVE_METRICS) == {*CLASSIFICATION_METRICS, *REGRESSION_METRICS}
    assert set(LIVE_METRICS) >= LOWER_IS_BETTER
    with pytest.raises(InvalidArgumentError, match="Unknown live metric"):
        LiveMetricCheck(name="auc")


def _verdict(outcome: str = "pass") -> dict[str, Any]:
    checks = [{"check": "error_rate", "measured": 0.0, "threshold": 0.01, "passed": True}]
    return {"verdict": outcome, "reason": "every check passed", "checks": checks, "figures": {}}


def _window() -> CanaryWindow:
    from driftline.serving.models import Deployment, DeploymentSpec, Rollout, RolloutState

    now = datetime.now(UTC)
    record = Deployment(
        spec=DeploymentSpec(name="d", model="churn", stable="1"),
        rollout=Rollout(state=RolloutState.PROGRESSING),
        generation=1,
        created_at=now,
        updated_at=now,
        updated_by="me",
    )
    return CanaryWindow(
        deployment=record, start=now, end=now, canary_version=2, stable_versions=(1,), table=None
    )


def _answering(answer: Any) -> Any:
    def check(_window: CanaryWindow) -> Any:
        return answer

    return check


def _raising(_window: CanaryWindow) -> Any:
    raise RuntimeError("labels table is gone")


def test_contributed_checks_fail_wait_or_pass_the_check() -> None:
    window = _window()
    failing = {"check": "live", "verdict": "fail", "measured": 0.3, "threshold": 0.1,
               "reason": "worse", "figures": {"canary": {"accuracy": 0.5}}}  # fmt: skip
    waiting = {"check": "live", "verdict": "wait", "reason": "too few labels"}
    passing = {"check": "live", "verdict": "pass", "measured": 0.0, "threshold": 0.1}

    failed = with_contributed(_verdict(), window, [_answering(failing), _answering(waiting)])
    assert failed["verdict"] == "fail"
    assert failed["reason"] == "failed: live"
    assert failed["checks"][1]["figures"] == {"canary": {"accuracy": 0.5}}
    assert [c["passed"] for c in failed["checks"]] == [True, False, None]

    waited = with_contributed(_verdict(), window, [_answering(passing), _answering(waiting)])
    assert waited["verdict"] == "wait"
    assert waited["reason"] == "live waits: too few labels"

    passed = with_contributed(_verdict(), window, [_answering(passing), _answering(None)])
    assert passed["verdict"] == "pass"
    assert len(passed["checks"]) == 2  # a check that does not apply adds nothing

    # A broken check, or one answering nonsense, waits: it never rolls back nor promotes.
    broken = with_contributed(_verdict(), window, [_raising])
    assert broken["verdict"] == "wait"
    assert "_raising waits: the check could not run (RuntimeError: labels table" in broken["reason"]
    odd = with_contributed(_verdict(), window, [_answering({"verdict": "great"})])
    assert odd["verdict"] == "wait"


def test_contributed_checks_run_only_when_the_traffic_suffices() -> None:
    calls: list[CanaryWindow] = []

    def counting(window: CanaryWindow) -> Any:
        calls.append(window)
        return {"verdict": "fail", "check": "live"}

    thin = _verdict("wait")
    assert with_contributed(thin, _window(), [counting]) is thin
    assert calls == []
    assert with_contributed(_verdict("fail"), _window(), [counting])["verdict"] == "fail"
    assert len(calls) == 1


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> list[str]:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("database is down")
        return [f"family-{self.calls}"]


def test_a_contributed_collector_is_read_at_most_once_per_max_age() -> None:
    now = [100.0]
    inner = _Counting()
    cached = CachedCollector(inner, max_age=5.0, clock=lambda: now[0])
    assert cached.collect() == ["family-1"]
    now[0] += 4.9
    assert [cached.collect() for _ in range(50)] == [["family-1"]] * 50
    assert inner.calls == 1
    now[0] += 0.2
    assert cached.collect() == ["family-2"]
    now[0] += 5.0
    assert cached.collect() == ["family-2"]  # a failing read keeps the last figures
    assert inner.calls == 3


def test_the_workspace_hands_each_extension_point_its_contributions(tmp_path: Path) -> None:
    from driftline.monitoring.canary import LiveMetricCheck as MonitoringLiveMetric
    from driftline.settings import Settings

    with Workspace.from_settings(Settings.load(home=tmp_path / ".driftline")) as ws:
        (check,) = ws.contributions(CANARY_CHECKS)
        assert isinstance(check, MonitoringLiveMetric)
        assert ws.contributions(CANARY_CHECKS)[0] is check  # built once
        (collector_for,) = ws.contributions(METRICS)
        assert list(collector_for("churn").collect())  # the gauge families, empty of monitors
        assert ws.contributions("nobody.extends.this") == []
        contributed = ContributedMetrics(ws.contributions, "churn")
        assert len(contributed.collectors()) == 1
        assert contributed.collectors()[0] is contributed.collectors()[0]


def test_a_stage_failing_to_contribute_leaves_the_serving_metrics_alone() -> None:
    calls = []

    def failing(_point: str) -> list[Any]:
        calls.append(_point)
        if len(calls) == 1:
            raise RuntimeError("cannot open the monitors")
        return [lambda _deployment: _Counting()]

    contributed = ContributedMetrics(failing, "churn")
    assert contributed.collectors() == []
    # Not remembered as "nothing": the next scrape asks again (the database is back).
    (collector,) = contributed.collectors()
    assert collector.collect() == ["family-1"]
    assert len(calls) == 2


def test_every_declared_contribution_resolves_to_a_factory_of_a_known_point() -> None:
    from driftline.core.stage import load_object
    from driftline.stages import load_stages

    points = {CANARY_CHECKS, METRICS}  # serving's extension points
    declared = {
        (stage.name, point): path
        for stage in load_stages()
        for point, path in stage.extends.items()
    }
    assert set(declared) == {("monitoring", CANARY_CHECKS), ("monitoring", METRICS)}
    for (_stage, point), path in declared.items():
        assert point in points
        assert callable(load_object(path))


def test_a_live_metric_nobody_judges_waits_rather_than_promote() -> None:
    import dataclasses

    from driftline.monitoring.canary import LiveMetricCheck as MonitoringLiveMetric
    from driftline.serving.analysis import LIVE_METRIC

    assert MonitoringLiveMetric.name == LIVE_METRIC  # the name the two stages agree on
    window = _window()
    spec = parse_spec(BASE + "    metric: {name: accuracy}\n")
    asking = dataclasses.replace(
        window, deployment=dataclasses.replace(window.deployment, spec=spec)
    )
    unjudged = with_contributed(_verdict(), asking, [])
    assert unjudged["verdict"] == "wait"
    assert "canary.checks.metric is set, but nothing judges it here" in unjudged["reason"]
    judged = with_contributed(
        _verdict(), asking, [_answering({"check": LIVE_METRIC, "verdict": "pass"})]
    )
    assert judged["verdict"] == "pass"
    assert with_contributed(_verdict(), window, [])["verdict"] == "pass"  # not asked for


@pytest.mark.parametrize(("stable", "alias"), [("champion", "champion"), ("3", None)])
def test_a_stable_alias_is_followed_and_a_version_number_is_pinned(
    stable: str, alias: str | None
) -> None:
    spec = DeploymentSpec(name="churn", model="churn", stable=stable)
    assert spec.stable_alias == alias
