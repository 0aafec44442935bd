"""The retraining cycle engine: the rows a challenger is judged on, the policy's gates,
shadow-then-canary, and cycles whose driver was killed (a real process, SIGKILL) or that
stopped moving."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.retraining.engine_support import DRIVER, PIPELINES
from tests.retraining.retrain_support import (
    FEATURES,
    build_in,
    champion,
    customers,
    cycles,
    edited,
)

from driftline.core.clock import from_ms, now_ms
from driftline.errors import ConflictError, InvalidArgumentError
from driftline.retraining import RetrainingService
from driftline.retraining.cycles import Cycle, CycleState, Trigger
from driftline.workspace import Workspace

POLICY = """\
model: churn
deployment: churn
pipeline:
  name: engine_retrain
  module: engine_pipes
  params: {gate: "{trigger.gate}", mode: "{trigger.mode}"}
evaluate: {data: customers@latest, metric: roc_auc}
challenger_must_beat: {metric: roc_auc, by: 0.0, confidence: 0.9}
rollout: direct
cooldown: 0
max_cycles_per_day: 500
"""
GOOD = {"gate": "", "mode": "good"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    files = {"engine_pipes.py": PIPELINES, "drive.py": DRIVER}
    return build_in(tmp_path_factory, "retrain-engine", files)


def run(ws: Workspace, policy: str, **payload: str) -> Cycle:
    loop = cycles(ws)
    loop.apply(policy)
    cycle = loop.run("churn", ws, payload={**GOOD, **payload}).cycle
    assert cycle is not None
    return cycle


def deployment(ws: Workspace, name: str, **spec: Any) -> None:
    from driftline.serving import DeploymentService

    ws.service("serving", DeploymentService).apply(
        {"name": name, "model": "churn", "stable": "champion", **spec}
    )


def log_rows(ws: Workspace, name: str, rows: list[tuple[Any, ...]]) -> None:
    """Prediction-log rows: (request_id, version, variant, time, inputs, outputs, status)."""
    from driftline.serving import DeploymentService
    from driftline.serving.predlog import PredictionLog

    root = ws.service("serving", DeploymentService).prediction_root
    log = PredictionLog(root, name, flush_rows=10**6, flush_seconds=3600)
    for request_id, version, variant, at, inputs, outputs, status in rows:
        log.append(
            (request_id, "churn", version, variant, at, "predict", inputs, outputs, 1, 2.0,
             status, None if status < 400 else "boom")
        )  # fmt: skip
    log.close()


# -- the rows a challenger is judged on ------------------------------------------------


def labelled_traffic(ws: Workspace, name: str, rows: int, labelled: int) -> None:
    """``rows`` served requests of one row each in the last hour, ``labelled`` labelled."""
    import pandas as pd

    from driftline.monitoring import MonitoringService

    frame = customers(7, rows)
    start = datetime.now(UTC) - timedelta(hours=1)
    log_rows(ws, name, [
        (f"{name}-{i}", 1, "stable", start + timedelta(milliseconds=i),
         {f: [float(frame[f][i])] for f in FEATURES}, [0.5], 200)
        for i in range(rows)
    ])  # fmt: skip
    labels = pd.DataFrame(
        {"request_id": [f"{name}-{i}" for i in range(labelled)],
         "label": frame["label"][:labelled].astype(int)}
    )  # fmt: skip
    ws.service("monitoring", MonitoringService).log_labels(name, labels)


RECENT = (
    edited(
        POLICY,
        ("deployment: churn", "deployment: churn-recent"),
        (
            "evaluate: {data: customers@latest, metric: roc_auc}",
            "evaluate: {data: recent_labelled, window: 14d, fallback: customers@latest, "
            "metric: roc_auc, min_labels: 120}",
        ),
        ("rollout: direct", "rollout: canary"),
    )  # judged only: rejected or failed here
)


def test_the_labelled_production_window_is_used_when_it_has_enough_labels(ws: Workspace) -> None:
    deployment(ws, "churn-recent")
    labelled_traffic(ws, "churn-recent", rows=200, labelled=150)
    cycle = run(ws, RECENT)
    # No canary steps in churn-recent: an accepted challenger fails at rollout, after judging.
    assert cycle.report is not None, cycle.reason
    report = cycle.report
    assert report["data_source"] == "recent_labelled"
    assert report["data"] == "recent_labelled:churn-recent (last 14d)"
    assert report["rows"] == 150  # both models scored on the same 150 labelled rows
    assert "150 labelled production rows" in report["data_note"]


def test_too_few_labels_fall_back_to_the_dataset_and_say_why(ws: Workspace) -> None:
    deployment(ws, "churn-thin")
    labelled_traffic(ws, "churn-thin", rows=50, labelled=30)
    cycle = run(ws, edited(RECENT, ("churn-recent", "churn-thin")))
    assert cycle.report is not None, cycle.reason
    report = cycle.report
    assert report["data_source"] == "fallback"
    assert report["data"].startswith("customers@")
    assert "only 30 labelled production rows of deployment churn-thin" in report["data_note"]
    assert "120 needed" in report["data_note"]


def test_too_few_labels_and_no_fallback_fails_with_the_reason(ws: Workspace) -> None:
    deployment(ws, "churn-bare")
    before = champion(ws)
    bare = edited(RECENT, ("churn-recent", "churn-bare"), ("fallback: customers@latest, ", ""))
    cycle = run(ws, bare)
    assert cycle.state is CycleState.FAILED
    assert "only 0 labelled production rows of deployment churn-bare" in (cycle.reason or "")
    assert "no evaluate.fallback" in (cycle.reason or "")
    assert champion(ws) == before


def test_labelled_rows_are_the_inputs_and_the_label(ws: Workspace) -> None:
    from driftline.monitoring import MonitoringService

    deployment(ws, "churn-rows")
    labelled_traffic(ws, "churn-rows", rows=20, labelled=12)
    frame = ws.service("monitoring", MonitoringService).labelled_rows(
        "churn-rows", since=datetime.now(UTC) - timedelta(days=1), target="churned"
    )
    assert sorted(frame.columns) == sorted([*FEATURES, "churned"])
    assert len(frame) == 12
    assert frame["churned"].dtype.kind == "i"  # classes, not 0.0/1.0
    expected = customers(7, 20)
    assert frame["f0"].round(9).tolist() == expected["f0"][:12].round(9).tolist()
    assert frame["churned"].tolist() == expected["label"][:12].tolist()
    with pytest.raises(InvalidArgumentError, match="also an input"):
        ws.service("monitoring", MonitoringService).labelled_rows(
            "churn-rows", since=datetime.now(UTC) - timedelta(days=1), target="f0"
        )


# -- gates -----------------------------------------------------------------------------


def test_a_challenger_that_fails_the_gates_is_rejected_with_the_gate_report(
    ws: Workspace, built: dict[str, Any]
) -> None:
    (built["root"] / "strict-gates.yaml").write_text(
        "gates:\n  - {metric: roc_auc, max_regression: 0.5}\n  - {metric: roc_auc, min: 1.01}\n"
    )
    before = champion(ws)
    cycle = run(ws, POLICY + "gates: strict-gates.yaml\n")
    assert cycle.state is CycleState.REJECTED, cycle.reason
    assert cycle.report is not None
    assert cycle.report["verdict"] == "gated"
    gates = {g["gate"]: g for g in cycle.report["gates"]}
    assert gates["roc_auc >= 1.01"]["passed"] is False
    assert gates["roc_auc regression <= 0.5"]["passed"] is True
    # The champion is the baseline, on the same rows as the comparison.
    assert f"vs holder v{before}" in gates["roc_auc regression <= 0.5"]["detail"]
    assert "1 of 2 gate(s) failed" in (cycle.reason or "")
    assert "the champion stays" in (cycle.reason or "")
    assert champion(ws) == before


def test_gates_that_pass_are_reported_and_the_challenger_is_promoted(
    ws: Workspace, built: dict[str, Any]
) -> None:
    (built["root"] / "gates.yaml").write_text("gates:\n  - {metric: roc_auc, min: 0.5}\n")
    cycle = run(ws, POLICY + "gates: gates.yaml\n")
    assert cycle.state in (CycleState.PROMOTED, CycleState.REJECTED), cycle.reason
    if cycle.state is CycleState.PROMOTED:  # (a champion already as good: rejected instead)
        assert cycle.report is not None
        assert [g["passed"] for g in cycle.report["gates"]] == [True]
        assert champion(ws) == cycle.version


def test_apply_reads_the_gates_file_and_refuses_a_bad_one(
    ws: Workspace, built: dict[str, Any]
) -> None:
    loop = cycles(ws)
    policy_file = built["root"] / "policies" / "retrain.yaml"
    policy_file.parent.mkdir(exist_ok=True)
    (policy_file.parent / "g.yaml").write_text("gates:\n  - {metric: roc_auc, min: 0.6}\n")
    policy_file.write_text(POLICY + "gates: g.yaml\n")
    applied = loop.apply(policy_file)  # relative to the policy file, not the working folder
    assert applied.gates == {"gates": [{"metric": "roc_auc", "min": 0.6}]}
    assert loop.policy("churn").gates == applied.gates
    with pytest.raises(InvalidArgumentError, match=r"line 12: gates: .*nowhere.yaml does not"):
        loop.apply(POLICY + "gates: nowhere.yaml\n")
    (built["root"] / "typo.yaml").write_text("gates:\n  - {metric: roc_auc, mn: 0.6}\n")
    with pytest.raises(InvalidArgumentError, match="line 12: gates: Metric gate"):
        loop.apply(POLICY + "gates: typo.yaml\n")


# -- shadow, then canary ---------------------------------------------------------------

CANARY = {"steps": [50, 100], "interval": "1s", "min_requests": 10, "max_failed_checks": 2}


def versions(ws: Workspace, count: int) -> list[int]:
    """churn's version numbers, at least ``count`` of them (copies of churn/1 are added
    when a test runs alone)."""
    found = sorted(v.version for v in ws.registry.list_versions("churn"))
    source = ws.registry.get_version("churn/1").source
    while len(found) < count:
        found.append(ws.registry.register_model(source, "churn").version)
    return found


def shadowing(
    ws: Workspace, name: str, shadow: str = "{min_requests: 10}", *, before: Any = None
) -> Cycle:
    """A cycle of a better challenger shadowing deployment ``name`` (which has canary steps,
    and the shadow ``before`` when given)."""
    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    # The champion is weak: move it back so the challenger beats it.
    ws.registry.set_alias("churn", "champion", 1)
    older = versions(ws, 2)[-1]
    spec = {} if before is None else {"shadow": before}
    deployment(ws, name, canary={"version": older, **CANARY}, **spec)
    serving.rollback(name, reason="test setup: the spec keeps its canary steps")
    policy = edited(
        POLICY,
        ("deployment: churn", f"deployment: {name}"),
        ("rollout: direct", f"rollout: shadow-then-canary\nshadow: {shadow}"),
    )
    cycle = run(ws, policy)
    assert cycle.state is CycleState.ROLLING_OUT, cycle.reason
    assert cycle.rollout is not None
    assert cycle.rollout["applied"] == serving.get_deployment(name).generation
    return cycle


def mirrored(ws: Workspace, name: str, cycle: Cycle, count: int, status: int) -> None:
    """``count`` requests answered by stable and mirrored to the shadow since it started."""
    assert cycle.rollout is not None
    assert cycle.version is not None
    at = from_ms(int(cycle.rollout["since"]))
    rows: list[tuple[Any, ...]] = []
    for i in range(count):
        at += timedelta(microseconds=100)
        inputs = {"f0": [0.1 * i], "f1": [0.0], "f2": [0.0]}
        rows.append((f"m-{i}", 1, "stable", at, inputs, [i % 2], 200))
        rows.append((f"m-{i}", cycle.version, "shadow", at, inputs,
                     [i % 2] if status < 400 else None, status))  # fmt: skip
    log_rows(ws, name, rows)


def test_shadow_then_canary_shadows_first_then_starts_the_canary(ws: Workspace) -> None:
    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    cycle = shadowing(ws, "churn-sc")
    assert cycle.rollout is not None
    assert cycle.rollout["kind"] == "shadow"
    made = serving.get_deployment("churn-sc")
    assert made.rollout.shadow_version == cycle.version
    assert made.rollout.canary_version != cycle.version  # no canary yet
    waited = cycles(ws).advance("churn", ws)  # no mirrored requests yet: it waits
    assert waited is not None
    assert waited.generation == cycle.generation
    mirrored(ws, "churn-sc", cycle, 10, 200)
    moved = cycles(ws).advance("churn", ws)
    assert moved is not None
    assert moved.state is CycleState.ROLLING_OUT
    assert moved.rollout is not None
    assert moved.rollout["kind"] == "canary"
    assert moved.rollout["shadow_result"] == {
        "requests": 10, "error_rate": 0.0, "agreement": 1.0, "mean_abs_delta": 0.0,
    }  # fmt: skip
    now = serving.get_deployment("churn-sc")
    assert now.rollout.canary_version == cycle.version
    assert now.rollout.state.value == "progressing"
    assert now.spec.shadow is None  # the shadow ended when the canary started
    assert champion(ws) == 1  # the canary decides the promotion
    serving.rollback("churn-sc", reason="the canary degraded")
    ended = cycles(ws).advance("churn", ws)
    assert ended is not None
    assert ended.state is CycleState.ROLLED_BACK
    assert "the canary degraded" in (ended.reason or "")


def test_a_shadow_that_errors_is_rolled_back_and_the_champion_stays(ws: Workspace) -> None:
    from driftline.serving import DeploymentService

    cycle = shadowing(ws, "churn-sx")
    mirrored(ws, "churn-sx", cycle, 10, 500)
    ended = cycles(ws).advance("churn", ws)
    assert ended is not None
    assert ended.state is CycleState.ROLLED_BACK, ended.reason
    assert "error rate 100.00% above 0.00%" in (ended.reason or "")
    assert "10 mirrored requests" in (ended.reason or "")
    made = ws.service("serving", DeploymentService).get_deployment("churn-sx")
    assert made.spec.shadow is None
    assert made.rollout.canary_version != cycle.version
    assert champion(ws) == 1


@pytest.mark.parametrize("before", [None, {"version": "1", "sample": 0.5}])
def test_a_shadow_someone_else_ended_ends_the_cycle_and_is_not_applied_again(
    ws: Workspace, before: dict[str, Any] | None
) -> None:
    import dataclasses

    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    name = f"churn-gone-{'s' if before else 'n'}"
    cycle = shadowing(ws, name, before=before)
    made = serving.get_deployment(name)
    assert made.rollout.shadow_version == cycle.version
    serving.apply(dataclasses.replace(made.spec, shadow=None))  # an operator ends it
    ended = cycles(ws).advance("churn", ws)
    assert ended is not None
    assert ended.state is CycleState.FAILED, ended.reason
    assert (
        f"deployment {name}'s shadow of v{cycle.version} was ended by someone else before it "
        f"was judged; v{cycle.version} was not rolled out"
    ) == ended.reason
    after = serving.get_deployment(name)
    assert after.spec.shadow is None  # neither the cycle's again nor the one before it
    assert after.generation == made.generation + 1
    assert champion(ws) == 1


def test_a_canary_that_cannot_start_after_the_shadow_ends_the_shadow(ws: Workspace) -> None:
    import dataclasses

    from driftline.serving import DeploymentService, ShadowPolicy

    serving = ws.service("serving", DeploymentService)
    before = {"version": "1", "sample": 0.5}
    cycle = shadowing(ws, "churn-nosteps", before=before)
    mirrored(ws, "churn-nosteps", cycle, 10, 200)
    spec = serving.get_deployment("churn-nosteps").spec
    serving.apply(dataclasses.replace(spec, canary=None))  # an operator drops the steps
    ended = cycles(ws).advance("churn", ws)
    assert ended is not None
    assert ended.state is CycleState.FAILED, ended.reason
    assert ended.reason == (
        f"deployment churn-nosteps's spec lost its canary steps; v{cycle.version} was not "
        f"rolled out; the shadow of v{cycle.version} was ended"
    )
    after = serving.get_deployment("churn-nosteps")
    assert after.spec.shadow == ShadowPolicy(**before)  # the one before the cycle's, back
    assert after.rollout.shadow_version == 1
    assert ended.rollout is not None
    assert ended.rollout["shadow_result"]["requests"] == 10


def test_a_driver_that_stopped_after_the_shadow_was_judged_keeps_the_judgement(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    cycle = shadowing(ws, "churn-judged")
    mirrored(ws, "churn-judged", cycle, 10, 200)
    loop = cycles(ws)
    real = loop.deployments.apply

    class Stopped(Exception):
        """The driver died between the canary's apply and the cycle's move."""

    def apply_then_stop(spec: Any, *, expected: int | None = None) -> Any:
        real(spec, expected=expected)
        raise Stopped

    monkeypatch.setattr(loop.deployments, "apply", apply_then_stop)
    with pytest.raises(Stopped):
        loop.advance("churn", ws)
    judged = {"requests": 10, "error_rate": 0.0, "agreement": 1.0, "mean_abs_delta": 0.0}
    stopped = loop.cycle(cycle.id)
    assert stopped.rollout is not None
    assert stopped.rollout["kind"] == "shadow"
    assert stopped.rollout["shadow_result"] == judged  # recorded before the canary
    started = serving.get_deployment("churn-judged")
    assert started.rollout.canary_version == cycle.version
    monkeypatch.setattr(loop.deployments, "apply", real)
    resumed = loop.advance("churn", ws)
    assert resumed is not None
    assert resumed.state is CycleState.ROLLING_OUT, resumed.reason
    assert resumed.rollout is not None
    assert resumed.rollout["kind"] == "canary"
    assert resumed.rollout["shadow_result"] == judged
    assert serving.get_deployment("churn-judged").generation == started.generation
    serving.rollback("churn-judged", reason="test done")
    assert cycles(ws).advance("churn", ws).state is CycleState.ROLLED_BACK  # type: ignore[union-attr]


# -- failures leave production as it was -------------------------------------------------


def test_a_pipeline_that_fails_fails_the_cycle(ws: Workspace) -> None:
    before, versions = champion(ws), len(ws.registry.list_versions("churn"))
    cycle = run(ws, POLICY, mode="fail")
    assert cycle.state is CycleState.FAILED
    assert cycle.run_id is not None
    assert f"pipeline run {cycle.run_id} of engine_retrain ended FAILED" in (cycle.reason or "")
    assert "training diverged" in (cycle.reason or "")
    assert champion(ws) == before
    assert len(ws.registry.list_versions("churn")) == versions


def test_a_model_that_cannot_load_fails_the_cycle(ws: Workspace, built: dict[str, Any]) -> None:
    (built["root"] / "broken.marker").unlink(missing_ok=True)
    before = champion(ws)
    cycle = run(ws, POLICY, mode="broken")
    assert cycle.state is CycleState.FAILED, cycle.reason
    reason = cycle.reason or ""
    assert f"comparing churn/{cycle.version} with churn@champion" in reason
    assert "its weights file is gone" in reason
    assert champion(ws) == before


def test_a_cycle_stuck_past_its_limit_ends_failed(ws: Workspace) -> None:
    loop = cycles(ws)
    loop.apply(POLICY + "stuck_after: 5s\n")
    started = loop.trigger("churn", Trigger("manual", "test")).cycle
    assert started is not None
    # Its driver moved it to training ten seconds ago, and has not been heard of since.
    old = now_ms() - 10_000
    training = loop.store.transition(started, CycleState.TRAINING, actor="test", now=old)
    ended = loop.advance("churn", ws)
    assert ended is not None
    assert ended.id == training.id
    assert ended.state is CycleState.FAILED
    assert f"stuck in training since {from_ms(old):%Y-%m-%d %H:%M:%S} UTC" in (ended.reason or "")
    assert loop.advance("churn", ws) is None


def test_a_long_pipeline_with_a_live_driver_is_not_stuck(ws: Workspace) -> None:
    """Past stuck_after, but its driver holds the lease (it is renewing it while the
    pipeline runs): another driver leaves the cycle alone."""
    from driftline.retraining.lease import CycleLease

    loop = cycles(ws)
    loop.apply(POLICY + "stuck_after: 5s\n")
    started = loop.trigger("churn", Trigger("manual", "test")).cycle
    assert started is not None
    old = now_ms() - 10_000
    training = loop.store.transition(started, CycleState.TRAINING, actor="test", now=old)
    trainer = CycleLease(ws, training.id, holder="another-driver", ttl=60.0)
    assert trainer.acquire()
    after = loop.advance("churn", ws)
    assert after is not None
    assert after.state is CycleState.TRAINING, after.reason
    trainer.release()  # it stopped: now the cycle is stuck (and its driver gone)
    ended = loop.advance("churn", ws)
    assert ended is not None
    assert ended.state is CycleState.FAILED


def test_a_dead_drivers_finished_run_is_resumed(ws: Workspace) -> None:
    """The driver died after its pipeline run finished, before the cycle moved on."""
    from driftline.pipelines import PipelineService, get_pipeline
    from driftline.retraining.driver import TAG_CYCLE

    loop = cycles(ws)
    loop.apply(POLICY)
    started = loop.trigger("churn", Trigger("manual", "test", dict(GOOD))).cycle
    assert started is not None
    training = loop.store.transition(started, CycleState.TRAINING, actor="test", now=now_ms())
    result = PipelineService.for_workspace(ws).run(
        get_pipeline("engine_retrain"), {}, tags={TAG_CYCLE: training.id}, force=True
    )
    ended = loop.advance("churn", ws)
    assert ended is not None
    assert ended.id == training.id
    assert ended.run_id == result.record.id  # resumed with its run, not trained again
    assert ended.state in (CycleState.PROMOTED, CycleState.REJECTED), ended.reason


# -- a driver killed with SIGKILL while the cycle trains -----------------------------------


def driver(built: dict[str, Any], ttl: float, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    return subprocess.Popen(
        [sys.executable, "drive.py", str(built["home"]), str(ttl), *args],
        cwd=built["root"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip


def wait_for(what: str, check: Any, timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_driver_killed_while_training_leaves_a_cycle_that_ends_failed(
    ws: Workspace, built: dict[str, Any], tmp_path: Path
) -> None:
    from driftline.tracking import RunStatus

    loop = cycles(ws)
    loop.apply(POLICY)
    before, versions = champion(ws), len(ws.registry.list_versions("churn"))
    process = driver(built, 3.0, "run", f"gate={tmp_path}", "mode=good")
    try:
        wait_for("the step to start", lambda: (tmp_path / "started").exists()
                 or process.poll() is not None)  # fmt: skip
        assert process.poll() is None, process.communicate()
        training = loop.status("churn")
        assert training is not None
        assert training.state is CycleState.TRAINING
        # Its driver is alive and renews its lease: another driver leaves the cycle alone.
        assert loop.advance("churn", ws) == training
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    (tmp_path / "go").write_text("")  # nothing is left to let go
    lease = f"retraining.cycle.{training.id}"
    store: Any = ws.service("pipelines", object)
    wait_for("the dead driver's lease to expire",
             lambda: store.get_lease(lease).expires_at < datetime.now(UTC))  # fmt: skip
    restarted = driver(built, 3.0, "advance")
    out, err = restarted.communicate(timeout=240)
    assert restarted.returncode == 0, err
    ended = json.loads(out)
    assert ended["id"] == training.id
    assert ended["state"] == "failed"
    assert "the driver training it stopped before the pipeline finished" in ended["reason"]
    assert ended["run_id"] is not None
    assert ws.tracking.get_run(ended["run_id"]).status is RunStatus.FAILED
    assert champion(ws) == before
    assert len(ws.registry.list_versions("churn")) == versions
    assert loop.advance("churn", ws) is None  # nothing left open


# -- what a cycle made, and a direct rollout a driver left half-done ----------------------


def test_a_versions_lineage_names_the_cycle_and_the_alert_behind_it(
    ws: Workspace, built: dict[str, Any]
) -> None:
    loop = cycles(ws)
    loop.apply(POLICY)
    cause = Trigger("alert", "alert-7", {"alert_id": "alert-7", "monitor": "churn-prod", **GOOD})
    started = loop.trigger("churn", cause).cycle
    assert started is not None
    ended = loop.advance("churn", ws)
    assert ended is not None
    assert ended.version is not None
    lineage = ws.service("retraining", RetrainingService).lineage(f"churn/{ended.version}")
    assert lineage.retraining_cycle == {
        "id": ended.id, "state": ended.state.value, "trigger": "alert",
        "trigger_ref": "alert-7", "alert": "alert-7", "run_id": ended.run_id,
    }  # fmt: skip
    assert ws.service("retraining", RetrainingService).lineage("churn/1").retraining_cycle is None
    # trace: from a prediction the challenger answered to the cycle and the alert.
    at = datetime.now(UTC) - timedelta(minutes=5)
    inputs = {"f0": [0.1], "f1": [0.2], "f2": [0.3]}
    log_rows(ws, "churn", [("req-by-cycle", ended.version, "stable", at, inputs, [1], 200)])
    traced = ws.service("retraining", RetrainingService).trace("req-by-cycle")
    assert [v.retraining_cycle for v in traced.versions] == [lineage.retraining_cycle]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env["COLUMNS"] = "250"  # one tree line per link, not wrapped
    shown = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "--home", str(built["home"]), "trace",
         "req-by-cycle"], env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert f"made by retraining cycle {ended.id}" in shown.stdout
    assert "triggered by alert alert-7" in shown.stdout


def rolling_out_directly(ws: Workspace, version: int, held: int, *, ago_ms: int = 0) -> Cycle:
    """A cycle recorded as moving @champion from ``held`` to ``version`` (its driver died),
    ``ago_ms`` ago (past its 5 s ``stuck_after`` when that is more than 5,000)."""
    loop = cycles(ws)
    loop.apply(POLICY + "stuck_after: 5s\n")
    cycle = loop.trigger("churn", Trigger("manual", "test")).cycle
    assert cycle is not None
    for to, products in (
        (CycleState.TRAINING, {}),
        (CycleState.EVALUATING, {"version": version}),
        (CycleState.ROLLING_OUT, {"rollout": {"deployment": "churn", "kind": "direct",
                                              "alias": "champion", "from": held}}),
    ):  # fmt: skip
        cycle = loop.store.transition(cycle, to, actor="test", now=now_ms() - ago_ms, **products)
    return cycle


def alias_moves(ws: Workspace) -> int:
    """How many times a churn alias was moved (audited)."""
    return sum(1 for e in ws.registry.audit_log(model="churn", limit=None) if "alias" in e.action)


@pytest.mark.parametrize("stuck", [False, True])
@pytest.mark.parametrize("moved_before_dying", [True, False])
def test_a_direct_rollout_left_half_done_is_finished_once(
    ws: Workspace, moved_before_dying: bool, stuck: bool
) -> None:
    """Finished by the alias compare-and-set, even past stuck_after: a cycle whose
    challenger may already serve is never failed as stuck."""
    ws.registry.set_alias("churn", "champion", 1)
    version = versions(ws, 2)[-1]
    cycle = rolling_out_directly(ws, version, held=1, ago_ms=10_000 if stuck else 0)
    if moved_before_dying:
        ws.registry.set_alias("churn", "champion", version, expected=1)
    moves = alias_moves(ws)
    ended = cycles(ws).advance("churn", ws)
    assert ended is not None
    assert ended.id == cycle.id
    assert ended.state is CycleState.PROMOTED, ended.reason
    assert champion(ws) == version
    assert alias_moves(ws) == moves + (0 if moved_before_dying else 1)


def test_an_alias_moved_by_someone_else_during_a_direct_rollout_stays(ws: Workspace) -> None:
    ws.registry.set_alias("churn", "champion", 1)
    found = versions(ws, 3)
    cycle = rolling_out_directly(ws, found[-1], held=1)
    ws.registry.set_alias("churn", "champion", found[-2], expected=1)
    ended = cycles(ws).advance("churn", ws)
    assert ended is not None
    assert ended.id == cycle.id
    assert ended.state is CycleState.FAILED
    assert f"was moved to v{found[-2]} by someone else" in (ended.reason or "")
    assert champion(ws) == found[-2]


def test_two_drivers_at_once_run_the_pipeline_once(
    ws: Workspace, built: dict[str, Any], tmp_path: Path
) -> None:
    from driftline.retraining.driver import TAG_CYCLE

    loop = cycles(ws)
    loop.apply(POLICY)
    cause = Trigger("manual", "test", {"gate": str(tmp_path), "mode": "good"})
    cycle = loop.trigger("churn", cause).cycle
    assert cycle is not None
    first, second = driver(built, 3.0, "advance"), driver(built, 3.0, "advance")
    try:
        wait_for("a step to start", lambda: (tmp_path / "started").exists())
        # One driver trains; the other finds the cycle claimed and leaves it.
        done = wait_for("one driver to leave", lambda: [p for p in (first, second)
                                                         if p.poll() is not None])  # fmt: skip
        out, err = done[0].communicate(timeout=30)
        assert done[0].returncode == 0, err
        assert json.loads(out)["state"] in ("triggered", "training")
        (tmp_path / "go").write_text("")
        trainer = second if done[0] is first else first
        out, err = trainer.communicate(timeout=240)
        assert trainer.returncode == 0, err
    finally:
        for process in (first, second):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)
    ended = json.loads(out)
    assert ended["id"] == cycle.id
    assert ended["state"] in ("promoted", "rejected"), ended["reason"]
    runs = ws.tracking.search_runs(filter=f"tags.`{TAG_CYCLE}` = '{cycle.id}'").items
    pipeline_runs = [r for r in runs if "driftline.pipeline.run" not in r.tags]
    assert [r.id for r in pipeline_runs] == [ended["run_id"]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("shadow: {min_requests: 5}\n", "shadow applies to rollout: shadow-then-canary"),
        ("stuck_after: forever\n", "stuck_after must be a duration"),
    ],
)
def test_contradictory_or_bad_recovery_settings_are_refused(
    ws: Workspace, extra: str, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=f"line 12: {message}"):
        cycles(ws).apply(POLICY + extra)


def test_shadow_and_stuck_after_are_kept_with_the_policy(ws: Workspace) -> None:
    loop = cycles(ws)
    loop.apply(edited(POLICY, ("rollout: direct", "rollout: shadow-then-canary"))
               + "shadow: {min_requests: 5, min_agreement: 0.9}\nstuck_after: 2h\n")  # fmt: skip
    policy = loop.policy("churn")
    assert policy.shadow.min_requests == 5
    assert policy.shadow.min_agreement == 0.9
    assert policy.stuck_after_seconds == 7200


# -- a shadow bounded in time, and the rollout a stuck cycle leaves ----------------------


def advanced_until_ended(ws: Workspace, cycle_id: str, timeout: float = 30.0) -> Cycle:
    """Advance ``churn``'s cycles until ``cycle_id`` ends (a period or stuck_after runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cycles(ws).advance("churn", ws)
        found = cycles(ws).cycle(cycle_id)
        if found.ended:
            return found
        time.sleep(0.05)
    raise AssertionError(f"cycle {cycle_id} did not end within {timeout:g} s")


def test_a_shadow_with_too_few_requests_by_its_period_is_rolled_back(ws: Workspace) -> None:
    from driftline.serving import DeploymentService

    cycle = shadowing(ws, "churn-sp", "{min_requests: 10, period: 2s}")
    mirrored(ws, "churn-sp", cycle, 5, 200)
    waited = cycles(ws).advance("churn", ws)  # within its period: more requests may come
    assert waited is not None
    assert waited.state is CycleState.ROLLING_OUT
    ended = advanced_until_ended(ws, cycle.id)
    assert ended.state is CycleState.ROLLED_BACK, ended.reason
    assert (
        f"the shadow v{cycle.version} answered 5 mirrored request(s) in shadow.period (2 s), "
        "fewer than shadow.min_requests (10)" in (ended.reason or "")
    )
    assert ended.rollout is not None
    assert ended.rollout["shadow_result"]["requests"] == 5
    made = ws.service("serving", DeploymentService).get_deployment("churn-sp")
    assert made.spec.shadow is None
    assert made.rollout.canary_version != cycle.version
    assert champion(ws) == 1


def canary_rolling_out(ws: Workspace, name: str) -> tuple[Cycle, str]:
    """A cycle whose canary runs in deployment ``name``, and its policy."""
    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    ws.registry.set_alias("churn", "champion", 1)
    deployment(ws, name, canary={"version": versions(ws, 2)[-1], **CANARY})
    serving.rollback(name, reason="test setup: the spec keeps its canary steps")
    policy = edited(
        POLICY, ("deployment: churn", f"deployment: {name}"), ("rollout: direct", "rollout: canary")
    )
    cycle = run(ws, policy)
    assert cycle.state is CycleState.ROLLING_OUT, cycle.reason
    assert serving.get_deployment(name).rollout.canary_version == cycle.version
    return cycle, policy


def test_a_stuck_cycles_canary_is_rolled_back_by_compare_and_set(ws: Workspace) -> None:
    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    cycle, policy = canary_rolling_out(ws, "churn-stuck")
    made = serving.get_deployment("churn-stuck")
    with pytest.raises(ConflictError, match="changed since it was read"):
        serving.rollback("churn-stuck", expected=made.generation - 1)
    assert serving.get_deployment("churn-stuck").rollout.state.value == "progressing"
    cycles(ws).apply(policy + "stuck_after: 1s\n")
    ended = advanced_until_ended(ws, cycle.id)
    assert ended.state is CycleState.FAILED
    reason = ended.reason or ""
    assert "stuck in rolling_out since" in reason
    assert f"deployment churn-stuck's canary of v{cycle.version} was rolled back" in reason
    after = serving.get_deployment("churn-stuck")
    assert after.rollout.state.value == "rolled_back"
    assert f"retraining cycle {cycle.id} was stuck" in (after.rollout.message or "")
    assert champion(ws) == 1


def test_a_stuck_cycles_canary_that_ended_meanwhile_ends_the_cycle_as_it_ended(
    ws: Workspace,
) -> None:
    from driftline.serving import DeploymentService

    cycle, policy = canary_rolling_out(ws, "churn-ended")
    cycles(ws).apply(policy + "stuck_after: 1s\n")
    ws.service("serving", DeploymentService).rollback("churn-ended", reason="by hand")
    wait_for("stuck_after to pass", lambda: datetime.now(UTC) - cycle.updated_at
             > timedelta(seconds=1.2))  # fmt: skip
    ended = advanced_until_ended(ws, cycle.id)
    assert ended.state is CycleState.ROLLED_BACK, ended.reason
    assert "by hand" in (ended.reason or "")


def test_a_stuck_cycle_leaves_a_canary_that_is_not_its_own_alone(ws: Workspace) -> None:
    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    cycle, policy = canary_rolling_out(ws, "churn-other")
    other = ws.registry.register_model(ws.registry.get_version("churn/1").source, "churn").version
    deployment(ws, "churn-other", canary={"version": other, **CANARY})  # someone else's
    cycles(ws).apply(policy + "stuck_after: 1s\n")
    wait_for("stuck_after to pass", lambda: datetime.now(UTC) - cycle.updated_at
             > timedelta(seconds=1.2))  # fmt: skip
    ended = advanced_until_ended(ws, cycle.id)
    assert ended.state is CycleState.FAILED, ended.reason
    assert f"canary of v{cycle.version} was not running (nothing to end)" in (ended.reason or "")
    after = serving.get_deployment("churn-other").rollout
    assert after.canary_version == other
    assert after.state.value == "progressing"


def test_a_stuck_cycles_shadow_is_ended(ws: Workspace) -> None:
    from driftline.serving import DeploymentService

    cycle = shadowing(ws, "churn-ss")
    cycles(ws).apply(
        edited(
            POLICY,
            ("deployment: churn", "deployment: churn-ss"),
            ("rollout: direct", "rollout: shadow-then-canary\nshadow: {min_requests: 10}"),
        )
        + "stuck_after: 1s\n"
    )
    ended = advanced_until_ended(ws, cycle.id)
    assert ended.state is CycleState.FAILED
    assert f"deployment churn-ss's shadow of v{cycle.version} was ended" in (ended.reason or "")
    made = ws.service("serving", DeploymentService).get_deployment("churn-ss")
    assert made.spec.shadow is None
    assert made.rollout.shadow_version is None
    assert champion(ws) == 1


@pytest.mark.parametrize(
    ("shadow", "message"),
    [
        ("{period: soon}", "shadow.period must be a duration like 6h or 14d, got 'soon'"),
        ("{period: 2d}", r"shadow.period \(172800 s\) must be shorter than stuck_after"),
    ],
)
def test_a_bad_shadow_period_is_refused(ws: Workspace, shadow: str, message: str) -> None:
    policy = edited(POLICY, ("rollout: direct", f"rollout: shadow-then-canary\nshadow: {shadow}"))
    with pytest.raises(InvalidArgumentError, match=message):
        cycles(ws).apply(policy)


def test_a_shadow_period_is_kept_with_the_policy(ws: Workspace) -> None:
    loop = cycles(ws)
    loop.apply(edited(POLICY, ("rollout: direct", "rollout: shadow-then-canary"))
               + "shadow: {min_requests: 5, period: 30m}\n")  # fmt: skip
    assert loop.policy("churn").shadow.period_seconds == 1800
    loop.apply(edited(POLICY, ("rollout: direct", "rollout: shadow-then-canary")))
    assert loop.policy("churn").shadow.period_seconds is None


# -- a rollout applies the deployment as read (compare-and-set) --------------------------


def meanwhile(monkeypatch: pytest.MonkeyPatch, ws: Workspace, change: Any) -> list[int]:
    """Run ``change(apply)`` (someone else's edit, with the real apply) just before the
    retraining loop's first apply of a deployment lands; the loop's applies are counted."""
    serving = cycles(ws).deployments
    real = serving.apply
    applied: list[int] = []

    def apply(spec: Any, *, expected: int | None = None) -> Any:
        if not applied:
            change(real)
        applied.append(1)
        return real(spec, expected=expected)

    monkeypatch.setattr(serving, "apply", apply)
    return applied


def rolled_back_canary(ws: Workspace, name: str) -> str:
    """Deployment ``name`` with canary steps (its last canary rolled back), and the policy
    rolling out through its canary; no cycle is left open (one would absorb the next)."""
    from driftline.serving import DeploymentService

    for cycle in cycles(ws).store.cycles("churn", open_only=True):
        cycles(ws).store.transition(
            cycle, CycleState.FAILED, actor="test", now=now_ms(), reason="test setup"
        )

    ws.registry.set_alias("churn", "champion", 1)
    deployment(ws, name, canary={"version": versions(ws, 2)[-1], **CANARY})
    ws.service("serving", DeploymentService).rollback(name, reason="test setup")
    return edited(
        POLICY, ("deployment: churn", f"deployment: {name}"), ("rollout: direct", "rollout: canary")
    )


def test_an_operators_edit_between_read_and_apply_is_kept_by_the_canary(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    policy = rolled_back_canary(ws, "churn-edit")

    def operator(apply: Any) -> None:
        spec = serving.get_deployment("churn-edit").spec
        apply(dataclasses.replace(spec, log_sample=0.25))

    applied = meanwhile(monkeypatch, ws, operator)
    cycle = run(ws, policy)
    assert cycle.state is CycleState.ROLLING_OUT, cycle.reason
    made = serving.get_deployment("churn-edit")
    assert made.spec.log_sample == 0.25  # the operator's edit stands
    assert made.rollout.canary_version == cycle.version
    assert made.rollout.state.value == "progressing"
    assert len(applied) == 2  # the lost compare-and-set, then the one on the edit


def test_a_canary_an_operator_started_between_read_and_apply_is_not_replaced(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    policy = rolled_back_canary(ws, "churn-theirs")
    theirs = ws.registry.register_model(ws.registry.get_version("churn/1").source, "churn")

    def operator(apply: Any) -> None:
        spec = serving.get_deployment("churn-theirs").spec
        assert spec.canary is not None
        canary = dataclasses.replace(spec.canary, version=str(theirs.version))
        apply(dataclasses.replace(spec, canary=canary))

    meanwhile(monkeypatch, ws, operator)
    cycle = run(ws, policy)
    assert cycle.state is CycleState.FAILED, cycle.reason
    assert (
        f"deployment churn-theirs runs a canary of v{theirs.version} (progressing) that this "
        f"cycle did not start; it is left running and v{cycle.version} was not rolled out"
    ) in (cycle.reason or "")
    after = serving.get_deployment("churn-theirs").rollout
    assert after.canary_version == theirs.version
    assert after.state.value == "progressing"
    assert champion(ws) == 1


def test_an_operators_edit_between_read_and_apply_is_kept_by_the_shadow(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    policy = edited(
        rolled_back_canary(ws, "churn-shadow-edit"),
        ("rollout: canary", "rollout: shadow-then-canary\nshadow: {min_requests: 10}"),
    )

    def operator(apply: Any) -> None:
        spec = serving.get_deployment("churn-shadow-edit").spec
        apply(dataclasses.replace(spec, log_sample=0.5))

    meanwhile(monkeypatch, ws, operator)
    cycle = run(ws, policy)
    assert cycle.state is CycleState.ROLLING_OUT, cycle.reason
    made = serving.get_deployment("churn-shadow-edit")
    assert made.spec.log_sample == 0.5
    assert made.rollout.shadow_version == cycle.version


def test_a_driver_that_stopped_after_applying_the_canary_starts_no_second_one(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    policy = rolled_back_canary(ws, "churn-resume")
    loop = cycles(ws)
    real = loop.deployments.apply

    class Stopped(Exception):
        """The driver died between the apply and the cycle's move."""

    def apply_then_stop(spec: Any, *, expected: int | None = None) -> Any:
        real(spec, expected=expected)
        raise Stopped

    monkeypatch.setattr(loop.deployments, "apply", apply_then_stop)
    loop.apply(policy)
    with pytest.raises(Stopped):
        loop.run("churn", ws, payload=dict(GOOD))
    started = serving.get_deployment("churn-resume")
    monkeypatch.setattr(loop.deployments, "apply", real)
    resumed = loop.advance("churn", ws)
    assert resumed is not None
    assert resumed.state is CycleState.ROLLING_OUT, resumed.reason
    assert resumed.rollout is not None
    assert resumed.rollout["canary_version"] == started.rollout.canary_version == resumed.version
    after = serving.get_deployment("churn-resume")
    assert after.generation == started.generation  # nothing applied again
    assert after.rollout.window_start == started.rollout.window_start
