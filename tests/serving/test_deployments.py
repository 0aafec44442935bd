"""Deployment records and their rollouts, through the service, the Python API and the CLI.

The canary controller is driven here with prediction-log rows written directly
(deterministic traffic) and explicit clock values; the serving processes that write
those rows for real are in ``test_rollout_serving.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import FlakyNames, webhook_receiver
from tests.serving.conftest import build_workspace, reset_default_workspace

from driftline.errors import ConflictError, InvalidArgumentError, NotFoundError
from driftline.serving.deployments import DeploymentService
from driftline.serving.models import RolloutState
from driftline.serving.predlog import PredictionLog
from driftline.workspace import Workspace

# In the past: a prediction-log file only holds rows that arrived before it was written.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("deployments") / ".driftline"
    found = build_workspace(home)
    reset_default_workspace()
    return {**found, "home": home}


@pytest.fixture
def ws(built: dict[str, Any]) -> Iterator[Workspace]:
    with Workspace.from_settings(built["settings"]) as workspace:
        yield workspace


def service_of(ws: Workspace) -> DeploymentService:
    return ws.service("serving", DeploymentService)


def spec(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "model": "churn", "stable": "champion", **extra}


def canary(version: Any = 2, **extra: Any) -> dict[str, Any]:
    return {"version": version, "steps": [10, 50, 100], "interval": "1s", "min_requests": 20,
            "max_failed_checks": 2, **extra}  # fmt: skip


def write_rows(
    ws: Workspace, name: str, start: datetime, *, stable: int, canary: int,
    canary_status: int = 200, canary_latency: float = 2.0, canary_output: int = 1,
) -> None:  # fmt: skip
    """Deterministic traffic: ``stable`` and ``canary`` requests one millisecond apart."""
    service = service_of(ws)
    log = PredictionLog(service.prediction_root, name, flush_rows=10**6, flush_seconds=3600)
    at = start
    for variant, count, status, latency, version in (
        ("stable", stable, 200, 2.0, 1),
        ("canary", canary, canary_status, canary_latency, 2),
    ):
        for i in range(count):
            at += timedelta(milliseconds=1)
            output = [i % 2] if variant == "stable" else [canary_output if i % 2 else 0]
            log.append(
                (f"{variant}-{at.timestamp()}", "churn", version, variant, at, "predict",
                 {"f0": [1.0]}, None if status != 200 else output, 1, latency, status,
                 None if status == 200 else "ZeroDivisionError: boom")
            )  # fmt: skip
    log.close()
    assert log.stats()["written"] == stable + canary


# -- records ---------------------------------------------------------------------------


def test_apply_creates_a_record_audited_and_reapplying_changes_nothing(ws: Workspace) -> None:
    service = service_of(ws)
    created = service.apply(spec("plain", batching={"max_batch_size": 8}))
    assert created.rollout.state == RolloutState.STABLE
    assert created.canary_weight == 0
    assert created.spec.batching is not None
    assert created.spec.batching.max_batch_size == 8
    assert {str(v): t.ref for v, t in created.targets().items()} == {"stable": "churn@champion"}
    again = service.apply(spec("plain", batching={"max_batch_size": 8}))
    assert again.generation == created.generation
    history = service.history("plain")
    assert [e.action for e in history] == ["deploy_apply"]
    assert history[0].after["spec"]["batching"]["max_batch_size"] == 8
    assert service.get_deployment("plain") == created
    assert "plain" in [d.name for d in service.list_deployments()]
    with pytest.raises(NotFoundError, match="did you mean 'plain'"):
        service.get_deployment("plan")
    assert ws.registry.verify_audit().ok


def test_bad_specs_are_refused_naming_the_field(ws: Workspace, tmp_path: Path) -> None:
    service = service_of(ws)
    with pytest.raises(NotFoundError, match="canary version churn/99 does not exist"):
        service.apply(spec("bad", canary=canary(99)))
    with pytest.raises(NotFoundError, match="stable version churn@nope"):
        service.apply({"name": "bad", "model": "churn", "stable": "nope"})
    with pytest.raises(InvalidArgumentError, match="is the stable version already"):
        service.apply(spec("bad", canary=canary(1)))
    with pytest.raises(InvalidArgumentError, match=r"canary\.steps must rise"):
        service.apply(spec("bad", canary=canary(steps=[50, 10])))
    file = tmp_path / "deploy.yaml"
    file.write_text("name: bad\nmodel: churn\nstable: champion\ncanary:\n  version: 2\n"
                    "  interval: soon\n")  # fmt: skip
    with pytest.raises(InvalidArgumentError, match=r"deploy.yaml line 6: canary.interval"):
        service.apply(file)
    assert service.find_deployment("bad") is None


def test_a_canary_failing_the_gates_is_refused(ws: Workspace) -> None:
    from driftline.registry import GateFailedError

    service = service_of(ws)
    # The versions' runs logged no training data, so data validation cannot pass.
    with pytest.raises(GateFailedError, match="data validation passed"):
        service.apply(
            spec("gated", canary=canary(), gates={"gates": [{"data_validation": "passed"}]})
        )
    assert service.find_deployment("gated") is None
    passed = service.apply(
        spec("gated", canary=canary(), gates={"gates": [{"signature": "compatible"}]})
    )
    assert passed.rollout.state == RolloutState.PROGRESSING
    assert passed.rollout.canary_version == 2


def test_pause_resume_rollback_transitions(ws: Workspace) -> None:
    service = service_of(ws)
    service.apply(spec("moves", canary=canary()))
    assert service.pause("moves").rollout.state == RolloutState.PAUSED
    with pytest.raises(ConflictError, match="only a progressing rollout"):
        service.pause("moves")
    resumed = service.resume("moves")
    assert resumed.rollout.state == RolloutState.PROGRESSING
    assert resumed.canary_weight == 10
    rolled = service.rollback("moves", reason="testing")
    assert rolled.rollout.state == RolloutState.ROLLED_BACK
    assert rolled.canary_weight == 0
    assert "canary" not in {str(v) for v in rolled.targets()}
    with pytest.raises(ConflictError, match="nothing to roll back"):
        service.rollback("moves")
    actions = [e.action for e in service.history("moves")]
    assert actions == ["deploy_rollback", "deploy_resume", "deploy_pause", "deploy_apply"]


def test_apply_and_rollback_with_expected_change_only_what_the_caller_read(
    ws: Workspace,
) -> None:
    service = service_of(ws)
    read = service.apply(spec("cas", canary=canary()))
    paused = service.pause("cas")  # someone else's change after the read
    with pytest.raises(ConflictError, match="changed since it was read"):
        service.apply(spec("cas"), expected=read.generation)
    with pytest.raises(ConflictError, match="changed since it was read"):
        service.rollback("cas", expected=read.generation)
    assert service.get_deployment("cas").rollout.state == RolloutState.PAUSED
    rolled = service.rollback("cas", expected=paused.generation)
    assert rolled.rollout.state == RolloutState.ROLLED_BACK
    applied = service.apply(spec("cas"), expected=rolled.generation)
    assert applied.spec.canary is None
    with pytest.raises(ConflictError, match="changed since it was read"):
        service.apply(spec("cas-new"), expected=0)  # nothing was read: it does not exist


# -- the canary controller ---------------------------------------------------------------


def _progressing(service: DeploymentService, name: str, **extra: Any) -> None:
    """A rollout whose window starts at T0 (the clock is ours in these tests)."""
    import dataclasses

    made = service.apply(spec(name, **extra))
    rollout = dataclasses.replace(made.rollout, window_start=T0, next_check_at=T0)
    service.store.save_deployment(
        dataclasses.replace(made, rollout=rollout), expected=made.generation, actor="test",
        action=None,
    )  # fmt: skip


def test_a_healthy_canary_steps_through_and_is_promoted(built: dict[str, Any]) -> None:
    with Workspace.from_settings(built["settings"]) as ws:
        service = service_of(ws)
        ws.registry.set_alias("churn", "target", 1)
        _progressing(service, "good", stable="target", canary=canary())
        # Too little traffic: wait, never step.
        write_rows(ws, "good", T0, stable=30, canary=5)
        waited = service.tick("good", now=T0 + timedelta(seconds=1))
        assert waited is not None
        assert waited.rollout.state == RolloutState.PROGRESSING
        assert waited.rollout.step == 0
        assert "too little traffic" in waited.rollout.message
        assert service.tick("good", now=T0 + timedelta(seconds=1.5)) is None  # not due yet
        write_rows(ws, "good", T0 + timedelta(seconds=1), stable=30, canary=30)
        stepped = service.tick("good", now=T0 + timedelta(seconds=2))
        assert stepped is not None
        assert stepped.rollout.step == 1
        assert stepped.canary_weight == 50
        write_rows(ws, "good", T0 + timedelta(seconds=2, milliseconds=100), stable=25, canary=25)
        promoted = service.tick("good", now=T0 + timedelta(seconds=3))
        assert promoted is not None
        assert promoted.rollout.state == RolloutState.PROMOTED
        assert promoted.canary_weight == 0
        assert ws.registry.get_model("churn").aliases["target"] == 2  # moved by the registry
        actions = [e.action for e in service.history("good")]
        assert actions == ["deploy_promote", "deploy_step", "deploy_apply"]
        check = service.history("good")[1].after["check"]
        assert check["verdict"] == "pass"
        assert check["requests"] == {
            "stable": 60,
            "canary": 35,
        }
        # Rolled back after the promotion: the alias moves back.
        back = service.rollback("good")
        assert back.rollout.state == RolloutState.ROLLED_BACK
        assert ws.registry.get_model("churn").aliases["target"] == 1
        assert ws.registry.verify_audit().ok


def test_a_failing_canary_is_rolled_back_after_max_failed_checks(ws: Workspace) -> None:
    service = service_of(ws)
    _progressing(service, "bad", canary=canary())
    write_rows(ws, "bad", T0, stable=30, canary=30, canary_status=500)
    first = service.tick("bad", now=T0 + timedelta(seconds=1))
    assert first is not None
    assert first.rollout.failed_checks == 1
    assert first.rollout.state == RolloutState.PROGRESSING
    assert "error_rate" in first.rollout.message
    write_rows(ws, "bad", T0 + timedelta(seconds=1), stable=30, canary=30, canary_status=500)
    second = service.tick("bad", now=T0 + timedelta(seconds=2))
    assert second is not None
    assert second.rollout.state == RolloutState.ROLLED_BACK
    assert second.canary_weight == 0
    assert "rolled back after 2 failed check(s)" in second.rollout.message
    actions = [e.action for e in service.history("bad")]
    assert actions == ["deploy_rollback", "deploy_check_failed", "deploy_apply"]


def test_slow_or_shifted_canaries_fail_their_checks(ws: Workspace) -> None:
    service = service_of(ws)
    _progressing(service, "slow", canary=canary())
    write_rows(ws, "slow", T0, stable=30, canary=30, canary_latency=50.0)
    slow = service.tick("slow", now=T0 + timedelta(seconds=1))
    assert slow is not None
    assert "p99_ms_ratio" in slow.rollout.message
    _progressing(service, "shifted", canary=canary())
    write_rows(ws, "shifted", T0, stable=30, canary=30, canary_output=7)
    shifted = service.tick("shifted", now=T0 + timedelta(seconds=1))
    assert shifted is not None
    assert "score_psi" in shifted.rollout.message


def test_one_process_drives_a_check(built: dict[str, Any]) -> None:
    """Two services (two processes' workspaces) tick at once: exactly one drives it."""
    import threading

    with (
        Workspace.from_settings(built["settings"]) as one,
        Workspace.from_settings(built["settings"]) as two,
    ):
        _progressing(service_of(one), "shared", canary=canary())
        write_rows(one, "shared", T0, stable=30, canary=30)
        results: list[Any] = []
        barrier = threading.Barrier(2)

        def tick(ws: Workspace) -> None:
            barrier.wait()
            results.append(service_of(ws).tick("shared", now=T0 + timedelta(seconds=1)))

        threads = [threading.Thread(target=tick, args=(w,)) for w in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        driven = [r for r in results if r is not None]
        assert len(driven) == 1
        assert driven[0].rollout.step == 1
        assert [e.action for e in service_of(one).history("shared")] == [
            "deploy_step", "deploy_apply",
        ]  # fmt: skip


# -- the Python API and the CLI ----------------------------------------------------------


def test_python_api_and_cli(built: dict[str, Any], tmp_path: Path) -> None:
    import driftline as dl

    dl.configure(home=built["home"], capture_environment=False)
    try:
        made = dl.serving.deploy(spec("api", canary=canary()))
        assert dl.serving.get_deployment("api") == made
        assert dl.serving.status("api")["weights"] == {"stable": 90, "canary": 10}
    finally:
        reset_default_workspace()
    file = tmp_path / "deploy.yaml"
    file.write_text(
        "name: cli\nmodel: churn\nstable: champion\n"
        "canary: {version: 2, steps: [5, 25, 50, 100], interval: 60s}\n"
        "routing_key: customer_id\n"
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "driftline.cli", "--home", str(built["home"]), "deploy", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    done = cli("apply", str(file))
    assert done.returncode == 0, done.stderr
    assert "Created deployment cli (churn): progressing, stable 95% / canary 5%" in done.stdout
    assert "driftline serve --deployment cli" in done.stdout
    shown = cli("status", "cli")
    assert "progressing, stable 95% / canary 5%" in shown.stdout
    assert "Live figures" in shown.stdout
    assert "paused" in cli("pause", "cli").stdout
    history = json.loads(cli("history", "cli", "--json").stdout)
    assert [e["action"] for e in history] == ["deploy_pause", "deploy_apply"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: cli\nmodel: churn\nstable: champion\nshadow: {version: 2, smaple: 1}\n")
    refused = cli("apply", str(bad))
    assert refused.returncode == 1
    assert "bad.yaml line 4: unknown key 'shadow.smaple'" in refused.stderr + refused.stdout
    missing = cli("status", "nope")
    assert missing.returncode == 1
    assert "No deployment 'nope'" in missing.stderr + missing.stdout


def test_reading_a_window_opens_only_files_written_after_it(tmp_path: Path) -> None:
    """A file's name is the UUIDv7 of its writing: older files cannot hold newer rows."""
    from driftline.serving.predlog import read_predictions

    root = str(tmp_path / "predictions")
    now = datetime.now(UTC)
    log = PredictionLog(root, "d", flush_seconds=3600)
    log.append(("r1", "m", 1, "stable", now - timedelta(minutes=5), "predict", None, [1], 1,
                1.0, 200, None))  # fmt: skip
    log.close()
    folder = tmp_path / "predictions" / "deployment=d"
    (written,) = list(folder.glob("date=*/*.parquet"))
    assert len(read_predictions(root, "d", since=now - timedelta(minutes=10))) == 1
    # The same file renamed as if written two hours ago: a window since ten minutes
    # ago skips it without opening it.
    old = f"{int((now - timedelta(hours=2)).timestamp() * 1000):012x}" + written.name[12:]
    written.rename(written.with_name(old))
    assert len(read_predictions(root, "d", since=now - timedelta(minutes=10))) == 0
    assert len(read_predictions(root, "d")) == 1


# -- notifications -----------------------------------------------------------------------


def test_alert_channels_are_parsed_strictly_and_stored_with_the_deployment(
    ws: Workspace, tmp_path: Path
) -> None:
    from driftline.serving.spec import spec_from_dict, spec_to_dict

    file = tmp_path / "deploy.yaml"
    file.write_text("name: loud\nmodel: churn\nstable: champion\nalerts:\n  - log\n"
                    "  - email:ops@example.com\n")  # fmt: skip
    with pytest.raises(InvalidArgumentError, match=r"deploy.yaml line 6: alerts\[1\]: .*'log'"):
        service_of(ws).apply(file)
    with pytest.raises(InvalidArgumentError, match="alerts must be a list"):
        service_of(ws).apply(spec("loud", alerts="log"))
    hook = "webhook:http://127.0.0.1:9/hook"
    made = service_of(ws).apply(spec("loud", alerts=["log", hook, "log"]))
    assert made.spec.alerts == ("log", hook)
    assert service_of(ws).get_deployment("loud").spec.alerts == ("log", hook)
    assert spec_from_dict(spec_to_dict(made.spec)) == made.spec


def test_a_rollback_and_a_promotion_are_sent_to_the_alert_channels(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    service = service_of(ws)
    with webhook_receiver() as hook:
        alerts = [f"webhook:{hook.url}", "log"]
        _progressing(service, "told", canary=canary(), alerts=alerts)
        write_rows(ws, "told", T0, stable=30, canary=30, canary_status=500)
        service.tick("told", now=T0 + timedelta(seconds=1))
        assert hook.bodies == []  # one failed check is not news yet
        write_rows(ws, "told", T0 + timedelta(seconds=1), stable=30, canary=30, canary_status=500)
        rolled = service.tick("told", now=T0 + timedelta(seconds=2))
        assert rolled is not None
        assert rolled.rollout.state == RolloutState.ROLLED_BACK
        (body,) = hook.bodies
        assert hook.keys == [f"told:{rolled.generation}"]
        assert body["event"] == "deployment.rolled_back"
        assert (body["deployment"], body["model"]) == ("told", "churn")
        assert (body["from_version"], body["to_version"]) == (2, 1)  # churn@champion is v1
        assert body["failed_checks"] == ["error_rate", "p99_ms_ratio"]  # no canary answered
        assert body["reason"] == rolled.rollout.message
        assert body["check"]["verdict"] == "fail"
        assert "driftline deployment told (churn) rolled back from v2 to v1" in (
            capsys.readouterr().err
        )

        _progressing(service, "cheered", stable="1", canary=canary(steps=[50]), alerts=alerts)
        write_rows(ws, "cheered", T0, stable=30, canary=30)
        promoted = service.tick("cheered", now=T0 + timedelta(seconds=1))
        assert promoted is not None
        assert promoted.rollout.state == RolloutState.PROMOTED
        cheer = hook.bodies[-1]
        assert cheer["event"] == "deployment.promoted"
        assert (cheer["from_version"], cheer["to_version"], cheer["failed_checks"]) == (1, 2, [])
    assert "deploy_notify_failed" not in [e.action for e in service.history("told")]


def test_a_webhook_that_is_down_is_recorded_in_the_history(ws: Workspace) -> None:
    from driftline.core.notify import DeliveryPolicy

    service = service_of(ws)
    service.delivery = DeliveryPolicy(attempts=2, backoff=0.01, timeout=5.0)
    with webhook_receiver(fail=10_000) as down, webhook_receiver() as up:
        alerts = [f"webhook:{down.url}", f"webhook:{up.url}"]
        service.apply(spec("unloadable", canary=canary(3), alerts=alerts))
        rolled = service.report_failure("unloadable", "canary", "churn/3", "RuntimeError: no")
        assert down.attempts == 2
    assert rolled is not None
    assert rolled.rollout.state == RolloutState.ROLLED_BACK  # the outcome stays
    (body,) = up.bodies
    assert (body["event"], body["failed_checks"]) == ("deployment.rolled_back", ["load"])
    assert (body["from_version"], body["to_version"]) == (3, 1)
    history = service.history("unloadable")
    assert [e.action for e in history] == [
        "deploy_notify_failed",
        "deploy_rollback",
        "deploy_apply",
    ]
    (missed,) = history[0].after["failed"]
    assert missed["channel"] == f"webhook:{down.url}"
    assert (missed["delivered"], missed["attempts"]) == (False, 2)
    assert "503" in missed["error"]
    assert history[0].after["id"] == f"unloadable:{rolled.generation}"
    assert (
        history[0]
        .after["message"]
        .startswith(f"deployment.rolled_back not delivered to webhook:{down.url}: HTTP 503")
    )
    assert service.get_deployment("unloadable").generation == rolled.generation
    assert ws.registry.verify_audit().ok


def test_a_reapply_checks_only_the_webhooks_the_stored_spec_did_not_have(
    ws: Workspace, flaky_names: FlakyNames
) -> None:
    service = service_of(ws)
    service.delivery = flaky_names.delivery
    known = "webhook:https://hooks.example.test/x"
    made = service.apply(spec("rechecked", alerts=[known]))
    flaky_names.resolvable.clear()  # the known host briefly fails to resolve
    changed = service.apply(spec("rechecked", alerts=[known], shadow={"version": 2}),
                            expected=made.generation)  # fmt: skip
    assert changed.generation > made.generation
    added = "webhook:https://new.example.test/x"
    with pytest.raises(InvalidArgumentError, match=r"alerts\[1\]: .*new\.example\.test"):
        service.apply(spec("rechecked", alerts=[known, added]))
    with pytest.raises(InvalidArgumentError, match=r"alerts\[0\]: .*hooks\.example\.test"):
        service.apply(spec("elsewhere", alerts=[known]))  # new to that deployment
