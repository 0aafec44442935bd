"""A credential cannot grant anything that outlives it, against a real ``--auth`` server.

The probe: a token expiring in 60 s changed its user's password without the old one,
and the new password then minted a token without expiry. Now one's own password needs
the current one, a password change revokes the user's other tokens, and an expiring
token (an admin's included) cannot create users, passwords, roles, grants or tokens
that would outlast it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from tests.server.test_auth import AuthServer, _assert_401, auth_server

from driftline.api.client import ApiClient
from driftline.auth import auth_service
from driftline.auth._http import HttpUserAdmin
from driftline.auth.hashing import parse_token
from driftline.auth.throttle import PER_NAME
from driftline.core.audit import iter_audit
from driftline.core.clock import utcnow
from driftline.core.metadata import Database, ensure_schema
from driftline.errors import (
    InvalidArgumentError,
    PermissionDeniedError,
    TooManyAttemptsError,
    UnauthenticatedError,
)
from driftline.stages import migration_history

__all__ = ["auth_server"]  # the fixture, shared with test_auth (one server per module)


def _patch(server: AuthServer, name: str, body: dict[str, Any], **auth: Any) -> httpx.Response:
    return httpx.patch(f"{server.url}/api/v1/users/{name}", json=body, **auth)


def _bearer(token: str) -> dict[str, Any]:
    return {"headers": {"Authorization": f"Bearer {token}"}}


def _whoami(server: AuthServer, **auth: Any) -> httpx.Response:
    return httpx.get(server.url + "/api/v1/whoami", **auth)


def _user(server: AuthServer, role: str, password: str | None = None) -> str:
    name = f"{role}-{secrets.token_hex(4)}"
    server.admin.create_user(name, role=role, password=password)
    return name


# -- the probe ----------------------------------------------------------------------------


@pytest.mark.server
def test_a_short_lived_token_cannot_turn_into_a_password(auth_server: AuthServer) -> None:
    name = _user(auth_server, "editor", password="the old password")
    short = auth_server.admin.create_token(name, expires_at=utcnow() + timedelta(seconds=60))
    # The probe's steps: change the password with the token alone ...
    refused = _patch(
        auth_server, name, {"password": "attacker's password"}, **_bearer(short.secret)
    )
    assert refused.status_code == 400, refused.text
    assert "current" in refused.json()["error"]["message"]
    wrong = _patch(
        auth_server,
        name,
        {"password": "attacker's password", "current_password": "a guess"},
        **_bearer(short.secret),
    )
    assert wrong.status_code == 403, wrong.text
    assert "current password is wrong" in wrong.json()["error"]["message"]
    # ... then mint a token without expiry with the new password: it was never set.
    minted = httpx.post(
        auth_server.url + "/api/v1/tokens",
        json={"name": "forever"},
        auth=(name, "attacker's password"),
    )
    _assert_401(minted, "Wrong user name or password")
    assert _whoami(auth_server, auth=(name, "the old password")).status_code == 200

    # A user without a password: a short-lived token cannot give it its first one.
    tokens_only = _user(auth_server, "editor")
    its_short = auth_server.admin.create_token(
        tokens_only, expires_at=utcnow() + timedelta(seconds=60)
    )
    first = _patch(
        auth_server, tokens_only, {"password": "a first password"}, **_bearer(its_short.secret)
    )
    assert first.status_code == 403, first.text
    assert "lasts beyond your token" in first.json()["error"]["message"]


@pytest.mark.server
def test_wrong_current_passwords_count_against_the_limits(auth_server: AuthServer) -> None:
    name = _user(auth_server, "viewer", password="the right password")
    token = auth_server.admin.create_token(name).secret
    for _ in range(PER_NAME):
        wrong = _patch(
            auth_server,
            name,
            {"password": "new password!", "current_password": "a guess"},
            **_bearer(token),
        )
        assert wrong.status_code == 403, wrong.text
    me = HttpUserAdmin(ApiClient(auth_server.url, token=token))
    try:
        with pytest.raises(TooManyAttemptsError):
            me.set_password(name, "new password!", current_password="the right password")
    finally:
        me.close()
    # Locked for this name from this client, as a login would be; nothing was changed.
    assert _whoami(auth_server, auth=(name, "the right password")).status_code == 429


# -- changing a password ------------------------------------------------------------------


@pytest.mark.server
def test_changing_ones_password_revokes_the_other_tokens(auth_server: AuthServer) -> None:
    name = _user(auth_server, "editor", password="the old password")
    used, other, short = (
        auth_server.admin.create_token(name, name="laptop").secret,
        auth_server.admin.create_token(name, name="ci").secret,
        auth_server.admin.create_token(
            name, name="short", expires_at=utcnow() + timedelta(hours=1)
        ).secret,
    )
    for token in (used, other, short):  # each now sits in the server's credential cache
        assert _whoami(auth_server, **_bearer(token)).status_code == 200
    assert _whoami(auth_server, auth=(name, "the old password")).status_code == 200
    me = HttpUserAdmin(ApiClient(auth_server.url, token=used))
    try:
        change = me.set_password(name, "the new password", current_password="the old password")
    finally:
        me.close()
    assert change.user.name == name
    assert change.revoked_tokens == 2
    # At once, though each was cached a moment ago (single-worker server).
    _assert_401(_whoami(auth_server, **_bearer(other)), "revoked")
    _assert_401(_whoami(auth_server, **_bearer(short)), "revoked")
    _assert_401(_whoami(auth_server, auth=(name, "the old password")), "Wrong")
    assert _whoami(auth_server, **_bearer(used)).json()["name"] == name
    assert _whoami(auth_server, auth=(name, "the new password")).json()["name"] == name
    # The change and each revocation are in the audit log, as one actor's acts.
    database = Database(auth_server.uri)
    try:
        entries = database.read(lambda conn: iter_audit(conn, newest_first=False))
    finally:
        database.dispose()
    revoked = {parse_token(other)[0], parse_token(short)[0]}
    mine = [(e.actor, e.action) for e in entries if e.entity in {name, *revoked}]
    assert mine[-3:] == [
        (name, "set_password"),
        (name, "revoke_token"),
        (name, "revoke_token"),
    ]


@pytest.mark.server
def test_passwd_through_the_cli_asks_for_the_current_password(auth_server: AuthServer) -> None:
    name = _user(auth_server, "viewer", password="the old password")
    token = auth_server.admin.create_token(name).secret
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env |= {"DRIFTLINE_URI": auth_server.url, "DRIFTLINE_TOKEN": token}
    env["XDG_CONFIG_HOME"] = str(auth_server.root / "xdg")

    def passwd(*flags: str, stdin: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "driftline.cli", "users", "passwd", name, *flags],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=auth_server.root,
            timeout=120,
        )

    alone = passwd("--password-stdin", stdin="the new password\n")
    assert alone.returncode != 0
    assert "current" in alone.stderr
    both = passwd(
        "--current-password-stdin",
        "--password-stdin",
        stdin="the old password\nthe new password\n",
    )
    assert both.returncode == 0, both.stderr
    assert "revoked 0 of its tokens" in both.stdout
    assert _whoami(auth_server, auth=(name, "the new password")).json()["name"] == name


@pytest.mark.server
def test_an_admin_resets_another_users_password(auth_server: AuthServer) -> None:
    name = _user(auth_server, "editor", password="forgotten password")
    tokens = [auth_server.admin.create_token(name).secret for _ in range(2)]
    assert _whoami(auth_server, **_bearer(tokens[0])).status_code == 200
    change = auth_server.admin.set_password(name, "a reset password")  # no current one
    assert change.revoked_tokens == 2
    for token in tokens:
        _assert_401(_whoami(auth_server, **_bearer(token)), "revoked")
    assert _whoami(auth_server, auth=(name, "a reset password")).json()["name"] == name
    # A non-admin cannot reset someone else's, current password or not.
    other = _user(auth_server, "editor", password="other's password")
    other_token = auth_server.admin.create_token(other).secret
    refused = _patch(
        auth_server,
        name,
        {"password": "taken over!", "current_password": "a reset password"},
        **_bearer(other_token),
    )
    assert refused.status_code == 403
    # Nor may a password change ride along with a role change.
    mixed = _patch(
        auth_server,
        name,
        {"password": "x" * 12, "role": "viewer"},
        **_bearer(auth_server.admin_token),
    )
    assert mixed.status_code == 400
    assert "request of its own" in mixed.json()["error"]["message"]


# -- an expiring admin token ----------------------------------------------------------------


@pytest.fixture
def short_admin(auth_server: AuthServer) -> Iterator[tuple[HttpUserAdmin, Any]]:
    """An admin acting with a token that expires in an hour, and that token's expiry."""
    name = _user(auth_server, "admin")
    issued = auth_server.admin.create_token(name, expires_at=utcnow() + timedelta(hours=1))
    admin = HttpUserAdmin(ApiClient(auth_server.url, token=issued.secret))
    yield admin, issued.token.expires_at
    admin.close()


@pytest.mark.server
def test_an_expiring_admin_token_grants_nothing_that_outlives_it(
    auth_server: AuthServer, short_admin: tuple[HttpUserAdmin, Any]
) -> None:
    admin, expires_at = short_admin
    victim = _user(auth_server, "viewer", password="victim's password")
    lasting = "lasts beyond your token"
    with pytest.raises(PermissionDeniedError, match=lasting):
        admin.create_user(f"mole-{secrets.token_hex(3)}", role="admin", password="mole password")
    with pytest.raises(PermissionDeniedError, match=lasting):
        admin.set_password(victim, "taken over!")
    with pytest.raises(PermissionDeniedError, match=lasting):
        admin.update_user(victim, role="admin")
    with pytest.raises(PermissionDeniedError, match=lasting):
        admin.grant(victim, experiment="anything", permission="manage")
    with pytest.raises(InvalidArgumentError, match="cannot outlive"):
        admin.create_token(victim)  # for someone else, without expiry
    with pytest.raises(InvalidArgumentError, match="cannot outlive"):
        admin.create_token(victim, expires_at=expires_at + timedelta(days=1))
    assert _whoami(auth_server, auth=(victim, "victim's password")).json()["role"] == "viewer"
    # What ends with the token, or only takes access away, stays allowed.
    bounded = admin.create_token(victim, expires_at=expires_at - timedelta(minutes=1))
    assert bounded.token.expires_at is not None
    assert admin.update_user(victim, disabled=True).disabled
    with pytest.raises(PermissionDeniedError, match=lasting):
        admin.update_user(victim, disabled=False)
    assert admin.revoke_token(bounded.token.token_id).revoked_at is not None
    # The same admin with a lasting credential may do all of it.
    assert not auth_server.admin.update_user(victim, disabled=False).disabled


# -- the service on each database (no server) ---------------------------------------------


@pytest.fixture
def service(db_url: str) -> Iterator[Any]:
    """The auth service on each metadata backend (SQLite memory/file, PostgreSQL)."""
    database = Database(db_url)
    ensure_schema(database, migration_history())
    yield auth_service(database, actor="tester")
    database.dispose()


def test_set_password_revokes_in_one_step_and_clears_the_cache(service: Any) -> None:
    service.create_user("gus", role="editor", password="gus's old password")
    kept, ended = service.create_token("gus", name="kept"), service.create_token("gus")
    caller = service.authenticate_token(kept.secret)
    service.authenticate_token(ended.secret)  # cached
    service.authenticate_password("gus", "gus's old password")  # cached
    with pytest.raises(InvalidArgumentError, match="current"):
        service.set_password("gus", "gus's new password", caller=caller)
    change = service.set_password(
        "gus", "gus's new password", current_password="gus's old password", caller=caller
    )
    assert change.revoked_tokens == 1
    with pytest.raises(UnauthenticatedError, match="revoked"):
        service.authenticate_token(ended.secret)
    with pytest.raises(UnauthenticatedError, match="Wrong"):
        service.authenticate_password("gus", "gus's old password")
    assert service.authenticate_token(kept.secret).name == "gus"
    # On the database itself (no caller) an operator resets it; every token ends.
    assert service.set_password("gus", "an operator's reset").revoked_tokens == 1
    with pytest.raises(UnauthenticatedError, match="revoked"):
        service.authenticate_token(kept.secret)
