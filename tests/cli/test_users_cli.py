"""`driftline users ...` and `driftline tokens ...`, on the database and through a server."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from driftline.auth.hashing import looks_like_token, parse_token
from driftline.settings import Settings
from driftline.workspace import Workspace

if TYPE_CHECKING:
    from conftest import Cli  # the runner fixture's type (tests/cli/conftest.py)


def _one_line_error(err: str, kind: str, words: str) -> None:
    assert err.count("\n") == 1, err
    assert err.startswith(f"{kind}: "), err
    assert words in err, err


def test_users_grants_and_tokens_on_the_database(
    workdir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bootstrap of a server: no token, straight to the database; nothing secret shown.
    code, out, err = cli("users", "create", "alice", "--role", "admin")
    assert code == 0, err
    assert out == ""
    assert "Created user alice (admin)" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("bob's password\n"))
    assert cli("users", "create", "bob", "--role", "viewer", "--password-stdin")[0] == 0

    code, out, _ = cli("users", "grant", "bob", "--experiment", "churn", "--permission", "edit")
    assert code == 0
    assert "Granted bob edit on experiment churn" in out
    listed = {row["user"]["name"]: row for row in cli.json("users", "list")}
    assert listed["alice"]["user"]["role"] == "admin"
    assert listed["alice"]["user"]["has_password"] is False
    assert listed["bob"]["user"]["has_password"] is True
    assert [(g["kind"], g["resource"], g["permission"]) for g in listed["bob"]["grants"]] == [
        ("experiment", "churn", "edit")
    ]
    code, out, _ = cli("users", "list")
    assert code == 0
    assert "experiment churn: edit" in out
    assert "password" not in json.dumps(listed).replace("has_password", "")

    # A token is printed once, alone on stdout (so $(...) captures it), never listed.
    code, out, err = cli("tokens", "create", "--user", "alice", "--name", "laptop")
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n"
    assert looks_like_token(token)
    assert "not shown again" in err
    listed_tokens = cli.json("tokens", "list")
    assert [(t["user"], t["name"], t["revoked_at"]) for t in listed_tokens] == [
        ("alice", "laptop", None)
    ]
    assert parse_token(token)[1] not in json.dumps(listed_tokens)
    token_id = parse_token(token)[0]
    assert cli.json("tokens", "revoke", token_id)["revoked_at"] is not None
    assert cli.json("tokens", "list", "--user", "alice")[0]["revoked_at"] is not None

    # Role changes, disabling, revoking grants.
    assert cli.json("users", "set-role", "bob", "--role", "editor")["role"] == "editor"
    assert cli.json("users", "disable", "bob")["disabled"] is True
    assert cli("users", "revoke", "bob", "--experiment", "churn")[0] == 0
    assert cli.json("users", "grants", "bob") == []

    # The same state through the Python API.
    with Workspace.from_settings(Settings.load()) as ws:
        users = {u.name: u for u in ws.auth.list_users()}
        assert users["bob"].disabled
        assert users["bob"].role.value == "editor"
        assert [t.token_id for t in ws.auth.list_tokens("alice")] == [token_id]

    # Every change is in the audit log, and the chain verifies.
    actions = [e["action"] for e in cli.json("audit", "log", "--limit", "100")]
    assert actions[::-1] == [
        "create_user",
        "create_user",
        "grant",
        "create_token",
        "revoke_token",
        "change_role",
        "disable_user",
        "revoke",
    ]
    code, out, _ = cli("audit", "verify")
    assert code == 0
    assert "intact" in out


@pytest.mark.parametrize(
    ("args", "kind", "words"),
    [
        (("users", "create", "alice", "--role", "admin"), "AlreadyExistsError", "exists already"),
        (("users", "create", "carol", "--role", "owner"), "InvalidArgumentError", "Unknown role"),
        (("users", "create", "a:b", "--role", "viewer"), "InvalidArgumentError", "user name"),
        (
            ("users", "grant", "alice", "-e", "x", "-m", "y", "-p", "edit"),
            "InvalidArgumentError",
            "exactly one",
        ),
        (("users", "grant", "alice", "-p", "edit"), "InvalidArgumentError", "exactly one"),
        (("users", "grant", "nobody", "-e", "x", "-p", "edit"), "NotFoundError", "nobody"),
        (("users", "grant", "alice", "-e", "x", "-p", "own"), "InvalidArgumentError", "own"),
        (("users", "revoke", "alice", "-e", "x"), "NotFoundError", "no grant"),
        (("users", "disable", "nobody"), "NotFoundError", "No user 'nobody'"),
        (("users", "passwd", "alice"), "InvalidArgumentError", "--password-stdin"),
        (("tokens", "create"), "InvalidArgumentError", "--user NAME"),
        (("tokens", "create", "--user", "nobody"), "NotFoundError", "nobody"),
        (
            ("tokens", "create", "--user", "alice", "--expires-days", "0"),
            "InvalidArgumentError",
            "--expires-days",
        ),
        (("tokens", "revoke", "abc"), "NotFoundError", "No token 'abc'"),
        (("users", "whoami"), "InvalidArgumentError", "DRIFTLINE_URI"),
    ],
)
def test_mistakes_are_one_line_errors(
    workdir: Path, cli: Cli, args: tuple[str, ...], kind: str, words: str
) -> None:
    assert cli("users", "create", "alice", "--role", "admin")[0] == 0
    code, _out, err = cli(*args)
    assert code == 1
    _one_line_error(err, kind, words)


def test_an_empty_password_on_stdin_is_refused(
    workdir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    code, _, err = cli("users", "create", "erin", "--role", "viewer", "--password-stdin")
    assert code == 1
    _one_line_error(err, "InvalidArgumentError", "empty password")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = cli("users", "create", "erin", "--role", "viewer", "--password-stdin")
    _one_line_error(err, "InvalidArgumentError", "at least 8")
    assert cli.json("users", "list") == []


@pytest.mark.server
def test_remote_administration_with_tokens(
    workdir: Path,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    server_factory: Callable[..., Any],
) -> None:
    server = server_factory(args=("--auth",))
    # Bootstrap on the server's database, then everything else through the server.
    code, out, err = cli(
        "--uri", server.uri, "users", "create", "root", "--role", "admin", "--with-token"
    )
    assert code == 0, err
    admin_token = out.strip()
    monkeypatch.setenv("DRIFTLINE_URI", server.url)

    code, _, err = cli("users", "list")
    assert code == 1
    _one_line_error(err, "UnauthenticatedError", "DRIFTLINE_TOKEN")

    monkeypatch.setenv("DRIFTLINE_TOKEN", admin_token)
    assert cli.json("users", "whoami")["name"] == "root"
    assert cli("users", "create", "carol", "--role", "viewer")[0] == 0
    assert cli("users", "grant", "carol", "--model", "scorer", "--permission", "manage")[0] == 0
    code, carol_token, err = cli("tokens", "create", "--user", "carol", "--expires-days", "1")
    assert code == 0, err
    carol_token = carol_token.strip()
    assert [u["user"]["name"] for u in cli.json("users", "list")] == ["carol", "root"]

    monkeypatch.setenv("DRIFTLINE_TOKEN", carol_token)
    me = cli.json("users", "whoami")
    assert (me["name"], me["role"]) == ("carol", "viewer")
    assert [(g["kind"], g["resource"]) for g in me["grants"]] == [("model", "scorer")]
    code, _, err = cli("users", "list")
    assert code == 1
    _one_line_error(err, "PermissionDeniedError", "not an admin")
    code, _, err = cli("users", "create", "mallory", "--role", "admin")
    assert code == 1
    _one_line_error(err, "PermissionDeniedError", "not an admin")
    # Its own tokens: yes, but none that outlives the token it is made with.
    code, _, err = cli("tokens", "create", "--name", "forever")
    assert code == 1
    _one_line_error(err, "InvalidArgumentError", "cannot outlive")
    code, own, err = cli("tokens", "create", "--name", "laptop", "--expires-days", "0.5")
    assert code == 0, err
    own_id = parse_token(own.strip())[0]
    assert {t["name"] for t in cli.json("tokens", "list")} == {"token", "laptop"}
    assert cli.json("tokens", "revoke", own_id)["revoked_at"] is not None

    monkeypatch.setenv("DRIFTLINE_TOKEN", admin_token)
    assert cli.json("users", "disable", "carol")["disabled"] is True
    monkeypatch.setenv("DRIFTLINE_TOKEN", carol_token)
    code, _, err = cli("users", "whoami")
    assert code == 1
    _one_line_error(err, "UnauthenticatedError", "disabled")
