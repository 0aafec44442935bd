"""Who may approve a retraining cycle, on an embedded workspace: nobody is restricted
while the workspace has no users; once it has users, ``approvals: N`` needs N of them
allowed to manage the model, and a cycle awaiting approval names who approved and who
else may, to a caller who may approve too (to others, how many)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import reset_default_workspace
from tests.retraining.retrain_support import PIPELINES, build, work_in

from driftline.auth import AuthService
from driftline.core.clock import now_ms
from driftline.errors import InvalidArgumentError
from driftline.registry import RegistryService
from driftline.retraining import RetrainingService
from driftline.retraining.cycles import Cycle, CycleState
from driftline.retraining.loop import Retrainer
from driftline.workspace import Workspace

POLICY = """\
model: churn
deployment: churn
pipeline: {name: retrain_churn, module: retrain_pipes}
evaluate: {fallback: customers@latest}
approvals: 2
rollout: direct
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    (tmp_path / "retrain_pipes.py").write_text(PIPELINES)
    work_in(tmp_path, monkeypatch)
    found = build(tmp_path / ".driftline", user="lee")
    reset_default_workspace()
    with Workspace.from_settings(found["settings"]) as workspace:
        yield workspace


def awaiting(loop: Retrainer) -> Cycle:
    """A cycle of churn waiting for approvals of churn/1 (as the driver leaves one)."""
    cycle = loop.request("churn").cycle
    assert cycle is not None
    for state, products in (
        (CycleState.TRAINING, {}),
        (CycleState.EVALUATING, {"version": 1}),
        (CycleState.AWAITING_APPROVAL, {"reason": "waiting for 2 approval(s)"}),
    ):
        cycle = loop.store.transition(cycle, state, actor="agent", now=now_ms(), **products)
    return cycle


def reason(loop: Retrainer) -> str:
    status = loop.status("churn")
    assert status is not None
    assert status.state is CycleState.AWAITING_APPROVAL
    return status.reason or ""


def test_a_workspace_without_users_does_not_restrict_approvers(ws: Workspace) -> None:
    loop = ws.service("retraining", RetrainingService).cycles
    assert loop.apply(POLICY).approvals == 2  # nobody to count: not refused
    awaiting(loop)
    assert reason(loop) == (
        "waiting for 2 approval(s); no approval yet (0 of 2); the workspace has no users, "
        "so anyone who opens it may approve, under the name DRIFTLINE_USER gives (now 'lee')"
    )


def test_approvals_need_that_many_users_who_may_manage_the_model(ws: Workspace) -> None:
    auth: Any = ws.service("auth", AuthService)
    loop = ws.service("retraining", RetrainingService).cycles
    auth.create_user("ada", role="admin")
    auth.create_user("ed", role="editor")  # edits, but managing a model needs a grant
    auth.create_user("vic", role="viewer")
    with pytest.raises(InvalidArgumentError) as refused:
        loop.apply(POLICY)
    assert str(refused.value) == (
        "retrain.yaml line 5: approvals: 2 distinct people must approve, but only 1 can "
        "(ada); approving needs manage on model 'churn': the admin role, or driftline users "
        "grant NAME --model churn --permission manage. Lower approvals or grant it"
    )
    auth.grant("vic", model="churn", permission="manage")
    loop.apply(POLICY)

    awaiting(loop)
    assert reason(loop).endswith("no approval yet (0 of 2); may approve: ada, vic")
    ws.service("registry", RegistryService).approve("churn", 1, "champion", actor="ada")
    assert reason(loop).endswith("approved by ada (1 of 2); may approve: vic")
    auth.update_user("vic", disabled=True)  # a disabled user cannot sign in to approve
    assert reason(loop).endswith("approved by ada (1 of 2); no one else may approve")
    # Users change while a cycle waits: re-applying is checked against who is left.
    with pytest.raises(InvalidArgumentError, match=r"but only 1 can \(ada\)"):
        loop.apply(POLICY)


def test_only_a_caller_who_may_approve_reads_who_else_may(ws: Workspace) -> None:
    auth: Any = ws.service("auth", AuthService)
    loop = ws.service("retraining", RetrainingService).cycles
    auth.create_user("ada", role="admin")
    auth.create_user("max", role="viewer")
    auth.create_user("vic", role="viewer")
    auth.grant("max", model="churn", permission="manage")
    loop.apply(POLICY)
    awaiting(loop)
    # What a server's caller reads: whether it may approve is the server's to say.
    reader = loop.acting_as("vic", approves=lambda model: False)
    manager = loop.acting_as("max", approves=lambda model: model == "churn")
    hidden = "(their names are shown to those who may approve)"
    assert reason(reader).endswith(f"no approval yet (0 of 2); 2 more people may approve {hidden}")
    assert "ada" not in reason(reader)
    assert "max" not in reason(reader)
    assert reason(manager).endswith("no approval yet (0 of 2); may approve: ada, max")
    # An approval given is an act, and keeps its author's name for every reader.
    ws.service("registry", RegistryService).approve("churn", 1, "champion", actor="max")
    assert reason(reader).endswith(f"approved by max (1 of 2); 1 more person may approve {hidden}")
    assert "ada" not in reason(reader)
    assert reason(manager).endswith("approved by max (1 of 2); may approve: ada")
    # Whoever opens the workspace itself (no server between) reads the names as before.
    assert reason(loop).endswith("approved by max (1 of 2); may approve: ada")
