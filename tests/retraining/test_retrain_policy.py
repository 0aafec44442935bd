"""Retraining policies: strict parsing, references checked at apply, stored and audited;
triggers deduplicated into cycles (a running cycle absorbs, cooldown, daily cap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.retraining.retrain_support import FULL_POLICY, PIPELINES, build_in

from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.retraining import RetrainingService
from driftline.retraining.cycles import CycleState, Trigger
from driftline.retraining.policy import parse_policy
from driftline.workspace import Workspace


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_in(tmp_path_factory, "retrain-policy", {"retrain_pipes.py": PIPELINES})


def retraining(ws: Workspace) -> RetrainingService:
    return ws.service("retraining", RetrainingService)


def test_a_good_policy_parses_into_a_frozen_record() -> None:
    policy = parse_policy(FULL_POLICY)
    assert policy.model == "churn"
    assert policy.rollout == "direct"
    assert [t.kind for t in policy.triggers] == ["drift", "new_data", "schedule"]
    assert policy.cooldown_seconds == 6 * 3600
    assert policy.evaluate.window_seconds == 14 * 86400
    assert policy.challenger_must_beat is not None
    assert policy.challenger_must_beat.by == 0.0
    with pytest.raises(AttributeError):
        policy.model = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("max_cycles_per_day: 4", "max_cycles_per_dya: 4"),
            "line 13: unknown key 'max_cycles_per_dya'",
        ),
        (("columns: any, ", "colums: any, "), "line 4: unknown key 'triggers[0].drift.colums'"),
        (("- new_data:", "- new_dataz:"), "line 5: unknown trigger kind 'new_dataz'"),
        (("rollout: direct", "rollout: blue-green"), "line 11: rollout must be one of"),
        (("cooldown: 6h", "cooldown: soon"), "line 12: cooldown must be a duration"),
        (("approvals: 0", "approvals: -1"), "line 10: approvals must be between 0"),
        (("0 3 * * 0", "0 99 * * 0"), "line 6: triggers[2].schedule.cron"),
        (
            ("challenger_must_beat: {metric: roc_auc", "challenger_must_beat: {metric: f1"),
            "line 9: challenger_must_beat.metric is 'f1' but evaluate.metric is 'roc_auc'",
        ),
        (("deployment: churn\n", ""), "needs a deployment"),
        (("approvals: 0", "notify: log\napprovals: 0"), "line 10: notify must be a list"),
        (
            ("approvals: 0", "notify: [log, 'webhook:ftp://h/x']\napprovals: 0"),
            "line 10: notify[1]: Invalid alert channel 'webhook:ftp://h/x'",
        ),
        (
            (
                "  - new_data:",
                "  - performance: {monitor: churn-prod, metric: log_loss, "
                "below: 0.3}\n  - new_data:",
            ),
            "triggers[1].performance.metric: log_loss is better when lower",
        ),
        (
            ("approvals: 0", "approvals: &n 0\nmax_cycles: *n"),
            "YAML anchors and aliases (&name, *name) are not accepted",
        ),
    ],
)
def test_a_bad_policy_names_the_field_and_line(change: tuple[str, str], message: str) -> None:
    text = FULL_POLICY.replace(*change)
    assert text != FULL_POLICY
    with pytest.raises(InvalidArgumentError) as caught:
        parse_policy(text)
    assert message in str(caught.value)


def test_notify_replaces_the_monitors_channels_and_reads_back() -> None:
    from driftline.retraining.policy import policy_from_dict

    assert parse_policy(FULL_POLICY).notify is None  # the triggers' monitors' channels
    told = parse_policy(FULL_POLICY + "notify: [log, 'webhook:http://127.0.0.1:9/x', log]\n")
    assert told.notify == ("log", "webhook:http://127.0.0.1:9/x")
    assert policy_from_dict(told.to_dict()) == told
    silent = parse_policy(FULL_POLICY + "notify: []\n")
    assert silent.notify == ()
    assert policy_from_dict(silent.to_dict()) == silent
    assert "notify" not in parse_policy(FULL_POLICY).to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("monitor: churn-prod", "monitor: nope"),
            "retrain.yaml line 4: triggers[0].drift.monitor",
        ),
        (("dataset: customers}", "dataset: nobody}"), "line 5: triggers[1].new_data.dataset"),
        (("fallback: customers@latest", "fallback: gone@latest"), "line 8: evaluate.fallback"),
        (("name: retrain_churn", "name: no_such_pipeline"), "line 7: pipeline.name"),
        (("deployment: churn", "deployment: elsewhere"), "line 2: deployment"),
        (("model: churn", "model: unknown_model"), "line 1: model"),
    ],
)
def test_apply_refuses_unknown_names(ws: Workspace, change: tuple[str, str], message: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        retraining(ws).cycles.apply(FULL_POLICY.replace(*change))
    assert message in str(caught.value)


def test_approvals_nobody_can_give_are_refused(ws: Workspace) -> None:
    service = retraining(ws).cycles
    before = service.approvers
    service.approvers = lambda model: ["ada"]
    try:
        with pytest.raises(InvalidArgumentError, match="line 10: approvals: 2 distinct people"):
            service.apply(FULL_POLICY.replace("approvals: 0", "approvals: 2"))
    finally:
        service.approvers = before


def test_apply_stores_the_policy_and_audits_it(ws: Workspace, tmp_path: Path) -> None:
    file = tmp_path / "retrain.yaml"
    file.write_text(FULL_POLICY)
    service = retraining(ws).cycles
    applied = service.apply(file)
    assert service.policy("churn") == applied
    entries = ws.audit.entries(entity="churn", limit=10)
    assert any(e.action == "retraining.policy.apply" for e in entries)


def test_a_storm_of_triggers_starts_one_cycle(ws: Workspace) -> None:
    service = retraining(ws).cycles
    service.apply(FULL_POLICY.replace("max_cycles_per_day: 4", "max_cycles_per_day: 2"))
    before = len(service.history("churn"))
    outcomes = [
        service.trigger("churn", Trigger("alert", f"alert-{i}", {"dataset": "customers@1"}))
        for i in range(100)
    ]
    started = [o for o in outcomes if o.outcome == "started"]
    assert len(started) == 1
    assert all(o.outcome == "absorbed" for o in outcomes[1:])
    cycle = service.status("churn")
    assert cycle is not None
    assert cycle.id == started[0].cycle.id
    assert cycle.absorbed == 99
    assert cycle.state is CycleState.TRIGGERED
    assert cycle.cause.ref == "alert-0"
    assert len(service.history("churn")) == before + 1
    # Ended, the cycle no longer absorbs: the cooldown skips the next trigger...
    service.store.transition(cycle, CycleState.FAILED, actor="test", now=0, reason="test")
    skipped = service.trigger("churn", Trigger("manual", "me"))
    assert skipped.outcome == "skipped"
    assert "cooldown" in skipped.reason
    # ... and once past it, the daily cap does.
    service.apply(
        FULL_POLICY.replace("cooldown: 6h", "cooldown: 0").replace(
            "max_cycles_per_day: 4", "max_cycles_per_day: 1"
        )
    )
    capped = service.trigger("churn", Trigger("manual", "me"))
    assert capped.outcome == "skipped"
    assert "max_cycles_per_day" in capped.reason


def test_transitions_are_compare_and_set(ws: Workspace) -> None:
    from driftline.errors import ConflictError

    service = retraining(ws).cycles
    service.apply(
        FULL_POLICY.replace("cooldown: 6h", "cooldown: 0").replace(
            "max_cycles_per_day: 4", "max_cycles_per_day: 100"
        )
    )
    for open_cycle in service.store.cycles("churn", open_only=True):
        service.store.transition(open_cycle, CycleState.FAILED, actor="test", now=0)
    cycle = service.trigger("churn", Trigger("manual", "me")).cycle
    assert cycle is not None
    moved = service.store.transition(cycle, CycleState.TRAINING, actor="test", now=1, run_id="r1")
    assert moved.state is CycleState.TRAINING
    assert moved.run_id == "r1"
    with pytest.raises(ConflictError):  # a second driver holding the old record
        service.store.transition(cycle, CycleState.TRAINING, actor="test", now=2)
    with pytest.raises(InvalidArgumentError, match="cannot go from training to promoted"):
        service.store.transition(moved, CycleState.PROMOTED, actor="test", now=2)
    actions = [e.action for e in ws.audit.entries(entity=cycle.id, limit=10)]
    assert "retraining.cycle.training" in actions
    assert "retraining.cycle.triggered" in actions
