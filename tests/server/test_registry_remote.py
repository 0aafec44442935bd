"""The model registry and the audit log through a driftline server.

Every test talks to a real ``driftline server`` process over loopback; what the server
stored is checked in its own database. Raw requests (not the SDK) show that the server
enforces the registry's rules itself: approval policies, compare-and-set alias moves,
uploaded packages, and who the actor is.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import driftline as dl
from driftline.api.client import ApiClient
from driftline.core.clock import utcnow
from driftline.core.ids import new_id
from driftline.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from driftline.models import ModelCache
from driftline.registry import Evaluation
from driftline.registry.promotion import promote
from driftline.workspace import Workspace

pytestmark = pytest.mark.server

_JSON = {"Content-Type": "application/json"}


@pytest.fixture
def remote(server: Any, open_workspace: Callable[..., Workspace]) -> Workspace:
    """A workspace whose stores are the server's (the client calls itself mallory)."""
    ws = open_workspace(server.url, user="mallory")
    assert ws.is_remote
    return ws


def api(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A raw request, as a client that is not the SDK would send it."""
    return httpx.request(method, f"{url}/api/v1/{path}", timeout=30, **kwargs)


def assert_error(response: httpx.Response, status: int, code: str, text: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (status, code)
    assert text in error["message"]


def register(ws: Workspace, tmp_path: Path, payload: bytes, name: str = "churn") -> Any:
    """Log a (fake) model package to a run and register it."""
    folder = tmp_path / f"pkg-{payload.hex()}"
    folder.mkdir()
    (folder / "driftline-model.json").write_text(json.dumps({"flavor": "sklearn"}))
    (folder / "model.bin").write_bytes(payload)
    run = ws.tracking.create_run("train")
    ws.tracking.log_artifacts(run.id, folder, "model")
    return ws.registry.register_model(f"runs:/{run.id}/model", name)


# -- the SDK ------------------------------------------------------------------------------


def test_register_alias_rollback_and_load_through_the_module_api(
    server: Any,
    configure_default: Callable[..., Workspace],
    on_server: Callable[[], Workspace],
) -> None:
    configure_default(uri=server.url, async_logging=False)
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    versions = []
    for flip in (False, True):
        y = np.array([1, 1, 0, 0] if flip else [0, 0, 1, 1])
        with dl.start_run() as run:
            dl.models.log_model(LogisticRegression().fit(x, y), "model")
        versions.append(dl.register_model(f"runs:/{run.id}/model", "churn"))
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].created_by == getpass.getuser()

    dl.registry.set_alias("churn", "champion", 1, expected=None)
    with pytest.raises(ConflictError, match="moved meanwhile"):
        dl.registry.set_alias("churn", "champion", 2, expected=None)  # stale: it holds 1
    dl.registry.set_alias("churn", "champion", 2, expected=1)
    assert dl.models.load("models:/churn@champion").predict(x).tolist() == [1, 1, 0, 0]
    move = dl.registry.rollback("churn", "champion")
    assert (move.version, move.previous_version, move.reason) == (1, 2, "rollback")
    assert dl.models.load("models:/churn@champion").predict(x).tolist() == [0, 0, 1, 1]
    assert dl.registry.get_model("churn").aliases == {"champion": 1}
    assert dl.registry.get_model("churn").latest_version == 2
    assert dl.registry.get_version("churn@champion").aliases == ("champion",)
    local = on_server()
    assert local.registry.get_version("churn@champion").version == 1
    moves = local.registry.alias_history("churn", "champion")
    assert [(m.version, m.reason, m.actor) for m in moves] == [
        (1, "rollback", getpass.getuser()),
        (2, "set", getpass.getuser()),
        (1, "set", getpass.getuser()),
    ]
    assert local.registry.verify_audit().ok


def test_typed_errors_round_trip(remote: Workspace, tmp_path: Path) -> None:
    register(remote, tmp_path, b"1")
    register(remote, tmp_path, b"2")
    remote.registry.set_alias("churn", "champion", 1)
    with pytest.raises(NotFoundError, match="did you mean 'churn'"):
        remote.registry.get_version("chrun/1")
    with pytest.raises(NotFoundError, match="no version 9; latest is 2"):
        remote.registry.get_version("churn/9")
    with pytest.raises(NotFoundError, match=r"no alias 'staging' \(aliases: champion->1\)"):
        remote.registry.get_version("churn@staging")
    with pytest.raises(NotFoundError, match="no version 7; latest is 2"):
        remote.registry.set_alias("churn", "champion", 7)
    with pytest.raises(ConflictError, match="moved meanwhile"):
        remote.registry.set_alias("churn", "champion", 2, expected=2)
    with pytest.raises(InvalidArgumentError, match="Invalid model name"):
        remote.registry.get_version("bad name/1")
    with pytest.raises(InvalidArgumentError, match="'latest' is reserved"):
        remote.registry.set_alias("churn", "latest", 1)
    # The same classes come back from the server itself, not only from client-side checks.
    client = ApiClient(remote.settings.uri)
    try:
        with pytest.raises(NotFoundError, match="did you mean 'churn'"):
            client.get_json("registry/models/chrun")
        with pytest.raises(InvalidArgumentError, match="'latest' is reserved"):
            client.post_json(
                "registry/models/churn/aliases/latest", {"version": 1, "expected": "*"}
            )
        with pytest.raises(ConflictError, match="points at version 1, not version 2"):
            client.post_json(
                "registry/models/churn/aliases/champion", {"version": 2, "expected": 2}
            )
        with pytest.raises(InvalidArgumentError, match="Invalid model name"):
            client.put_json("registry/models/bad%20name", {})
    finally:
        client.close()
    assert remote.registry.get_version("churn@champion").version == 1


def test_approval_policies_are_enforced_by_the_server(remote: Workspace, tmp_path: Path) -> None:
    register(remote, tmp_path, b"1")
    remote.registry.set_policy("production", 1)
    with pytest.raises(PermissionDeniedError, match="requires 1 approval"):
        remote.registry.set_alias("churn", "production", 1)
    url = remote.settings.uri
    # A client that skips the SDK's checks meets the same rules on the server.
    path = "registry/models/churn/aliases/production"
    move = {"version": 1, "expected": None}
    assert_error(api(url, "POST", path, json=move), 403, "PERMISSION_DENIED", "requires 1")
    assert_error(
        api(url, "POST", path, json={**move, "reason": "promote"}),
        403,
        "PERMISSION_DENIED",
        "needs 1 approval(s), it has 0",
    )
    approval = remote.registry.approve("churn", 1, "production", comment="ok")
    assert (approval.comment, approval.actor) == ("ok", getpass.getuser())
    with pytest.raises(AlreadyExistsError, match="already approved"):
        remote.registry.approve("churn", 1, "production")
    (recorded,) = remote.registry.store.list_approvals("churn", 1, "production")
    assert recorded.actor == getpass.getuser()  # the server's caller, not "mallory"
    done = promote(
        remote.registry, "churn", 1, "production", gates=None, cache=ModelCache(tmp_path / "c")
    )
    assert done.promoted
    assert remote.registry.get_model("churn").aliases == {"production": 1}
    actions = [e.action for e in remote.registry.audit_log(model="churn")]
    assert actions[:2] == ["alias_promote", "approve"]
    # "rollback" is no back door: only the latest move can be undone that way.
    register(remote, tmp_path, b"2")
    assert_error(
        api(url, "POST", path, json={"version": 2, "expected": 1, "reason": "rollback"}),
        403,
        "PERMISSION_DENIED",
        "can only move it back",
    )
    assert remote.registry.get_model("churn").aliases == {"production": 1}


def test_the_server_refuses_what_the_sdk_would_refuse(remote: Workspace, tmp_path: Path) -> None:
    version = register(remote, tmp_path, b"1")
    url = remote.settings.uri
    body = {"source": "s", "package_digest": "blake3:" + "0" * 64, "flavor": "sklearn"}
    assert_error(
        api(url, "POST", "registry/models/churn/versions", json=body), 404, "NOT_FOUND", "upload"
    )
    uploaded = {**body, "package_digest": version.package_digest}
    assert_error(
        api(url, "POST", "registry/models/chrun/versions", json=uploaded),
        404,
        "NOT_FOUND",
        "did you mean 'churn'",
    )
    assert_error(
        api(url, "POST", "registry/models/churn/versions", json={**uploaded, "run_id": "0" * 32}),
        404,
        "NOT_FOUND",
        "No run",
    )
    assert_error(
        api(url, "POST", "registry/models/churn/versions", json={**uploaded, "created_by": "x"}),
        400,
        "INVALID_ARGUMENT",
        "created_by",
    )
    alias = "registry/models/churn/aliases/champion"
    for wrong, text in (
        ({"version": 1}, "expected"),
        ({"version": 1, "expected": "any"}, "expected"),
        ({"version": None, "expected": "*"}, "reason is 'delete'"),
        ({"version": 1, "expected": "*", "reason": "delete"}, "reason is 'delete'"),
        ({"version": 1, "expected": "*", "reason": "hijack"}, "reason"),
        ({"version": 1, "expected": "*", "actor": "mallory"}, "actor"),
        ({"version": 2**40, "expected": "*"}, "version"),
    ):
        assert_error(api(url, "POST", alias, json=wrong), 400, "INVALID_ARGUMENT", text)
    assert_error(api(url, "POST", alias, content=b"[1, 2", headers=_JSON), 400, "INVALID_ARGUMENT")
    assert_error(
        api(url, "PUT", "registry/policies/production", json={"required": -1}),
        400,
        "INVALID_ARGUMENT",
    )
    assert_error(
        api(url, "PATCH", "registry/models/churn", json={"tags": {"a\x00": "b"}}),
        400,
        "INVALID_ARGUMENT",
    )
    assert_error(api(url, "GET", "audit", params={"limit": 0}), 400, "INVALID_ARGUMENT")
    assert_error(api(url, "GET", "audit", params={"model": "bad name"}), 400, "INVALID_ARGUMENT")
    # Nothing of that was recorded.
    assert [v.version for v in remote.registry.list_versions("churn")] == [1]
    assert remote.registry.get_model("churn").aliases == {}


def test_evaluations_keep_non_finite_metrics_and_ids_are_unique(
    remote: Workspace, tmp_path: Path
) -> None:
    register(remote, tmp_path, b"1")
    evaluation = Evaluation(
        id=new_id(),
        name="churn",
        version=1,
        dataset="holdout@1",
        target="y",
        task="binary",
        rows=3,
        metrics={"roc_auc": math.nan, "accuracy": 1.0, "log_loss": math.inf},
        slices={"size": {"large": {"accuracy": 0.5}}},
        created_at=utcnow(),
    )
    remote.registry.store.add_evaluation(evaluation)
    (stored,) = remote.registry.store.list_evaluations("churn", 1)
    assert math.isnan(stored.metrics["roc_auc"])
    assert stored.metrics["log_loss"] == math.inf
    assert stored.slices == {"size": {"large": {"accuracy": 0.5}}}
    with pytest.raises(AlreadyExistsError, match="exists already"):
        remote.registry.store.add_evaluation(evaluation)
    with pytest.raises(NotFoundError, match="no version 5"):
        remote.registry.store.add_evaluation(Evaluation(**{**_fields(evaluation), "version": 5}))


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


# -- the audit log ------------------------------------------------------------------------


def test_audit_verify_over_http_finds_tampering(
    server: Any, remote: Workspace, tmp_path: Path
) -> None:
    register(remote, tmp_path, b"1")
    register(remote, tmp_path, b"x", name="churn-v2")
    remote.registry.set_alias("churn", "champion", 1)
    assert [e.entity for e in remote.registry.audit_log(model="churn")] == [
        "churn@champion",
        "churn/1",
        "churn",
    ]
    assert len(remote.registry.audit_log(limit=2)) == 2
    report = remote.registry.verify_audit()
    assert (report.ok, report.entries) == (True, 5)
    with sqlite3.connect(server.root / ".driftline" / "driftline.db") as conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    report = remote.registry.verify_audit()
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "edited" in (report.problem or "")


def test_the_cli_works_against_the_server(
    remote: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from driftline.cli import main

    def run(*args: str) -> tuple[int, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out + err

    register(remote, tmp_path, b"1")
    register(remote, tmp_path, b"2")
    monkeypatch.setenv("DRIFTLINE_URI", remote.settings.uri)
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "cli-home"))
    code, out = run("models", "alias", "churn", "champion", "2")
    assert code == 0, out
    code, out = run("models", "list", "--json")
    assert code == 0, out
    (model,) = json.loads(out)
    assert (model["name"], model["latest_version"], model["aliases"]) == (
        "churn",
        2,
        {"champion": 2},
    )
    code, out = run("models", "rollback", "churn", "--alias", "champion")
    assert code == 1, out  # it had no holder before version 2
    assert "nothing to roll back to" in out
    code, out = run("audit", "log", "--model", "churn", "--json")
    assert code == 0, out
    assert next(e["action"] for e in json.loads(out)) == "alias_set"
    code, out = run("audit", "verify")
    assert code == 0, out
    assert "Audit log intact" in out
    code, out = run("models", "versions", "chrun")
    assert code == 1
    assert "did you mean 'churn'" in out


# -- with --auth: the actor is the authenticated user ---------------------------------------


@pytest.fixture(scope="module")
def auth_server(server_factory: Callable[..., Any]) -> Iterator[tuple[Any, Any, str]]:
    """A server with --auth and an admin client; the admin is bootstrapped as an operator
    does it, with the CLI on the server's database."""
    from driftline.auth._http import HttpUserAdmin

    server = server_factory(args=("--auth",))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    done = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "--home", str(server.root / ".driftline"),
         "--uri", server.uri, "users", "create", "root", "--role", "admin", "--with-token"],
        capture_output=True, text=True, env=env, cwd=server.root, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    admin = HttpUserAdmin(ApiClient(server.url, token=token))
    yield server, admin, token
    admin.close()


def test_with_auth_each_person_acts_as_themselves(
    auth_server: tuple[Any, Any, str], open_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    """Two people approve under a two-approval policy; a viewer may read but not commit."""
    server, admin, admin_token = auth_server
    model = f"churn-{new_id()[-6:]}"
    people = {}
    for name in (f"alice-{model}", f"bob-{model}"):
        admin.create_user(name, role="editor")
        admin.grant(name, model=model, permission="manage")
        people[name] = open_workspace(
            server.url, token=admin.create_token(name).secret, user="mallory"
        )
    (alice_name, alice), (bob_name, bob) = people.items()
    register(alice, tmp_path, b"1", name=model)
    policy_alias = "production"
    admin_ws = open_workspace(server.url, token=admin_token)
    admin_ws.registry.set_policy(policy_alias, 2)
    assert alice.registry.approve(model, 1, policy_alias).actor == alice_name  # not mallory
    with pytest.raises(PermissionDeniedError, match=rf"it has 1 \({alice_name}\)"):
        alice.registry.check_approvals(model, 1, policy_alias)
    bob.registry.approve(model, 1, policy_alias)
    bob.registry.check_approvals(model, 1, policy_alias)  # two distinct people now
    done = promote(
        bob.registry, model, 1, policy_alias, gates=None, cache=ModelCache(tmp_path / "c")
    )
    assert done.promoted
    (move,) = admin_ws.registry.alias_history(model, policy_alias)
    assert move.actor == bob_name
    assert admin_ws.registry.get_version(f"{model}/1").created_by == alice_name
    actors = {(e.action, e.actor) for e in admin_ws.registry.audit_log(model=model)}
    assert {("approve", alice_name), ("approve", bob_name), ("alias_promote", bob_name)} <= actors

    admin.create_user(f"viewer-{model}", role="viewer")
    viewer = open_workspace(server.url, token=admin.create_token(f"viewer-{model}").secret)
    assert viewer.registry.get_version(f"{model}@{policy_alias}").version == 1
    with pytest.raises(PermissionDeniedError):
        viewer.registry.set_alias(model, "staging", 1)
    src = tmp_path / "data"
    src.mkdir()
    (src / "a.txt").write_text("a")
    with pytest.raises(PermissionDeniedError):
        viewer.data.commit(f"d-{model}", src)
    with pytest.raises(PermissionDeniedError):
        viewer.data.store.ensure_dataset(f"d-{model}")  # the data routes' own check
    version = alice.data.commit(f"d-{model}", src)
    assert version.author == alice_name
    assert viewer.data.get(f"d-{model}@latest") == version
    # Recording what a run read is part of the run: an experiment grant is enough.
    admin.grant(f"viewer-{model}", experiment=f"exp-{model}", permission="edit")
    viewer.tracking.create_experiment(f"exp-{model}")
    mine = viewer.tracking.create_run(f"exp-{model}")
    viewer.data.log_input(mine.id, version.ref)
    assert viewer.data.store.readers(f"d-{model}", 1) == [mine.id]
    theirs = alice.tracking.create_run(f"other-{model}")
    with pytest.raises(PermissionDeniedError):
        viewer.data.log_input(theirs.id, version.ref)
    assert viewer.registry.verify_audit().ok
