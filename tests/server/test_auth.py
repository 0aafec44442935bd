"""Authentication and authorization of ``driftline server --auth``, against a real process.

The first admin is bootstrapped the way an operator does it: the CLI run on the server's
machine, directly against the server's SQLite database, with no token. Everything else
goes over HTTP with that admin's token. The role/grant table itself is checked on the
policy function, without a server.
"""

from __future__ import annotations

import base64
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftline.api.client import ApiClient, raise_for_envelope
from driftline.auth import (
    AUTH_ENTITIES,
    Permission,
    Principal,
    ResourceKind,
    Role,
    auth_service,
)
from driftline.auth._http import HttpUserAdmin
from driftline.auth.cache import TTL
from driftline.auth.hashing import hash_password, parse_token, verify_password
from driftline.auth.models import Grant
from driftline.auth.policy import allowed, may_store_content, require
from driftline.auth.throttle import PER_NAME, FailureThrottle
from driftline.core.clock import utcnow
from driftline.core.metadata import Database, ensure_schema
from driftline.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    TooManyAttemptsError,
    UnauthenticatedError,
)
from driftline.stages import migration_history

# -- the role/grant table (no server) ------------------------------------------------------


def _principal(role: str, *grants: tuple[str, str, str]) -> Principal:
    return Principal(
        user_id="u",
        name="someone",
        role=Role(role),
        grants=tuple(
            Grant(
                user="someone",
                kind=ResourceKind(kind),
                resource=resource,
                permission=Permission(permission),
                created_at=utcnow(),
            )
            for kind, resource, permission in grants
        ),
    )


EXP_EDIT = ("experiment", "churn", "edit")
EXP_MANAGE = ("experiment", "churn", "manage")
MODEL_EDIT = ("model", "scorer", "edit")
MODEL_MANAGE = ("model", "scorer", "manage")
MODEL_READ = ("model", "scorer", "read")


@pytest.mark.parametrize(
    ("role", "grants", "action", "target", "expected"),
    [
        # admin: everything, user administration included
        ("admin", (), "manage", {"model": "scorer"}, True),
        ("admin", (), "manage", {"admin": True}, True),
        ("admin", (), "manage", {}, True),
        # editor: reads and edits everything; manages experiments; models need a grant
        ("editor", (), "read", {}, True),
        ("editor", (), "edit", {}, True),
        ("editor", (), "edit", {"experiment": "churn"}, True),
        ("editor", (), "edit", {"model": "scorer"}, True),
        ("editor", (), "manage", {"experiment": "churn"}, True),
        ("editor", (), "manage", {"model": "scorer"}, False),
        ("editor", (MODEL_EDIT,), "manage", {"model": "scorer"}, False),
        ("editor", (MODEL_MANAGE,), "manage", {"model": "scorer"}, True),
        ("editor", (MODEL_MANAGE,), "manage", {"model": "other"}, False),
        ("editor", (), "manage", {}, False),
        ("editor", (), "read", {"admin": True}, False),
        # viewer: reads everything, writes only where granted
        ("viewer", (), "read", {"experiment": "churn"}, True),
        ("viewer", (), "edit", {}, False),
        ("viewer", (), "edit", {"experiment": "churn"}, False),
        ("viewer", (EXP_EDIT,), "edit", {"experiment": "churn"}, True),
        ("viewer", (EXP_EDIT,), "edit", {"experiment": "other"}, False),
        ("viewer", (EXP_EDIT,), "edit", {}, False),
        ("viewer", (EXP_EDIT,), "manage", {"experiment": "churn"}, False),
        ("viewer", (EXP_MANAGE,), "manage", {"experiment": "churn"}, True),
        ("viewer", (EXP_EDIT,), "edit", {"model": "churn"}, False),
        ("viewer", (MODEL_READ,), "edit", {"model": "scorer"}, False),
        ("viewer", (MODEL_EDIT,), "edit", {"model": "scorer"}, True),
        ("viewer", (MODEL_EDIT,), "manage", {"model": "scorer"}, False),
        ("viewer", (MODEL_MANAGE,), "edit", {"model": "scorer"}, True),
        # both named: the permission is needed on each
        ("viewer", (EXP_EDIT,), "edit", {"experiment": "churn", "model": "scorer"}, False),
        (
            "viewer",
            (EXP_EDIT, MODEL_EDIT),
            "edit",
            {"experiment": "churn", "model": "scorer"},
            True,
        ),
        ("viewer", (MODEL_MANAGE,), "read", {"admin": True}, False),
    ],
)
def test_the_role_and_grant_table(
    role: str, grants: tuple[Any, ...], action: str, target: dict[str, Any], expected: bool
) -> None:
    assert allowed(_principal(role, *grants), action, **target) is expected


def test_uploading_content_needs_the_editor_role_or_some_edit_grant() -> None:
    assert may_store_content(_principal("editor"))
    assert may_store_content(_principal("viewer", EXP_EDIT))
    assert may_store_content(_principal("viewer", MODEL_MANAGE))
    assert not may_store_content(_principal("viewer"))
    assert not may_store_content(_principal("viewer", MODEL_READ))
    with pytest.raises(PermissionDeniedError, match="upload artifacts"):
        require(_principal("viewer", MODEL_READ), "edit", content=True)
    require(_principal("viewer", EXP_EDIT), "edit", content=True)
    with pytest.raises(PermissionDeniedError):  # content=True widens nothing else
        require(_principal("viewer", EXP_EDIT), "edit", model="scorer", content=True)


def test_an_unknown_action_is_an_error_not_a_denial() -> None:
    with pytest.raises(InvalidArgumentError, match="Unknown action"):
        allowed(_principal("admin"), "delete")


def test_password_hashes_are_salted_slow_and_carry_their_parameters() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second  # salted
    assert first.startswith("scrypt$n=16384,r=8,p=1$")
    assert "correct horse" not in first
    assert verify_password("correct horse", first)
    assert not verify_password("correct hose", first)
    assert not verify_password("correct horse", "garbage")
    with pytest.raises(InvalidArgumentError, match="at least 8"):
        hash_password("short")
    with pytest.raises(InvalidArgumentError, match="look like an API token"):
        hash_password("dl_" + "0" * 32 + "_" + "a" * 43)


# -- limits on failed password checks -------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_password_checks_are_limited_per_client_and_name() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(per_name=3, per_client=5, window=60, clock=clock)
    for _ in range(3):
        throttle.check("10.0.0.1", "alice")
        throttle.failed("10.0.0.1", "alice")
        clock.now += 1
    with pytest.raises(TooManyAttemptsError, match=r"for 'alice' from 10\.0\.0\.1") as refused:
        throttle.check("10.0.0.1", "alice")
    assert refused.value.retry_after == 57  # when the first failure (at 1000) leaves it
    assert refused.value.http_status == 429
    assert isinstance(refused.value, UnauthenticatedError)
    throttle.check("10.0.0.2", "alice")  # nobody elsewhere can lock alice out
    throttle.check("10.0.0.1", "bob")
    clock.now += 56
    with pytest.raises(TooManyAttemptsError):
        throttle.check("10.0.0.1", "alice")
    clock.now += 1
    throttle.check("10.0.0.1", "alice")  # the first failure left the window


def test_many_names_from_one_client_reach_the_client_limit() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(per_name=3, per_client=5, window=60, clock=clock)
    for i in range(5):
        throttle.failed("10.0.0.1", f"user-{i}")
    with pytest.raises(TooManyAttemptsError, match=r"from 10\.0\.0\.1; try again in 60 s"):
        throttle.check("10.0.0.1", "someone-else")
    throttle.check("10.0.0.2", "someone-else")


def test_a_success_forgets_the_failures_for_that_name() -> None:
    throttle = FailureThrottle(per_name=2, per_client=100, window=60, clock=FakeClock())
    throttle.failed("c", "alice")
    throttle.succeeded("c", "alice")
    throttle.failed("c", "alice")
    throttle.check("c", "alice")  # one failure since the success, not two


# -- the service on a database (no server) --------------------------------------------------


@pytest.fixture
def service(db_url: str) -> Iterator[Any]:
    """The auth service on each metadata backend (SQLite memory/file, PostgreSQL)."""
    database = Database(db_url)
    ensure_schema(database, migration_history())
    yield auth_service(database, actor="tester")
    database.dispose()


def test_a_verified_password_is_cached_and_a_change_clears_the_cache(service: Any) -> None:
    service.create_user("carol", role="editor", password="carol's password")
    first = service.authenticate_password("carol", "carol's password")
    started = time.perf_counter()
    again = service.authenticate_password("carol", "carol's password")
    assert again is first  # from the cache: no second scrypt
    assert time.perf_counter() - started < 0.01
    with pytest.raises(UnauthenticatedError, match="Wrong user name or password"):
        service.authenticate_password("carol", "not carol's password")
    with pytest.raises(UnauthenticatedError, match="Wrong user name or password"):
        service.authenticate_password("nobody", "carol's password")
    service.update_user("carol", disabled=True)
    with pytest.raises(UnauthenticatedError, match="disabled"):
        service.authenticate_password("carol", "carol's password")


def test_the_service_refuses_before_hashing_and_forgives_elsewhere(service: Any) -> None:
    service.throttle = FailureThrottle(per_name=3, per_client=100, window=600)
    service.create_user("erin", role="viewer", password="erin's password")
    for _ in range(3):
        with pytest.raises(UnauthenticatedError, match="Wrong user name or password"):
            service.authenticate_password("erin", "a guess", client="10.0.0.9")
    started = time.perf_counter()
    with pytest.raises(TooManyAttemptsError):  # even the right password: the key is locked
        service.authenticate_password("erin", "erin's password", client="10.0.0.9")
    assert time.perf_counter() - started < 0.02  # no scrypt ran
    assert service.authenticate_password("erin", "erin's password", client="10.0.0.8").name == (
        "erin"
    )


def test_tokens_are_shown_once_and_revocable(service: Any) -> None:
    service.create_user("dave", role="viewer")
    issued = service.create_token("dave", name="ci")
    assert issued.secret not in repr(issued)
    token_id, _secret = parse_token(issued.secret)
    assert token_id == issued.token.token_id
    assert service.authenticate_token(issued.secret).name == "dave"
    assert service.list_tokens("dave")[0].token_id == token_id
    with pytest.raises(UnauthenticatedError):
        service.authenticate_token(issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B"))
    service.revoke_token(token_id)
    with pytest.raises(UnauthenticatedError, match="revoked"):
        service.authenticate_token(issued.secret)
    with pytest.raises(InvalidArgumentError, match="future"):
        service.create_token("dave", expires_at=utcnow() - timedelta(seconds=1))
    with pytest.raises(NotFoundError):
        service.create_token("nobody")
    with pytest.raises(InvalidArgumentError, match="user name"):
        service.create_user("bad:name", role="viewer")
    with pytest.raises(InvalidArgumentError, match="Unknown role"):
        service.create_user("erin", role="owner")


# -- a server with --auth ------------------------------------------------------------------


def _clean_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env["XDG_CONFIG_HOME"] = str(root / "xdg")
    return env


def run_cli(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``driftline ARGS`` in a process of its own, as an operator would run it."""
    command = [sys.executable, "-m", "driftline.cli", "--home", str(root / ".driftline"), *args]
    return subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        env=_clean_env(root),
        cwd=root,
        timeout=120,
    )


@dataclass
class AuthServer:
    """A server with --auth, its database, and its bootstrapped admin's token."""

    url: str
    uri: str
    root: Path
    db_path: Path
    admin_token: str
    admin: HttpUserAdmin

    def user(self, role: str, *, password: str | None = None) -> tuple[str, str]:
        """A new user of ``role`` with a fresh token: ``(name, token)``."""
        name = f"{role}-{secrets.token_hex(4)}"
        self.admin.create_user(name, role=role, password=password)
        return name, self.admin.create_token(name).secret

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.url + path, headers=headers | kwargs.pop("headers", {}), **kwargs)


@pytest.fixture(scope="module")
def auth_server(server_factory: Callable[..., Any]) -> Iterator[AuthServer]:
    server = server_factory(args=("--auth",))
    # The bootstrap: on the server's machine, straight to its database, no token.
    done = run_cli(
        server.root, "--uri", server.uri, "users", "create", "root", "--role", "admin",
        "--with-token",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("dl_"), done.stdout
    admin = HttpUserAdmin(ApiClient(server.url, token=token))
    yield AuthServer(
        url=server.url,
        uri=server.uri,
        root=server.root,
        db_path=server.root / ".driftline" / "driftline.db",
        admin_token=token,
        admin=admin,
    )
    admin.close()


def _assert_401(response: httpx.Response, message: str = "") -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "UNAUTHENTICATED"
    assert error["status"] == 401
    assert message.lower() in error["message"].lower()
    challenge = response.headers["WWW-Authenticate"]
    assert "Bearer" in challenge
    assert "Basic" in challenge


@pytest.mark.server
def test_health_needs_no_credentials_and_everything_else_does(auth_server: AuthServer) -> None:
    assert auth_server.get("/health").json() == {"status": "ok"}
    for path in (
        "/api/v1/info",
        "/ready",
        "/openapi.json",
        "/api/v1/users",
        "/api/v1/no-such-route",  # 401 before 404: routes are not revealed
        "/api/2.0/mlflow/experiments/search",
    ):
        _assert_401(auth_server.get(path), "Authentication required")
    response = auth_server.get("/api/v1/info", auth_server.admin_token)
    assert response.status_code == 200
    assert response.json()["auth"] is True


@pytest.mark.server
def test_bad_tokens_and_credentials_are_401(auth_server: AuthServer) -> None:
    _name, token = auth_server.user("viewer")
    token_id, secret = parse_token(token)
    wrong_secret = f"dl_{token_id}_{'A' * 43}"
    unknown_id = f"dl_{'0' * 32}_{secret}"
    for bad in ("nonsense", "dl_short", wrong_secret, unknown_id):
        _assert_401(auth_server.get("/api/v1/info", bad), "Invalid token")
    _assert_401(
        auth_server.get("/api/v1/info", headers={"Authorization": f"Token {token}"}),
        "Unsupported",
    )
    _assert_401(
        auth_server.get("/api/v1/info", headers={"Authorization": "Basic !!!not-base64"}),
        "Malformed",
    )
    assert auth_server.get("/api/v1/info", token).status_code == 200


@pytest.mark.server
def test_an_expired_token_is_401(auth_server: AuthServer) -> None:
    name = f"viewer-{secrets.token_hex(4)}"
    auth_server.admin.create_user(name, role="viewer")
    issued = auth_server.admin.create_token(name, expires_at=utcnow() + timedelta(seconds=3))
    assert issued.token.expires_at is not None
    first = auth_server.get("/api/v1/info", issued.secret)
    deadline = time.monotonic() + 20
    while True:
        response = auth_server.get("/api/v1/info", issued.secret)
        if response.status_code == 401 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    _assert_401(response, "expired")
    # It worked before it expired (unless this machine took 3 s for one request).
    assert first.status_code == 200 or utcnow() >= issued.token.expires_at


@pytest.mark.server
def test_a_revoked_token_is_401_at_once_here_and_within_the_ttl_elsewhere(
    auth_server: AuthServer,
) -> None:
    name, token = auth_server.user("editor")
    assert auth_server.get("/api/v1/info", token).status_code == 200
    # Revoked through the server: the worker that revokes forgets its cache at once.
    auth_server.admin.revoke_token(parse_token(token)[0])
    _assert_401(auth_server.get("/api/v1/info", token), "revoked")

    # Revoked on the database by another process: effective within the cache's TTL.
    other = auth_server.admin.create_token(name).secret
    assert auth_server.get("/api/v1/info", other).status_code == 200
    done = run_cli(auth_server.root, "--uri", auth_server.uri, "tokens", "revoke", other)
    assert done.returncode == 0, done.stderr
    revoked_at = time.monotonic()
    while auth_server.get("/api/v1/info", other).status_code == 200:
        assert time.monotonic() - revoked_at < TTL + 10, "revocation did not take effect"
        time.sleep(0.2)
    _assert_401(auth_server.get("/api/v1/info", other), "revoked")


@pytest.mark.server
def test_a_disabled_user_cannot_authenticate(auth_server: AuthServer) -> None:
    name, token = auth_server.user("editor", password="editor password")
    assert auth_server.get("/api/v1/whoami", token).status_code == 200
    auth_server.admin.update_user(name, disabled=True)
    _assert_401(auth_server.get("/api/v1/whoami", token), "disabled")
    _assert_401(httpx.get(auth_server.url + "/api/v1/whoami", auth=(name, "editor password")))
    auth_server.admin.update_user(name, disabled=False)
    assert auth_server.get("/api/v1/whoami", token).json()["name"] == name


@pytest.mark.server
def test_basic_auth_with_a_password_or_a_token(auth_server: AuthServer) -> None:
    name, token = auth_server.user("viewer", password="a long password")
    url = auth_server.url + "/api/v1/whoami"
    assert httpx.get(url, auth=(name, "a long password")).json()["name"] == name
    # A token as the password, whatever the user name (the MLflow client sends both).
    assert httpx.get(url, auth=("anything", token)).json()["name"] == name
    _assert_401(httpx.get(url, auth=(name, "a wrong password")), "Wrong user name or password")
    _assert_401(httpx.get(url, auth=("nobody", "a long password")), "Wrong user name or password")
    no_colon = base64.b64encode(name.encode()).decode()
    _assert_401(httpx.get(url, headers={"Authorization": f"Basic {no_colon}"}), "Malformed")
    # Under the MLflow prefixes too: authenticated, the unknown route is MLflow's plain 404.
    mlflow = httpx.post(
        auth_server.url + "/api/2.0/mlflow/no-such-route", json={}, auth=(name, token)
    )
    assert mlflow.status_code != 401


@pytest.mark.server
def test_repeated_wrong_passwords_get_429_and_tokens_still_work(auth_server: AuthServer) -> None:
    name, token = auth_server.user("viewer", password="the right password")
    url = auth_server.url + "/api/v1/whoami"
    for _ in range(PER_NAME):
        _assert_401(httpx.get(url, auth=(name, "a guess")), "Wrong user name or password")
    refused = httpx.get(url, auth=(name, "the right password"))
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "TOO_MANY_ATTEMPTS"
    assert f"for {name!r} from 127.0.0.1" in refused.json()["error"]["message"]
    assert 590 <= int(refused.headers["Retry-After"]) <= 600
    # Without --forwarded-allow-ips a client cannot claim another address.
    spoofed = {"X-Forwarded-For": "198.51.100.1"}
    assert httpx.get(url, auth=(name, "a guess"), headers=spoofed).status_code == 429
    # Under the MLflow prefixes the body also speaks MLflow's dialect.
    mlflow = httpx.get(
        auth_server.url + "/api/2.0/mlflow/experiments/search", auth=(name, "a guess")
    )
    assert mlflow.status_code == 429
    assert mlflow.json()["error_code"] == "TOO_MANY_ATTEMPTS"
    # Tokens are not limited, and a client reads the refusal as its own error type.
    assert auth_server.get("/api/v1/whoami", token).json()["name"] == name
    with pytest.raises(TooManyAttemptsError):
        raise_for_envelope(refused.status_code, refused.content, "whoami")


@pytest.mark.server
def test_behind_a_trusted_proxy_failures_count_per_forwarded_address(
    server_factory: Callable[..., Any],
) -> None:
    server = server_factory(args=("--auth", "--forwarded-allow-ips", "127.0.0.1"))
    done = run_cli(
        server.root, "--uri", server.uri, "users", "create", "fay", "--role", "viewer",
        "--password-stdin", stdin="fay's password\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    url = server.url + "/api/v1/whoami"

    def whoami(password: str, client: str) -> httpx.Response:
        return httpx.get(url, auth=("fay", password), headers={"X-Forwarded-For": client})

    for _ in range(PER_NAME):
        assert whoami("a guess", "203.0.113.5").status_code == 401
    refused = whoami("fay's password", "203.0.113.5")
    assert refused.status_code == 429
    assert "from 203.0.113.5" in refused.json()["error"]["message"]
    # The same user from another address behind the same proxy is not locked out.
    assert whoami("fay's password", "198.51.100.7").json()["name"] == "fay"


@pytest.mark.server
def test_only_admins_manage_users(auth_server: AuthServer) -> None:
    editor, editor_token = auth_server.user("editor")
    viewer, viewer_token = auth_server.user("viewer")
    for token in (editor_token, viewer_token):
        response = auth_server.get("/api/v1/users", token)
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "PERMISSION_DENIED"
        assert "not an admin" in response.json()["error"]["message"]
        created = httpx.post(
            auth_server.url + "/api/v1/users",
            json={"name": f"x-{secrets.token_hex(3)}", "role": "admin"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 403
    # The same refusal, raised as the same class, through the remote client.
    as_viewer = HttpUserAdmin(ApiClient(auth_server.url, token=viewer_token))
    try:
        with pytest.raises(PermissionDeniedError, match="not an admin"):
            as_viewer.list_users()
        with pytest.raises(PermissionDeniedError):
            as_viewer.grant(viewer, experiment="anything", permission="edit")
        with pytest.raises(PermissionDeniedError):
            as_viewer.create_token(editor)  # someone else's token
    finally:
        as_viewer.close()
    names = {user.name for user in auth_server.admin.list_users()}
    assert {"root", editor, viewer} <= names
    listed = auth_server.get("/api/v1/users", auth_server.admin_token).json()["users"]
    assert all("password" not in key for user in listed for key in user if key != "has_password")


@pytest.mark.server
def test_a_user_reads_itself_and_manages_its_own_tokens(auth_server: AuthServer) -> None:
    name, token = auth_server.user("viewer")
    other, _ = auth_server.user("viewer")
    me = HttpUserAdmin(ApiClient(auth_server.url, token=token))
    try:
        assert me.whoami().name == name
        assert me.whoami().role is Role.VIEWER
        issued = me.create_token(name="laptop")  # for itself, by default
        assert issued.token.user == name
        assert {t.token_id for t in me.list_tokens()} >= {issued.token.token_id}
        assert all(t.user == name for t in me.list_tokens())
        with pytest.raises(PermissionDeniedError):
            me.list_tokens(other)
        others = auth_server.admin.list_tokens(other)
        with pytest.raises(PermissionDeniedError, match="belongs to another user"):
            me.revoke_token(others[0].token_id)
        assert me.revoke_token(issued.token.token_id).revoked_at is not None
        response = auth_server.get(f"/api/v1/users/{name}", token)
        assert response.status_code == 200
        assert response.json()["name"] == name
        assert auth_server.get(f"/api/v1/users/{other}", token).status_code == 403
        # Its own password, yes (given the current one: it has none, and its token does
        # not expire); its own role, no.
        me.set_password(name, "my new password")
        with pytest.raises(PermissionDeniedError):
            me.update_user(name, role="admin")
    finally:
        me.close()
    assert (
        httpx.get(auth_server.url + "/api/v1/whoami", auth=(name, "my new password")).json()["name"]
        == name
    )


@pytest.mark.server
def test_a_token_cannot_mint_a_token_that_outlives_it(auth_server: AuthServer) -> None:
    name, _ = auth_server.user("editor")
    expires = utcnow() + timedelta(hours=1)
    short = auth_server.admin.create_token(name, expires_at=expires).secret
    me = HttpUserAdmin(ApiClient(auth_server.url, token=short))
    try:
        with pytest.raises(InvalidArgumentError, match="cannot outlive"):
            me.create_token(name="forever")
        with pytest.raises(InvalidArgumentError, match="cannot outlive"):
            me.create_token(name="longer", expires_at=expires + timedelta(days=1))
        shorter = me.create_token(name="shorter", expires_at=expires - timedelta(minutes=5))
        assert shorter.token.expires_at is not None
    finally:
        me.close()


@pytest.mark.server
def test_an_admin_cannot_lock_itself_out(auth_server: AuthServer) -> None:
    from driftline.errors import ConflictError

    with pytest.raises(ConflictError, match="another admin"):
        auth_server.admin.update_user("root", disabled=True)
    with pytest.raises(ConflictError, match="another admin"):
        auth_server.admin.update_user("root", role="viewer")
    assert auth_server.get("/api/v1/users", auth_server.admin_token).status_code == 200


@pytest.mark.server
def test_bad_input_is_a_clear_4xx(auth_server: AuthServer) -> None:
    headers = {"Authorization": f"Bearer {auth_server.admin_token}"}
    name, _ = auth_server.user("viewer")

    def post(path: str, body: Any) -> httpx.Response:
        return httpx.post(auth_server.url + path, json=body, headers=headers)

    cases = [
        (post("/api/v1/users", {"name": "x1", "role": "owner"}), 400, "role"),
        (post("/api/v1/users", {"name": "x2", "role": "viewer", "extra": 1}), 400, "extra"),
        (post("/api/v1/users", {"name": "a/b", "role": "viewer"}), 400, "user name"),
        (post("/api/v1/users", {"name": "x3", "role": "viewer", "password": "x"}), 400, "8"),
        (post("/api/v1/users", {"name": name, "role": "viewer"}), 409, "exists"),
        (post("/api/v1/tokens", {"user": "nobody-at-all"}), 404, "nobody-at-all"),
        (post("/api/v1/tokens", {"user": name, "expires_at": 1000}), 400, "future"),
        (post("/api/v1/tokens", {"user": name, "expires_at": "soon"}), 400, "expires_at"),
        (
            httpx.put(
                f"{auth_server.url}/api/v1/users/{name}/grants",
                json={"permission": "edit", "experiment": "a", "model": "b"},
                headers=headers,
            ),
            400,
            "exactly one",
        ),
        (
            httpx.put(
                f"{auth_server.url}/api/v1/users/{name}/grants",
                json={"permission": "own", "experiment": "a"},
                headers=headers,
            ),
            400,
            "permission",
        ),
        (
            httpx.delete(
                f"{auth_server.url}/api/v1/users/{name}/grants",
                params={"experiment": "never-granted"},
                headers=headers,
            ),
            404,
            "no grant",
        ),
        (
            httpx.delete(f"{auth_server.url}/api/v1/tokens/{'f' * 32}", headers=headers),
            404,
            "No token",
        ),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        assert words.lower() in response.json()["error"]["message"].lower(), response.text


@pytest.mark.server
def test_hashes_are_stored_never_secrets(auth_server: AuthServer) -> None:
    password = f"pw-{secrets.token_hex(8)}"
    name, token = auth_server.user("viewer", password=password)
    assert httpx.get(auth_server.url + "/api/v1/whoami", auth=(name, password)).status_code == 200
    secret = parse_token(token)[1]
    conn = sqlite3.connect(auth_server.db_path)
    try:
        stored = conn.execute(
            "SELECT password_hash FROM auth_users WHERE name = ?", (name,)
        ).fetchone()[0]
        hashes = [row[0] for row in conn.execute("SELECT secret_hash FROM auth_tokens")]
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    assert stored.startswith("scrypt$")
    assert password not in stored
    assert hashes
    assert all(h.startswith("sha256$") for h in hashes)
    # Neither the password nor the token's secret is anywhere in the database.
    assert password not in dump
    assert secret not in dump
    assert auth_server.admin_token.split("_")[-1] not in dump


@pytest.mark.server
def test_permission_changes_are_audited_and_the_chain_verifies(auth_server: AuthServer) -> None:
    from driftline.core.audit import iter_audit, verify_audit_log

    name, token = auth_server.user("viewer")
    token_id = parse_token(token)[0]
    auth_server.admin.update_user(name, role="editor")
    auth_server.admin.grant(name, model="scorer", permission="manage")
    auth_server.admin.revoke(name, model="scorer")
    auth_server.admin.update_user(name, disabled=True)
    auth_server.admin.revoke_token(token_id)
    database = Database(auth_server.uri)
    try:
        entries = database.read(lambda conn: iter_audit(conn, newest_first=False))
        assert database.read(verify_audit_log).ok
    finally:
        database.dispose()
    mine = [
        (e.actor, e.action, e.entity)
        for e in entries
        if e.entity in (name, token_id) or e.entity.startswith(f"{name}/")
    ]
    assert mine == [
        ("root", "create_user", name),
        ("root", "create_token", token_id),
        ("root", "change_role", name),
        ("root", "grant", f"{name}/model:scorer"),
        ("root", "revoke", f"{name}/model:scorer"),
        ("root", "disable_user", name),
        ("root", "revoke_token", token_id),
    ]
    bootstrap = next(e for e in entries if e.action == "create_user" and e.entity == "root")
    assert bootstrap.after["role"] == "admin"
    done = run_cli(auth_server.root, "--uri", auth_server.uri, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert "intact" in done.stdout


def test_every_audit_entry_of_the_auth_stage_is_of_an_auth_entity_type(db_url: str) -> None:
    # AUTH_ENTITIES is what the server shows admins only: an entity type the stage
    # writes and the set forgets would be shown to every reader.
    from driftline.core.audit import iter_audit

    database = Database(db_url)
    try:
        ensure_schema(database, migration_history())
        service = auth_service(database, actor="tester")
        service.create_user("gina", role="viewer", password="gina's password")
        service.update_user("gina", role="editor")
        service.update_user("gina", disabled=True)
        service.update_user("gina", disabled=False)
        token = service.create_token("gina")
        service.set_password("gina", "gina's new password")  # revokes the token too
        service.grant("gina", model="churn", permission="manage")
        service.revoke("gina", model="churn")
        service.revoke_token(service.create_token("gina").token.token_id)
        entries = database.read(lambda conn: iter_audit(conn))
    finally:
        database.dispose()
    assert token.token.token_id in {e.entity for e in entries}
    assert {e.entity_type for e in entries} == AUTH_ENTITIES


@pytest.mark.server
def test_the_audit_entries_of_users_grants_and_tokens_are_read_by_admins_only(
    auth_server: AuthServer, tmp_path: Path
) -> None:
    url = "/api/v1/audit"
    with _remote(auth_server, auth_server.admin_token) as admin:
        folder = tmp_path / "data"
        folder.mkdir()
        (folder / "a.csv").write_text("x\n1\n")
        dataset = f"customers-{secrets.token_hex(3)}"
        admin.data.commit(dataset, folder)
        admin.data.tag(f"{dataset}@1", "october")
    # Created after the tag: the newest entries are the viewer's user and token.
    viewer, viewer_token = auth_server.user("viewer")
    auth_server.admin.grant(viewer, model="scorer", permission="read")

    # A reader's log at large: everything but users, grants and tokens, and says so.
    answer = auth_server.get(url, viewer_token)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["omitted"] == ["grant", "token", "user"]
    types = {e["entity_type"] for e in body["entries"]}
    assert "dataset" in types
    assert not types & AUTH_ENTITIES
    assert viewer not in answer.text
    # Left out before the limit: the newest entry the reader may read, not an empty page.
    (newest,) = auth_server.get(url, viewer_token, params={"limit": 1}).json()["entries"]
    assert (newest["action"], newest["entity"]) == ("tag", f"{dataset}@october")
    # An entity named without a type: its auth entries are left out the same way.
    named = auth_server.get(url, viewer_token, params={"entity": viewer}).json()
    assert named == {"entries": [], "omitted": ["grant", "token", "user"]}
    # Asked for by type: refused, naming why.
    for asked in (["user"], ["dataset", "token"], ["grant"]):
        refused = auth_server.get(url, viewer_token, params={"entity_type": asked})
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["code"] == "PERMISSION_DENIED"
        assert "Only an admin" in error["message"]
        assert viewer not in refused.text
    # Other types by name: nothing of the reader's was left out.
    tags = auth_server.get(url, viewer_token, params={"entity_type": "dataset"}).json()
    assert tags["omitted"] == []
    assert [e["entity"] for e in tags["entries"]][:1] == [f"{dataset}@october"]

    # An admin reads them all.
    everything = auth_server.get(url, auth_server.admin_token).json()
    assert everything["omitted"] == []
    assert {e["entity_type"] for e in everything["entries"]} >= AUTH_ENTITIES | {"dataset"}
    mine = auth_server.get(
        url, auth_server.admin_token, params={"entity": viewer, "entity_type": "user"}
    ).json()
    assert [(e["action"], e["entity"]) for e in mine["entries"]] == [("create_user", viewer)]

    # The chain is verified for a reader too, and its report names no entry's contents.
    verified = auth_server.get(f"{url}/verify", viewer_token)
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True
    assert viewer not in verified.text

    # The remote client carries the note; the CLI shows it (on stderr: --json stays a list).
    with _remote(auth_server, viewer_token) as ws:
        read = ws.registry.audit_log(limit=None)
        assert read.omitted == ("grant", "token", "user")
        assert not {e.entity_type for e in read} & AUTH_ENTITIES
        assert ws.audit.entries(entity_types={"dataset"}).omitted == ()
        with pytest.raises(PermissionDeniedError, match="Only an admin"):
            ws.audit.entries(entity_types={"user"})
    for token, note in ((viewer_token, True), (auth_server.admin_token, False)):
        env = _clean_env(tmp_path) | {"DRIFTLINE_TOKEN": token}
        for json_out in (False, True):
            done = subprocess.run(
                [sys.executable, "-m", "driftline.cli", "--home", str(tmp_path / ".driftline"),
                 "--uri", auth_server.url, "audit", "log", *(["--json"] if json_out else [])],
                capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert f"{dataset}@october" in done.stdout
            assert ("Entries of grant, token, user left out" in done.stderr) is note
            assert (viewer in done.stdout) is not note


# -- authorization of the tracking routes ---------------------------------------------------


def _remote(auth_server: AuthServer, token: str, *, async_logging: bool = False) -> Any:
    from driftline.settings import Settings
    from driftline.workspace import Workspace

    return Workspace.from_settings(
        Settings.load(
            uri=auth_server.url,
            token=token,
            home=auth_server.root / "client",
            async_logging=async_logging,
            capture_environment=False,
            flush_interval=0.05,
        )
    )


@pytest.mark.server
def test_logging_refused_for_a_missing_grant_is_kept_until_the_grant_comes(
    auth_server: AuthServer,
) -> None:
    experiment = f"later-{secrets.token_hex(3)}"
    viewer, viewer_token = auth_server.user("viewer")
    with _remote(auth_server, auth_server.admin_token) as admin:
        run = admin.tracking.create_run(experiment)
    with _remote(auth_server, viewer_token, async_logging=True) as ws:
        ws.tracking.log_batch(run.id, metrics=[("loss", 0.5, i, None) for i in range(10)])
        with pytest.raises(PermissionDeniedError, match="stay queued"):
            ws.tracking.flush(timeout=30)
        auth_server.admin.grant(viewer, experiment=experiment, permission="edit")
        deadline = time.monotonic() + 30
        while True:  # the writer retries with backoff; the grant lets the rows through
            try:
                ws.tracking.flush(timeout=30)
                break
            except PermissionDeniedError:
                assert time.monotonic() < deadline, "the queued rows were never written"
                time.sleep(0.5)
        history = ws.tracking.get_metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(10))


@pytest.mark.server
def test_a_viewer_writes_only_where_granted(auth_server: AuthServer) -> None:
    suffix = secrets.token_hex(3)
    granted, elsewhere = f"granted-{suffix}", f"elsewhere-{suffix}"
    viewer, viewer_token = auth_server.user("viewer")
    with _remote(auth_server, auth_server.admin_token) as admin:
        admin.tracking.create_experiment(elsewhere)
        theirs = admin.tracking.create_run(elsewhere)
    artifact = auth_server.root / f"notes-{suffix}.txt"
    artifact.write_text(f"written by {viewer}")
    with _remote(auth_server, viewer_token) as ws:
        # Without a grant: reads work, writes are 403 (artifact bytes included).
        assert ws.tracking.get_experiment(elsewhere).name == elsewhere
        with pytest.raises(PermissionDeniedError, match="grant"):
            ws.tracking.create_experiment(granted)
        with pytest.raises(PermissionDeniedError, match="upload artifacts"):
            ws.tracking.log_artifact(theirs.id, artifact)
        auth_server.admin.grant(viewer, experiment=granted, permission="edit")
        # The grant takes effect within the credential cache's TTL (at once here: the
        # server that changed it forgets its cache).
        ws.tracking.create_experiment(granted)
        run = ws.tracking.create_run(granted)
        ws.tracking.log_batch(run.id, metrics=[("loss", 0.5, 0, None)], params={"lr": 0.1})
        assert ws.tracking.get_run(run.id).user == viewer  # the caller, not the client's claim
        # Its artifacts' bytes too: objects are content-addressed, inert until referenced.
        ws.tracking.log_artifact(run.id, artifact)
        assert [e.path for e in ws.tracking.list_artifacts(run.id)] == [artifact.name]
        with pytest.raises(PermissionDeniedError):
            ws.tracking.create_run(elsewhere)
        with pytest.raises(PermissionDeniedError):
            ws.tracking.log_batch(theirs.id, metrics=[("loss", 0.1, 0, None)])
        with pytest.raises(PermissionDeniedError):
            ws.tracking.log_artifact(theirs.id, artifact)  # bytes stored, the entry refused
        assert ws.tracking.get_run(theirs.id).id == theirs.id


@pytest.mark.server
def test_managing_a_model_needs_a_manage_grant_even_for_an_editor(
    auth_server: AuthServer,
) -> None:
    model = f"scorer-{secrets.token_hex(3)}"
    editor, editor_token = auth_server.user("editor")
    viewer, viewer_token = auth_server.user("viewer")

    def call(method: str, path: str, token: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, auth_server.url + path, json=body, headers=headers)

    move = {"version": 1, "expected": "*"}
    alias = f"/api/v1/registry/models/{model}/aliases/champion"
    assert call("PUT", f"/api/v1/registry/models/{model}", viewer_token).status_code == 403
    assert call("PUT", f"/api/v1/registry/models/{model}", editor_token).status_code == 200
    assert call("GET", f"/api/v1/registry/models/{model}", viewer_token).status_code == 200
    denied = call("POST", alias, editor_token, move)
    assert denied.status_code == 403
    assert f"--model {model} --permission manage" in denied.json()["error"]["message"]
    auth_server.admin.grant(editor, model=model, permission="manage")
    auth_server.admin.grant(viewer, model=model, permission="edit")
    # Past authorization now: the move fails only because version 1 does not exist.
    assert call("POST", alias, editor_token, move).status_code == 404
    assert call("POST", alias, viewer_token, move).status_code == 403
    patched = call(
        "PATCH", f"/api/v1/registry/models/{model}", viewer_token, {"tags": {"team": "risk"}}
    )
    assert patched.status_code == 200, patched.text


_MLFLOW_SCRIPT = """
import os, sys
import mlflow
from mlflow.exceptions import MlflowException

mlflow.set_tracking_uri(sys.argv[1])
experiment = sys.argv[2]
for username, password in [("anything", sys.argv[3]), (sys.argv[4], sys.argv[5])]:
    os.environ["MLFLOW_TRACKING_USERNAME"] = username
    os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    mlflow.set_experiment(experiment)
    with mlflow.start_run():
        for step in range(5):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
    print("logged as", username)
os.environ["MLFLOW_TRACKING_PASSWORD"] = "a wrong password"
try:
    mlflow.search_experiments()
except MlflowException as exc:
    print("refused:", exc)
"""


@pytest.mark.server
def test_the_mlflow_client_authenticates_with_basic_auth(auth_server: AuthServer) -> None:
    pytest.importorskip("mlflow")
    experiment = f"mlflow-{secrets.token_hex(3)}"
    _, token = auth_server.user("editor")
    password = "the viewer's password"
    viewer, _ = auth_server.user("viewer", password=password)
    auth_server.admin.grant(viewer, experiment=experiment, permission="edit")
    env = _clean_env(auth_server.root)
    env.pop("MLFLOW_TRACKING_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-c", _MLFLOW_SCRIPT, auth_server.url, experiment, token, viewer,
         password],
        capture_output=True, text=True, env=env, timeout=300, cwd=auth_server.root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "logged as anything" in done.stdout
    assert f"logged as {viewer}" in done.stdout
    assert "refused: UNAUTHENTICATED: Wrong user name or password" in done.stdout
    with _remote(auth_server, auth_server.admin_token) as ws:
        runs = ws.tracking.search_runs(experiments=experiment).items
    assert len(runs) == 2
