"""Shared fixtures: backends, workspaces, the default (module-level) workspace, isolation.

Backends
    ``db_url`` is parametrized over ``sqlite-memory``, ``sqlite-file`` and ``postgres``;
    every test that asks for it (or for ``workspace`` / ``make_workspace``) runs once per
    backend. PostgreSQL tests carry the ``postgres`` marker.

PostgreSQL
    The session creates its own database (``driftline_test_<pid>_<random>``) through the
    ``test`` database with autocommit, and drops it (and any extra database a test asked
    for) at the end. Between tests every driftline table is truncated. The server is
    ``postgresql://postgres@127.0.0.1:5432/test`` unless ``DRIFTLINE_TEST_POSTGRES_URL``
    says otherwise. When it does not answer, PostgreSQL tests are skipped, except under
    ``CI=true``, where any skipped PostgreSQL test fails the session.

Isolation
    Every test runs in its own temporary folder, without ``DRIFTLINE_*`` variables and
    with ``XDG_CONFIG_HOME`` pointing into that folder, and the default workspace of the
    module-level API (``dl.start_run`` ...) is closed and forgotten afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from driftline.workspace import Workspace

# Read once at import, before any test removes DRIFTLINE_* variables from the environment.
PG_ADMIN_URL = os.environ.get(
    "DRIFTLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

BACKENDS = [
    pytest.param("sqlite-memory", id="sqlite-memory"),
    pytest.param("sqlite-file", id="sqlite-file"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
# Backends several processes (or several engines) can share.
SHARED_BACKENDS = BACKENDS[1:]
# Also the HTTP backend: a real `driftline server` process (on a SQLite file) that the
# workspace reaches over loopback. Contract suites opt in with
# ``@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)``.
HTTP_BACKEND = pytest.param("http", id="http", marks=pytest.mark.server)
ALL_BACKENDS = [*BACKENDS, HTTP_BACKEND]


# -- PostgreSQL -------------------------------------------------------------------------


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class PostgresServer:
    """A reachable PostgreSQL server and the databases this session created on it."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        self._admin = make_url(admin_url)
        self.session_database = ""
        self._created: list[str] = []

    def _libpq(self, database: str) -> str:
        url = self._admin.set(drivername="postgresql", database=database)
        return url.render_as_string(hide_password=False)

    def connect(self, database: str | None = None) -> Any:
        import psycopg

        return psycopg.connect(
            self._libpq(database or self._admin.database or "postgres"),
            autocommit=True,
            connect_timeout=3,
        )

    def url(self, database: str) -> str:
        """The SQLAlchemy URL driftline gets for ``database``."""
        url = self._admin.set(drivername="postgresql+psycopg", database=database)
        return url.render_as_string(hide_password=False)

    def create_database(self) -> str:
        name = f"driftline_test_{os.getpid()}_{secrets.token_hex(4)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._created:
            self._created.remove(name)

    def reset(self) -> None:
        """Empty every driftline table of the session database (the schema stays).

        DELETE with foreign-key triggers off is ten times faster than TRUNCATE on tables
        this small; without the privilege for that, fall back to TRUNCATE.
        """
        import psycopg

        with self.connect(self.session_database) as conn:
            conn.execute("SET lock_timeout = '20s'")
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename <> 'driftline_schema_version'"
                )
            ]
            if not tables:
                return
            try:
                with conn.transaction():
                    conn.execute("SET LOCAL session_replication_role = replica")
                    for table in tables:
                        conn.execute(f'DELETE FROM "{table}"')
            except psycopg.errors.InsufficientPrivilege:
                names = ", ".join(f'"{table}"' for table in tables)
                conn.execute(f"TRUNCATE {names} CASCADE")

    def close(self) -> None:
        for name in list(self._created):
            with contextlib.suppress(Exception):
                self.drop_database(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The PostgreSQL server with this session's own database (skips when unreachable)."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:  # pragma: no cover - psycopg is a dev dependency
        pytest.skip(f"PostgreSQL tests need psycopg: {exc}")
    server = PostgresServer(PG_ADMIN_URL)
    try:
        with server.connect() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable at {_masked(PG_ADMIN_URL)}: {exc}")
    server.session_database = server.create_database()
    yield server
    server.close()


# -- a live driftline server -------------------------------------------------------------


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that answers 503 to the first ``fail`` POSTs and
    keeps the JSON bodies and ``Idempotency-Key`` headers of the others."""

    def __init__(self, fail: int = 0) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.fail = fail
        self.attempts = 0
        self.bodies: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.hosts: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                receiver.keys.append(self.headers.get("Idempotency-Key", ""))
                receiver.hosts.append(self.headers.get("Host", ""))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@contextlib.contextmanager
def webhook_receiver(fail: int = 0) -> Iterator[WebhookReceiver]:
    """A running :class:`WebhookReceiver`, shut down afterwards."""
    import threading

    r = WebhookReceiver(fail)
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        thread.join(10)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A running :class:`WebhookReceiver` that answers every POST."""
    with webhook_receiver() as receiver:
        yield receiver


@dataclass
class FlakyNames:
    """Webhook hosts as a test resolves them: the names in ``resolvable`` resolve to a
    public address, any other fails as a resolver that is briefly down; ``delivery`` is a
    policy allowing public addresses only (the team server's default)."""

    resolvable: set[str]
    delivery: Any


@pytest.fixture
def flaky_names(monkeypatch: pytest.MonkeyPatch) -> FlakyNames:
    import ipaddress
    import socket

    from driftline.core import destinations
    from driftline.core.destinations import WebhookAllow
    from driftline.core.notify import DeliveryPolicy

    names = FlakyNames({"hooks.example.test"}, DeliveryPolicy(allow=WebhookAllow.parse("public")))

    def resolve(host: str, port: int | None, **kwargs: Any) -> Any:
        if host not in names.resolvable:
            raise socket.gaierror(f"{host}: temporary failure in name resolution")
        return [ipaddress.ip_address("93.184.216.34")]

    monkeypatch.setattr(destinations, "resolve", resolve)
    return names


class LiveServer:
    """A `driftline server` process on loopback, serving a workspace in ``root``.

    ``start()`` launches it and waits for ``/health``; ``stop()`` sends SIGTERM (or
    ``signal``) and waits; ``reset()`` empties every table of its SQLite database
    between tests (the process and its schema stay). ``env``: ``DRIFTLINE_*`` settings
    of the process (the caller's own are not passed on).
    """

    def __init__(
        self,
        root: Path,
        *,
        workers: int = 1,
        uri: str | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.uri = uri or f"sqlite:///{root / '.driftline' / 'driftline.db'}"
        self.args = args
        self.env = dict(env or {})
        self.process: Any = None
        self.log = root / "server.log"

    def start(self, timeout: float = 60.0) -> LiveServer:
        import subprocess
        import sys

        import httpx

        self.root.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
        env.update(self.env)
        command = [
            sys.executable, "-m", "driftline.cli", "--home", str(self.root / ".driftline"),
            "server", "--port", str(self.port), "--workers", str(self.workers),
            "--uri", self.uri, "--artifacts", str(self.root / "artifacts"),
            "--log-level", "warning", *self.args,
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"driftline server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"driftline server did not start: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int | None = None, timeout: float = 30.0) -> int | None:
        import signal
        import subprocess

        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else int(self.process.returncode)
        self.process.send_signal(sig or signal.SIGTERM)
        try:
            return int(self.process.wait(timeout))
        except subprocess.TimeoutExpired:
            self.process.kill()
            return int(self.process.wait(10))

    def reset(self) -> None:
        import sqlite3

        conn = sqlite3.connect(self.root / ".driftline" / "driftline.db", timeout=30)
        try:
            names = [
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if row[0] != "driftline_schema_version" and not row[0].startswith("sqlite_")
            ]
            conn.execute("PRAGMA foreign_keys = OFF")
            with conn:
                for name in names:
                    conn.execute(f'DELETE FROM "{name}"')
        finally:
            conn.close()
        # The audit log's anchors outside the database go too: emptied tables beside
        # them are exactly what `audit verify` reports as a cut log.
        shutil.rmtree(self.root / "artifacts" / "audit", ignore_errors=True)


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveServer]]:
    """Start more servers: ``server_factory(workers=2, args=("--auth",))`` (stopped at the end).

    For tests that need a server of their own (auth on, several workers, PostgreSQL, or a
    server they stop); module-scoped fixtures can call it too.
    """
    started: list[LiveServer] = []

    def start(**options: Any) -> LiveServer:
        server = LiveServer(tmp_path_factory.mktemp("server"), **options)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One driftline server process for the session (SQLite file, one worker)."""
    server = LiveServer(tmp_path_factory.mktemp("live-server")).start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``s3://<a new bucket>/team`` on a real S3 API (moto's server) on a loopback port.

    The ``AWS_*`` variables point s3fs (and any server process started afterwards) at it.
    """
    pytest.importorskip("s3fs")
    import boto3
    import fsspec
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    # moto keeps its state per process, whatever server: a fresh bucket per test.
    bucket = f"driftline-test-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    try:
        yield f"s3://{bucket}/team"
    finally:
        fsspec.filesystem("s3").clear_instance_cache()
        moto.stop()


# -- backends and workspaces ------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the metadata backend this test runs against."""
    return str(request.param)


def _url_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "http":
        server: LiveServer = request.getfixturevalue("live_server")
        server.reset()
        return server.url
    if backend == "sqlite-memory":
        return "sqlite://"
    if backend == "sqlite-file":
        return f"sqlite:///{tmp_path / 'metadata' / 'driftline.db'}"
    pg: PostgresServer = request.getfixturevalue("postgres")
    pg.reset()
    return pg.url(pg.session_database)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A metadata database URL of the current backend, empty of driftline rows."""
    return _url_for(backend, request, tmp_path)


@pytest.fixture
def new_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], str]:
    """Make URLs of brand-new, empty databases (no schema at all) of the current backend."""
    counter = iter(range(1_000_000))

    def make() -> str:
        if backend == "sqlite-memory":
            return "sqlite://"
        if backend == "sqlite-file":
            return f"sqlite:///{tmp_path / f'fresh-{next(counter)}.db'}"
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.url(server.create_database())

    return make


def close_quietly(ws: Workspace) -> None:
    """Close a workspace a test may have left in a failing state."""
    try:
        ws.close(timeout=10)
    except Exception:
        if ws.database is not None:
            ws.database.dispose()


@pytest.fixture
def open_workspace(tmp_path: Path) -> Iterator[Callable[..., Workspace]]:
    """Open workspaces on any database URL: ``open_workspace(url, async_logging=True)``.

    Home and artifacts live in the test's folder; logging is synchronous unless overridden;
    every workspace opened through it is closed after the test.
    """
    from driftline.settings import Settings
    from driftline.workspace import Workspace

    root = tmp_path / "ws"
    opened: list[Workspace] = []

    def open_(uri: str, **overrides: Any) -> Workspace:
        options: dict[str, Any] = {
            "home": root / ".driftline",
            "uri": uri,
            "artifact_root": str(root / "artifacts"),
            "async_logging": False,
            "capture_environment": False,
        }
        options.update(overrides)
        ws = Workspace.from_settings(Settings.load(**options))
        opened.append(ws)
        return ws

    yield open_
    for ws in reversed(opened):
        close_quietly(ws)


@pytest.fixture
def make_workspace(
    db_url: str, open_workspace: Callable[..., Workspace]
) -> Callable[..., Workspace]:
    """Open workspaces on the current backend; ``make(async_logging=True, ...)`` overrides.

    Two workspaces made here share one database, except on ``sqlite-memory`` where each
    has its own.
    """

    def make(**overrides: Any) -> Workspace:
        return open_workspace(db_url, **overrides)

    return make


@pytest.fixture(params=SHARED_BACKENDS)
def shared_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Like ``db_url``, for backends several processes can share (SQLite file, PostgreSQL)."""
    return _url_for(str(request.param), request, tmp_path)


@pytest.fixture
def workspace(make_workspace: Callable[..., Workspace]) -> Workspace:
    """A workspace on the current backend with synchronous logging."""
    return make_workspace()


# -- the module-level API's default workspace ------------------------------------------


def reset_default_workspace() -> None:
    """End runs the module-level API left open, close its workspace, clear the active run."""
    import sys

    fluent = sys.modules.get("driftline._fluent")
    if fluent is None:
        return
    with fluent._lock:
        runs = [run for run in fluent._started if not run.ended]
        fluent._started.clear()
        default, fluent._default = fluent._default, None
    for run in reversed(runs):
        with contextlib.suppress(Exception):
            run.end("KILLED")
    if default is not None:
        close_quietly(default)
    active = sys.modules.get("driftline.tracking.active")
    if active is not None:
        active._ACTIVE.set(None)


@pytest.fixture
def configure_default(tmp_path: Path) -> Iterator[Callable[..., Workspace]]:
    """``dl.configure`` the default workspace in the test's folder (SQLite file, async).

    Example: ``ws = configure_default(async_logging=False)``.
    """
    import driftline as dl

    root = tmp_path / "default-ws"

    def configure(**overrides: Any) -> Workspace:
        options: dict[str, Any] = {
            "home": root / ".driftline",
            "uri": f"sqlite:///{root / 'driftline.db'}",
            "artifact_root": str(root / "artifacts"),
            "capture_environment": False,
        }
        options.update(overrides)
        return dl.configure(**options)

    yield configure
    reset_default_workspace()


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the user's configuration and the caller's folder out of every test."""
    for key in list(os.environ):
        if key.startswith("DRIFTLINE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.chdir(tmp_path)
    yield
    reset_default_workspace()


# -- helpers as fixtures ----------------------------------------------------------------


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """Poll ``predicate`` until it returns something truthy, failing after ``timeout`` s."""

    def wait(predicate: Callable[[], Any], timeout: float = 20.0, message: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {message or predicate}")
            time.sleep(0.01)

    return wait


@pytest.fixture
def new_york_time() -> Iterator[None]:
    """Run the test with ``TZ=America/New_York`` (restored afterwards)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TZ", "America/New_York")
        time.tzset()
        try:
            yield
        finally:
            mp.undo()
            time.tzset()


# -- CI: a skipped PostgreSQL test fails the run ----------------------------------------

_skipped_postgres: dict[str, str] = {}


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "postgres" in report.keywords and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped_postgres.setdefault(report.nodeid, str(reason))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _under_ci() and _skipped_postgres and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _skipped_postgres:
        return
    reason = next(iter(_skipped_postgres.values()))
    if _under_ci():
        terminalreporter.section("PostgreSQL tests skipped under CI=true", sep="=", red=True)
        terminalreporter.write_line(
            f"FAILED: {len(_skipped_postgres)} PostgreSQL test(s) were skipped, and CI=true "
            f"requires them to run. First reason: {reason}",
            red=True,
        )
    else:
        terminalreporter.write_line(
            f"note: {len(_skipped_postgres)} PostgreSQL test(s) skipped ({reason}); "
            "under CI=true this fails the run",
            yellow=True,
        )
