"""Retraining cycles driven end to end: a pipeline trains a challenger, the registry
compares it with the champion, and it is rejected, or promoted (directly, or through
the deployment's canary driven by serving's controller on deterministic traffic)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.conftest import FlakyNames, webhook_receiver
from tests.retraining.retrain_support import PIPELINES, build_in, champion, cli

from driftline.errors import InvalidArgumentError
from driftline.retraining import RetrainingService
from driftline.retraining.cycles import CycleState
from driftline.workspace import Workspace

POLICY = """\
model: churn
deployment: churn
pipeline:
  name: retrain_churn
  module: retrain_pipes
  params: {dataset: "{trigger.dataset}", flip: "{trigger.flip}"}
evaluate: {data: customers@latest, metric: roc_auc}
challenger_must_beat: {metric: roc_auc, by: 0.0, confidence: 0.9}
rollout: direct
cooldown: 0
max_cycles_per_day: 50
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_in(tmp_path_factory, "retrain-cycles", {"retrain_pipes.py": PIPELINES})


def test_a_worse_challenger_is_rejected_and_the_champion_stays(ws: Workspace) -> None:
    loop = ws.service("retraining", RetrainingService).cycles
    loop.apply(POLICY)
    before = champion(ws)
    outcome = loop.run("churn", ws, payload={"dataset": "customers@latest", "flip": True})
    cycle = outcome.cycle
    assert outcome.outcome == "started"
    assert cycle is not None
    assert cycle.state is CycleState.REJECTED, cycle.reason
    assert cycle.run_id is not None
    assert cycle.version is not None
    assert cycle.version > before
    assert cycle.report is not None
    assert cycle.report["verdict"] == "rejected"
    assert cycle.report["gain"] < 0
    assert "the champion stays" in (cycle.reason or "")
    assert champion(ws) == before


def test_a_better_challenger_is_promoted_directly(ws: Workspace) -> None:
    loop = ws.service("retraining", RetrainingService).cycles
    loop.apply(POLICY)
    outcome = loop.run("churn", ws, payload={"dataset": "customers@latest", "flip": False})
    cycle = outcome.cycle
    assert cycle is not None
    assert cycle.state is CycleState.PROMOTED, cycle.reason
    assert cycle.report is not None
    assert cycle.report["verdict"] == "accepted"
    assert champion(ws) == cycle.version
    states = [e.action for e in ws.audit.entries(entity=cycle.id, limit=20)]
    for state in ("triggered", "training", "evaluating", "rolling_out", "promoted"):
        assert f"retraining.cycle.{state}" in states
    history = loop.history("churn")
    assert [c.id for c in history][:1] == [cycle.id]


def test_the_cli_shows_status_and_history_and_refuses_bad_files(
    ws: Workspace, built: dict[str, Any]
) -> None:
    loop = ws.service("retraining", RetrainingService).cycles
    loop.apply(POLICY)
    if not loop.history("churn"):  # run alone: make one
        loop.run("churn", ws, payload={"dataset": "customers@latest", "flip": True})
    newest = loop.history("churn")
    status = cli(built, "retrain", "status", "churn", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["id"] == newest[0].id
    history = cli(built, "retrain", "history", "churn", "--json")
    assert history.returncode == 0, history.stderr
    assert [c["id"] for c in json.loads(history.stdout)] == [c.id for c in newest]
    shown = cli(built, "retrain", "history", "churn")
    assert shown.returncode == 0, shown.stderr
    for cycle in newest:
        assert cycle.state.value in shown.stdout
    bad = built["root"] / "bad.yaml"
    bad.write_text(POLICY.replace("cooldown: 0", "cooldown: 0\ncooldwn: 5m"))
    refused = cli(built, "retrain", "apply", str(bad))
    assert refused.returncode != 0
    assert "bad.yaml line 11: unknown key 'cooldwn'" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr


# In the past: a prediction-log file only holds rows that arrived before it was written.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _traffic(ws: Workspace, name: str, start: datetime, canary_version: int, count: int) -> None:
    """Deterministic, healthy traffic: ``count`` requests to each variant."""
    from driftline.serving import DeploymentService
    from driftline.serving.predlog import PredictionLog

    root = ws.service("serving", DeploymentService).prediction_root
    log = PredictionLog(root, name, flush_rows=10**6, flush_seconds=3600)
    at = start
    for variant, version in (("stable", 1), ("canary", canary_version)):
        for i in range(count):
            at += timedelta(milliseconds=1)
            log.append(
                (f"{variant}-{at.timestamp()}", "churn", version, variant, at, "predict",
                 {"f0": [1.0]}, [i % 2], 1, 2.0, 200, None)
            )  # fmt: skip
    log.close()


def test_a_challenger_goes_through_the_deployments_canary(ws: Workspace) -> None:
    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    ws.registry.set_alias("churn", "live", 1)
    steps = {"steps": [50, 100], "interval": "1s", "min_requests": 10, "max_failed_checks": 2}
    loop = ws.service("retraining", RetrainingService).cycles
    loop.apply(POLICY)
    earlier = loop.run("churn", ws, payload={"dataset": "customers@latest", "flip": True}).cycle
    assert earlier is not None
    # A deployment whose last canary was rolled back: its spec keeps the canary steps.
    serving.apply({"name": "churn-ab", "model": "churn", "stable": "live",
                   "canary": {"version": earlier.version, **steps}})  # fmt: skip
    serving.rollback("churn-ab", reason="test setup")
    loop.apply(POLICY.replace("deployment: churn", "deployment: churn-ab").replace(
        "rollout: direct", "rollout: canary"))  # fmt: skip
    cycle = loop.run("churn", ws, payload={"dataset": "customers@latest", "flip": False}).cycle
    assert cycle is not None
    assert cycle.state is CycleState.ROLLING_OUT, cycle.reason
    assert cycle.rollout is not None
    assert cycle.rollout["canary_version"] == cycle.version
    # Nothing decided yet: advancing waits on the canary.
    assert loop.advance("churn", ws).state is CycleState.ROLLING_OUT  # type: ignore[union-attr]
    made = serving.get_deployment("churn-ab")
    serving.store.save_deployment(
        dataclasses.replace(made, rollout=dataclasses.replace(
            made.rollout, window_start=T0, next_check_at=T0)),
        expected=made.generation, actor="test", action=None,
    )  # fmt: skip
    assert cycle.version is not None
    _traffic(ws, "churn-ab", T0, cycle.version, 20)
    # Healthy traffic at 50 %: the next step is 100 %, which is the promotion.
    done = serving.tick("churn-ab", now=T0 + timedelta(seconds=1))
    assert done is not None
    assert done.rollout.state.value == "promoted", done.rollout.message
    ended = loop.advance("churn", ws)
    assert ended is not None
    assert ended.state is CycleState.PROMOTED
    assert ws.registry.get_model("churn").aliases["live"] == cycle.version


def test_the_agent_turns_new_alerts_into_one_cycle_and_drives_it(ws: Workspace) -> None:
    from driftline.core.ids import new_id
    from driftline.monitoring import MonitoringService
    from driftline.monitoring.monitor_models import Alert
    from driftline.pipelines.agent import PERIODIC, Agent
    from driftline.retraining import autopilot

    assert PERIODIC["retraining"] is autopilot.drive
    loop = ws.service("retraining", RetrainingService).cycles
    policy = (
        POLICY.replace(
            "rollout: direct",
            "rollout: direct\ntriggers:\n  - drift: {monitor: churn-prod}",
        )
        .replace('"{trigger.dataset}"', "customers@latest")
        .replace('"{trigger.flip}"', "false")
    )
    loop.apply(policy)
    monitors = ws.service("monitoring", MonitoringService).monitors
    before = len(loop.history("churn"))
    now = datetime.now(UTC)
    for i in range(5):  # a storm: one cycle
        at = now + timedelta(milliseconds=i)
        monitors.store.add_alert(
            Alert(id=new_id(), monitor="churn-prod", deployment="churn", check="drift",
                  severity="warning", message="drift", figures={}, evaluation_id=new_id(),
                  created_at=at, last_seen_at=at)
        )  # fmt: skip
    said: list[str] = []
    agent = Agent(ws, interval=0.1, say=said.append)
    agent.tick()
    history = loop.history("churn")
    assert len(history) == before + 1, said
    cycle = history[0]
    assert cycle.cause.kind == "alert"
    assert cycle.cause.payload["monitor"] == "churn-prod"
    # Judged (the champion may already be as good, after the tests above): not stuck.
    assert cycle.state in (CycleState.PROMOTED, CycleState.REJECTED), cycle.reason
    assert cycle.report is not None
    assert any("started cycle" in line for line in said), said
    agent.tick()  # the same alerts are not seen twice
    assert len(loop.history("churn")) == before + 1


def test_maturity_sees_the_applied_policy(ws: Workspace) -> None:
    service = ws.service("retraining", RetrainingService)
    service.cycles.apply(POLICY)
    (churn,) = service.maturity("churn")
    found = {c.name: c for c in churn.checks}
    assert found["retraining_policy"].present, found["retraining_policy"]


def test_retrain_run_from_the_cli(ws: Workspace, built: dict[str, Any]) -> None:
    ws.service("retraining", RetrainingService).cycles.apply(POLICY)
    done = cli(built, "retrain", "run", "churn", "-p", "dataset=customers@latest",
               "-p", "flip=1", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["outcome"] == "started"
    assert outcome["cycle"]["state"] == "rejected", outcome["cycle"]["reason"]
    assert outcome["cycle"]["cause"] == {
        "kind": "manual", "ref": outcome["cycle"]["cause"]["ref"],
        "payload": {"dataset": "customers@latest", "flip": "1"},
    }  # fmt: skip
    bad = cli(built, "retrain", "run", "churn", "-p", "no-equals-sign")
    assert bad.returncode != 0
    assert "--param takes KEY=VALUE" in bad.stdout + bad.stderr


def test_a_pipeline_that_cannot_run_fails_the_cycle_and_production_stays(ws: Workspace) -> None:
    loop = ws.service("retraining", RetrainingService).cycles
    loop.apply(POLICY)
    before = champion(ws)
    cycle = loop.run("churn", ws, payload={"dataset": "nobody@latest", "flip": False}).cycle
    assert cycle is not None
    assert cycle.state is CycleState.FAILED
    assert "the pipeline retrain_churn could not run" in (cycle.reason or "")
    assert "nobody" in (cycle.reason or "")
    assert champion(ws) == before
    assert loop.advance("churn", ws) is None  # nothing left open


# -- notifications -----------------------------------------------------------------------


def test_a_policy_cannot_notify_a_metadata_address(ws: Workspace) -> None:
    loop = ws.service("retraining", RetrainingService).cycles
    aimed = POLICY + "notify: [log, 'webhook:http://[::ffff:169.254.169.254]/x']\n"
    with pytest.raises(InvalidArgumentError, match=r"line \d+: notify\[1\]: .*webhook_allow"):
        loop.apply(aimed)


def test_a_reapplied_policy_checks_only_the_webhooks_it_adds(
    ws: Workspace, flaky_names: FlakyNames
) -> None:
    loop = ws.service("retraining", RetrainingService).cycles
    loop.delivery = flaky_names.delivery
    known = "webhook:https://hooks.example.test/x"
    loop.apply(POLICY + f"notify: ['{known}']\n")
    flaky_names.resolvable.clear()  # the known host briefly fails to resolve
    assert loop.apply(POLICY + f"notify: [log, '{known}']\n").notify == ("log", known)
    added = "webhook:https://new.example.test/x"
    with pytest.raises(InvalidArgumentError, match=r"line \d+: notify\[2\]: .*new\.example"):
        loop.apply(POLICY + f"notify: [log, '{known}', '{added}']\n")


def test_every_outcome_is_sent_to_the_policys_channels(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = ws.service("retraining", RetrainingService).cycles
    with webhook_receiver() as hook:
        loop.apply(POLICY + f"notify: ['webhook:{hook.url}', log]\n")
        failed = loop.run("churn", ws, payload={"dataset": "nobody@latest", "flip": False}).cycle
        rejected = loop.run("churn", ws, payload={"dataset": "customers@latest", "flip": True})
    assert failed is not None
    assert failed.state is CycleState.FAILED
    assert rejected.cycle is not None
    assert rejected.cycle.state is CycleState.REJECTED, rejected.cycle.reason
    # Only the outcomes: training and evaluating are steps on the way, not news.
    assert [b["event"] for b in hook.bodies] == [
        "retraining.cycle.failed", "retraining.cycle.rejected",
    ]  # fmt: skip
    assert hook.keys == [f"{failed.id}:failed", f"{rejected.cycle.id}:rejected"]
    first, second = hook.bodies
    assert (first["model"], first["state"]) == ("churn", "failed")
    assert first["cycle"]["id"] == failed.id
    assert "could not run" in first["cycle"]["reason"]
    assert second["cycle"]["version"] == rejected.cycle.version
    assert second["cycle"]["report"]["verdict"] == "rejected"
    err = capsys.readouterr().err
    assert f"driftline retraining churn: cycle {failed.id} failed: " in err
    assert f"cycle {rejected.cycle.id} rejected: " in err


def test_by_default_the_triggers_monitors_are_told_and_a_down_webhook_is_recorded(
    ws: Workspace,
) -> None:
    from driftline.core.notify import DeliveryPolicy
    from driftline.monitoring import MonitoringService

    loop = ws.service("retraining", RetrainingService).cycles
    loop.delivery = DeliveryPolicy(attempts=2, backoff=0.01, timeout=5.0)
    monitors = ws.service("monitoring", MonitoringService).monitors
    with webhook_receiver(fail=10_000) as down:
        monitors.create(
            "churn-hooked", deployment="churn", checks=["drift"], alerts=[f"webhook:{down.url}"]
        )
        try:
            loop.apply(POLICY + "triggers:\n  - drift: {monitor: churn-hooked}\n")
            assert loop.channels(loop.policy("churn")) == (f"webhook:{down.url}",)
            run = loop.run("churn", ws, payload={"dataset": "nobody@latest", "flip": False})
        finally:
            monitors.delete("churn-hooked")
        assert down.attempts == 2
    cycle = run.cycle
    assert cycle is not None
    assert cycle.state is CycleState.FAILED  # the outcome stays
    assert loop.advance("churn", ws) is None
    entries = ws.audit.entries(entity=cycle.id, limit=20)
    (noted,) = [e for e in entries if e.action == "retraining.cycle.notify_failed"]
    assert noted.after["event"] == "retraining.cycle.failed"
    assert noted.after["id"] == f"{cycle.id}:failed"
    (missed,) = noted.after["failed"]
    assert missed["channel"] == f"webhook:{down.url}"
    assert (missed["delivered"], missed["attempts"]) == (False, 2)
    assert "503" in missed["error"]
    assert ws.registry.verify_audit().ok


def test_a_cycle_waiting_for_approvals_says_so_to_the_channels(ws: Workspace) -> None:
    loop = ws.service("retraining", RetrainingService).cycles
    with webhook_receiver() as hook:
        lenient = POLICY.replace("by: 0.0", "by: -1.0")  # whoever is champion by now
        loop.apply(lenient + f"approvals: 1\nnotify: ['webhook:{hook.url}']\n")
        cycle = loop.run("churn", ws, payload={"dataset": "customers@latest", "flip": False}).cycle
        assert cycle is not None
        assert cycle.state is CycleState.AWAITING_APPROVAL, cycle.reason
        ended = loop.transition(cycle, CycleState.FAILED, reason="given up by the test")
    assert ended.state is CycleState.FAILED
    waiting, gave_up = hook.bodies
    assert waiting["event"] == "retraining.cycle.awaiting_approval"
    assert "waiting for 1 approval(s)" in waiting["cycle"]["reason"]
    assert gave_up["event"] == "retraining.cycle.failed"
