"""The metadata database: one SQLAlchemy engine, transactions with bounded retries.

SQLite and PostgreSQL go through one code path. The SQLite specifics live here and
nowhere else:

- WAL journal, so readers never block the writer and two processes can share a file;
  ``synchronous=NORMAL`` (durable across application crashes; the usual WAL setting).
- Write transactions start with ``BEGIN IMMEDIATE``: they take the write lock up front,
  so two writers queue on ``busy_timeout`` instead of deadlocking on a lock upgrade.
- ``sqlite://`` (in memory) is one shared connection guarded by a lock.

Transient failures (a locked SQLite file, a dropped PostgreSQL connection, a
serialization failure) are retried with backoff; when the budget is spent the caller
gets :class:`~driftline.errors.BackendError`.

Work that must follow a commit, never precede it (anchoring the audit log outside the
database), is done by commit hooks: code inside a transaction leaves a note with
:func:`note`, and once the transaction has committed each of the database's
``commit_hooks`` is called with the transaction's notes. A rolled-back transaction's
notes are dropped.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from driftline.errors import BackendError, InvalidArgumentError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

__all__ = ["CommitHook", "Database", "database_schemes", "enable_wal", "normalize_url", "note"]

log = logging.getLogger(__name__)
T = TypeVar("T")

CommitHook = Callable[[dict[str, Any]], None]
_NOTES = "driftline.transaction_notes"

_SQLITE_BUSY_MS = 2000
_RETRY_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)

# Metadata URL schemes and the SQLAlchemy driver each maps to.
_SCHEMES = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def database_schemes() -> list[str]:
    """The URL schemes of the metadata databases driftline opens (``sqlite``, ...)."""
    return sorted(_SCHEMES)


def normalize_url(url: str) -> str:
    """Map a user URL to the SQLAlchemy URL driftline uses, or raise for an unknown scheme."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _SCHEMES:
        known = ", ".join(f"{s}://" for s in database_schemes())
        raise InvalidArgumentError(
            f"Unsupported metadata database URL {url!r}; known schemes: {known}"
        )
    return f"{_SCHEMES[scheme]}://{rest}"


class Database:
    """An engine plus the transaction discipline every store uses.

    Example:
        >>> db = Database("sqlite:///example.db")           # doctest: +SKIP
        >>> db.write(lambda conn: conn.execute(stmt))       # doctest: +SKIP
    """

    def __init__(self, url: str, *, retry_delays: tuple[float, ...] = _RETRY_DELAYS) -> None:
        self.url = normalize_url(url)
        self.retry_delays = retry_delays
        self.engine: Engine = self._create_engine()
        self.dialect: str = self.engine.dialect.name
        self._memory_lock = threading.RLock() if self._is_memory else None
        self.commit_hooks: list[CommitHook] = []

    @property
    def _is_memory(self) -> bool:
        return self.url in ("sqlite://", "sqlite:///:memory:")

    def _create_engine(self) -> Engine:
        from sqlalchemy import create_engine, event
        from sqlalchemy.pool import StaticPool

        if not self.url.startswith("sqlite"):
            try:
                return create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=10)
            except ImportError as exc:
                raise BackendError(
                    f"Cannot use {self.url.split('://')[0]}: {exc}. "
                    "Install the extra: pip install 'driftline[postgres]'"
                ) from exc

        if self._is_memory:
            engine = create_engine(
                self.url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            path = Path(self.url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from pysqlite so BEGIN IMMEDIATE is ours to emit.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            # busy_timeout first: switching to WAL needs a lock another process opening
            # the same file may hold for a moment, and without a timeout that is an error.
            cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
            if not self._is_memory:
                enable_wal(dbapi_conn)
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # LIKE is case-sensitive on PostgreSQL; make SQLite agree (ILIKE is lower() LIKE).
            cursor.execute("PRAGMA case_sensitive_like=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("driftline_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @contextlib.contextmanager
    def _connection(self, write: bool) -> Iterator[Connection]:
        lock = self._memory_lock or contextlib.nullcontext()
        with lock, self.engine.connect() as conn:
            if write:
                conn.execution_options(driftline_write=True)
            notes: dict[str, Any] = {}
            conn.info[_NOTES] = notes  # per transaction: the pooled connection outlives it
            with conn.begin():
                yield conn
            del conn.info[_NOTES]
        if notes:
            self._after_commit(notes)

    def _after_commit(self, notes: dict[str, Any]) -> None:
        # The transaction is durable; a failing hook must not make the caller believe it
        # was not (the caller could retry a committed change). Hooks report loudly instead.
        for hook in self.commit_hooks:
            try:
                hook(notes)
            except Exception:
                log.exception("a commit hook of %s failed", self.display_url)

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in a write transaction, retrying transient failures."""
        return self._run(fn, write=True)

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in a read transaction, retrying transient failures."""
        return self._run(fn, write=False)

    def _run(self, fn: Callable[[Connection], T], *, write: bool) -> T:
        from sqlalchemy.exc import DBAPIError
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        attempts = len(self.retry_delays) + 1
        for attempt in range(attempts):
            try:
                with self._connection(write) as conn:
                    return fn(conn)
            except PoolTimeout as exc:
                # Every pooled connection stayed busy for the pool's whole timeout: the
                # database is overloaded, not broken. Waiting longer here would only
                # hold this caller (a server thread) hostage; say so, and let it retry.
                raise BackendError(
                    f"The metadata database {self.display_url} is busy: no connection "
                    f"was free within {self.engine.pool.timeout()} s; try again"  # type: ignore[attr-defined]
                ) from exc
            except DBAPIError as exc:
                if not _is_transient(exc):
                    raise
                if attempt == attempts - 1:
                    raise BackendError(
                        f"The metadata database {self.display_url} is unavailable after "
                        f"{attempts} attempts: {_short(exc)}"
                    ) from exc
                log.debug("transient database error, retrying: %s", _short(exc))
                time.sleep(self.retry_delays[attempt])
        raise AssertionError("unreachable")

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for messages."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def note(conn: Connection, key: str, value: Any) -> None:
    """Leave ``value`` for the database's commit hooks, to be handed them once the
    transaction on ``conn`` commits (a later note under the same key replaces it)."""
    conn.info[_NOTES][key] = value


def enable_wal(dbapi_conn: Any, *, timeout: float = 10.0) -> None:
    """Switch a SQLite connection to WAL, retrying while another process holds the lock.

    SQLite does not call the busy handler for this switch, so two processes opening a new
    file at the same instant can see "database is locked" even with ``busy_timeout`` set.
    """
    import sqlite3

    deadline = time.monotonic() + timeout
    while True:
        try:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _is_transient(exc: Exception) -> bool:
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        sqlite_busy = "locked" in text or "busy" in text
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        # 08xxx connection exceptions, 40001 serialization failure, 40P01 deadlock,
        # 57P01-03 server shutting down or restarting.
        pg_transient = sqlstate.startswith(("08", "40", "57P"))
        return sqlite_busy or pg_transient or "connection" in text
    return False


def _short(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]
