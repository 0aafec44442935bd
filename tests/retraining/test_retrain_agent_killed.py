"""The real ``driftline agent`` killed with SIGKILL in each state a cycle can be in, then
started again: the cycle resumes or ends failed, cleanly. Never a second pipeline run,
never two promotions, never an alias half-moved, never a cycle left open.

Each case asks for a cycle of ``churn`` (a weak champion, so a trained challenger
wins), starts an agent (its own process group, SIGKILLed as a whole), waits until the
cycle is in the state (held there by a gate file, or waiting for people or traffic),
kills it, starts a second agent, lets the gate go, and waits for the cycle's end. The
agents' leases (theirs and the cycle's) last ``TTL`` seconds, so the second agent
takes over, and settles what the first left, that soon.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import reset_default_workspace
from tests.retraining.agentkill_support import PIPELINES
from tests.retraining.retrain_support import build

from driftline.retraining import RetrainingService
from driftline.retraining.cycles import Cycle, CycleState
from driftline.retraining.driver import TAG_CYCLE
from driftline.retraining.loop import Retrainer
from driftline.workspace import Workspace

pytestmark = pytest.mark.slow

#: Seconds an agent's lease, and a cycle's, lasts without renewal.
TTL = 1.5

POLICY = """\
model: churn
deployment: {deployment}
pipeline:
  name: kill_retrain
  module: kill_pipes
  params: {{gate: "{{trigger.gate}}", hold: "{{trigger.hold}}"}}
evaluate: {{data: customers@latest, metric: roc_auc}}
challenger_must_beat: {{metric: roc_auc, by: 0.0, confidence: 0.9}}
rollout: {rollout}
cooldown: 0
max_cycles_per_day: 500
"""
CANARY = {"steps": [50, 100], "interval": "1s", "min_requests": 10, "max_failed_checks": 2}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("retrain-agent-killed")
    (root / "kill_pipes.py").write_text(PIPELINES)
    found = build(root / ".driftline")
    reset_default_workspace()
    return {**found, "root": root, "home": root / ".driftline"}


@pytest.fixture
def ws(built: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.chdir(built["root"])
    monkeypatch.syspath_prepend(str(built["root"]))
    with Workspace.from_settings(built["settings"]) as workspace:
        yield workspace
    reset_default_workspace()


def cycles(ws: Workspace) -> Retrainer:
    return ws.service("retraining", RetrainingService).cycles


class Agents:
    """The ``driftline agent`` processes a test starts (each in its own process group),
    their output in files; all are stopped at the end."""

    def __init__(self, built: dict[str, Any], folder: Path) -> None:
        self.built = built
        self.folder = folder
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
        out = (self.folder / f"agent-{len(self.started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "driftline.cli", "--home", str(self.built["home"]), "agent",
             "--interval", "0.2", "--lease-ttl", str(TTL)],
            cwd=self.built["root"], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        self.started.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the agent and whatever it started (its steps)."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        assert process.returncode == -signal.SIGKILL

    def log(self, index: int) -> str:
        """What agent ``index`` (in start order, -1 the last) has said so far."""
        index %= len(self.started)
        return (self.folder / f"agent-{index}.log").read_text(errors="replace")

    def said(self) -> str:
        return "\n".join(f"--- agent {i} ---\n{self.log(i)}" for i in range(len(self.started)))

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(30)


@pytest.fixture
def agents(built: dict[str, Any], tmp_path: Path) -> Iterator[Agents]:
    started = Agents(built, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def wait_for(what: str, check: Callable[[], Any], agents: Agents, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{agents.said()}")


# -- what each case sets up, and how it lets the cycle go on after the restart -----------


def setup_triggered(ws: Workspace, gate: Path) -> dict[str, Any]:
    """The agent is busy with a plain trigger's run: it has not looked at the cycle."""
    from driftline.pipelines import Automation

    automation = Automation.for_workspace(ws)
    name = "busy"
    automation.create_trigger(name, "kill_busy", module="kill_pipes",
                              params={"gate": "{trigger.gate}"})  # fmt: skip
    automation.fire_trigger(name, {"gate": str(gate)})
    return {"hold": "", "waits_at": "busy"}


def setup_canary(ws: Workspace, gate: Path) -> dict[str, Any]:
    """A deployment with canary steps (no canary running) for a canary rollout."""
    from driftline.serving import DeploymentService

    serving = ws.service("serving", DeploymentService)
    # Canary steps are kept by the spec, so it is applied with some canary once (a copy
    # of churn/1), then rolled back.
    copy = ws.registry.register_model(ws.registry.get_version("churn/1").source, "churn")
    serving.apply({"name": "churn-kill", "model": "churn", "stable": "champion",
                   "canary": {"version": str(copy.version), **CANARY}})  # fmt: skip
    serving.rollback("churn-kill", reason="test setup: the spec keeps its canary steps")
    return {"hold": "", "deployment": "churn-kill", "rollout": "canary"}


def approve(ws: Workspace, cycle: Cycle) -> None:
    assert cycle.version is not None
    ws.registry.approve("churn", cycle.version, "champion", actor="alice")


def roll_back_canary(ws: Workspace, cycle: Cycle) -> None:
    from driftline.serving import DeploymentService

    ws.service("serving", DeploymentService).rollback("churn-kill", reason="the canary degraded")


CASES: dict[str, dict[str, Any]] = {
    # state when killed: how to get there, what lets it go on, where the cycle ends
    "triggered": {"setup": setup_triggered, "ends": CycleState.PROMOTED},
    "training": {"hold": "training", "waits_at": "training", "ends": CycleState.FAILED},
    "evaluating": {"hold": "evaluating", "waits_at": "scoring", "ends": CycleState.PROMOTED},
    "awaiting_approval": {"extra": "approvals: 1\n", "then": approve, "ends": CycleState.PROMOTED},
    "rolling_out": {"setup": setup_canary, "then": roll_back_canary,
                    "ends": CycleState.ROLLED_BACK},
}  # fmt: skip


def alias_moves(ws: Workspace) -> list[Any]:
    return ws.registry.alias_history("churn", "champion")


@pytest.mark.parametrize("state", list(CASES))
def test_an_agent_killed_in_each_state_leaves_a_cycle_that_ends_cleanly(
    ws: Workspace, agents: Agents, tmp_path: Path, state: str
) -> None:
    from driftline.pipelines import Automation

    case = CASES[state]
    gate = tmp_path / "gate"
    gate.mkdir()
    loop = cycles(ws)
    ws.registry.set_alias("churn", "champion", 1)  # weak: a trained challenger beats it
    setup = {"hold": "", "deployment": "churn", "rollout": "direct"}
    if "setup" in case:
        setup.update(case["setup"](ws, gate))
    setup.update({k: case[k] for k in ("hold", "waits_at") if k in case})
    loop.apply(POLICY.format(**setup) + case.get("extra", ""))
    moves = len(alias_moves(ws))
    versions = len(ws.registry.list_versions("churn"))
    asked = loop.request("churn", payload={"gate": str(gate), "hold": setup["hold"]}).cycle
    assert asked is not None

    def now_in() -> Cycle:
        return loop.store.get_cycle(asked.id)

    first = agents.start()
    if "waits_at" in setup:
        wait_for(f"the agent to wait at {setup['waits_at']}",
                 lambda: (gate / setup["waits_at"]).exists(), agents)  # fmt: skip
    else:
        wait_for(state, lambda: now_in().state.value == state, agents)
    assert first.poll() is None, agents.said()
    killed_in = now_in()
    assert killed_in.state.value == state, killed_in.reason
    if state == "training":
        # The cycle's lease lasts the agent's --lease-ttl, not the engine's default.
        lease = Automation.for_workspace(ws).store.get_lease(f"retraining.cycle.{asked.id}")
        assert lease is not None
        assert lease.expires_at <= datetime.now(UTC) + timedelta(seconds=TTL)
    if state == "rolling_out":
        from driftline.serving import DeploymentService

        rollout = ws.service("serving", DeploymentService).get_deployment("churn-kill").rollout
        assert rollout.canary_version == killed_in.version
        assert rollout.state.value == "progressing"
    agents.kill(first)

    agents.start()
    (gate / "go").write_text("")
    if "then" in case:
        # What the cycle waits for comes once the new agent leads (and has seen the cycle).
        wait_for("the new agent to lead", lambda: "leads" in agents.log(-1), agents)
        case["then"](ws, killed_in)
    ended = wait_for("the cycle to end", lambda: (c := now_in()).ended and c, agents)

    assert ended.state is case["ends"], f"{ended.reason}\n{agents.said()}"
    assert loop.store.cycles("churn", open_only=True) == []
    # One pipeline run for the cycle, whoever drove it.
    runs = ws.tracking.search_runs(filter=f"tags.`{TAG_CYCLE}` = '{asked.id}'").items
    pipeline_runs = [r for r in runs if "driftline.pipeline.run" not in r.tags]
    assert len(pipeline_runs) == 1, [r.id for r in pipeline_runs]
    assert ended.run_id == pipeline_runs[0].id
    # At most one promotion, and the alias on a whole version.
    history = alias_moves(ws)
    promoted = ended.state is CycleState.PROMOTED
    assert len(history) - moves == (1 if promoted else 0)
    champion = ws.registry.get_model("churn").aliases["champion"]
    assert champion == (ended.version if promoted else 1)
    assert history[0].version == champion
    assert ws.registry.get_version("churn@champion").version == champion
    if ended.state is CycleState.FAILED:  # killed while training: nothing registered
        assert "the driver training it stopped before the pipeline finished" in (ended.reason or "")
        assert pipeline_runs[0].status.value == "FAILED"
        assert len(ws.registry.list_versions("churn")) == versions
