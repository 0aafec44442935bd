"""Retraining cycles driven end to end: a pipeline trains a challenger, the registry
compares it with the champion, and it is rejected, or promoted (directly, or through
the deployment's canary driven by serving's controller on deterministic traffic)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import reset_default_workspace
from tests.retraining.retrain_support import PIPELINES, build

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
    root = tmp_path_factory.mktemp("retrain-cycles")
    (root / "retrain_pipes.py").write_text(PIPELINES)
    found = build(root / ".driftline")
    reset_default_workspace()
    return {**found, "root": root}


@pytest.fixture
def ws(built: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.chdir(built["root"])
    monkeypatch.syspath_prepend(str(built["root"]))
    with Workspace.from_settings(built["settings"]) as workspace:
        yield workspace
    reset_default_workspace()


def champion(ws: Workspace) -> int:
    return (
        ws.service("retraining", RetrainingService).registry.get_version("churn@champion").version
    )


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


def cli(built: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    home = str(built["root"] / ".driftline")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "--home", home, *args],
        cwd=built["root"], env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_the_cli_shows_status_and_history_and_refuses_bad_files(
    ws: Workspace, built: dict[str, Any]
) -> None:
    loop = ws.service("retraining", RetrainingService).cycles
    newest = loop.history("churn")
    assert newest, "the tests above ran cycles"
    status = cli(built, "retrain", "status", "churn", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["id"] == newest[0].id
    history = cli(built, "retrain", "history", "churn", "--json")
    assert history.returncode == 0, history.stderr
    assert [c["id"] for c in json.loads(history.stdout)] == [c.id for c in newest]
    shown = cli(built, "retrain", "history", "churn")
    assert shown.returncode == 0, shown.stderr
    assert "promoted" in shown.stdout
    assert "rejected" in shown.stdout
    bad = built["root"] / "bad.yaml"
    bad.write_text(POLICY.replace("cooldown: 0", "cooldown: 0\ncooldwn: 5m"))
    refused = cli(built, "retrain", "apply", str(bad))
    assert refused.returncode != 0
    assert "bad.yaml line 11: unknown key 'cooldwn'" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
