"""The metadata database: URL schemes, SQLite settings, transient failures become BackendError."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from driftline.core.metadata import Database, normalize_url
from driftline.core.metadata import engine as engine_module
from driftline.errors import BackendError, InvalidArgumentError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite://", "sqlite://"),
        ("sqlite:///relative.db", "sqlite:///relative.db"),
        ("sqlite:////abs/path.db", "sqlite:////abs/path.db"),
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_known_schemes_map_to_their_driver(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "driftline.db", "http://host", ""])
def test_an_unknown_scheme_lists_the_known_ones(url: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        normalize_url(url)
    for known in ("sqlite://", "postgresql://"):
        assert known in str(info.value)


def test_display_url_hides_the_password() -> None:
    db = Database("postgresql://alice:s3cret@127.0.0.1:1/ml")
    try:
        assert "s3cret" not in db.display_url
        assert "alice" in db.display_url
    finally:
        db.dispose()


def test_a_sqlite_file_gets_its_folder_and_the_expected_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'deep' / 'er' / 'meta.db'}")
    try:
        pragmas = db.read(
            lambda conn: {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys")
            }
        )
        assert (tmp_path / "deep" / "er").is_dir()
        assert pragmas == {"journal_mode": "wal", "foreign_keys": 1}
        # LIKE is case-sensitive, as on PostgreSQL.
        assert db.read(lambda conn: conn.execute(text("SELECT 'Abc' LIKE 'abc'")).scalar()) == 0
    finally:
        db.dispose()


def test_an_in_memory_database_is_one_database_for_every_thread() -> None:
    db = Database("sqlite://")
    try:
        db.write(lambda conn: conn.exec_driver_sql("CREATE TABLE t (x INTEGER)"))

        def insert(i: int) -> None:
            db.write(lambda conn: conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": i}))

        threads = [threading.Thread(target=insert, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert db.read(lambda conn: conn.exec_driver_sql("SELECT count(*) FROM t").scalar()) == 8
    finally:
        db.dispose()


def test_a_write_rolls_back_entirely_when_it_fails(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        db.write(lambda conn: conn.exec_driver_sql("CREATE TABLE t (x INTEGER PRIMARY KEY)"))

        def half(conn: object) -> None:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")  # type: ignore[attr-defined]
            raise RuntimeError("fails halfway")

        with pytest.raises(RuntimeError):
            db.write(half)
        assert db.read(lambda conn: conn.exec_driver_sql("SELECT count(*) FROM t").scalar()) == 0
    finally:
        db.dispose()


def test_a_locked_sqlite_file_is_retried_then_reported_as_backend_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "_SQLITE_BUSY_MS", 50)  # keep the test fast
    path = tmp_path / "meta.db"
    db = Database(f"sqlite:///{path}", retry_delays=(0.01, 0.01))
    try:
        db.write(lambda conn: conn.exec_driver_sql("CREATE TABLE t (x INTEGER)"))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(BackendError, match="unavailable after 3 attempts") as info:
                db.write(lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES (1)"))
            assert str(path) in str(info.value)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        db.write(lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES (2)"))
        assert db.read(lambda conn: conn.exec_driver_sql("SELECT x FROM t").scalar()) == 2
    finally:
        db.dispose()


def test_an_unreachable_postgres_server_is_a_backend_error() -> None:
    # Port 1 on the loopback: connection refused at once, no server needed.
    db = Database("postgresql://nobody:pw@127.0.0.1:1/nothing", retry_delays=(0.01,))
    try:
        with pytest.raises(BackendError, match="unavailable") as info:
            db.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())
        assert "pw@" not in str(info.value)
    finally:
        db.dispose()


@pytest.mark.postgres
def test_an_exhausted_connection_pool_is_a_busy_backend_error(postgres: Any) -> None:
    """Under overload a server thread gets a clear, retryable 503, not a crash."""
    from sqlalchemy import create_engine

    db = Database(postgres.url(postgres.session_database))
    db.engine.dispose()
    db.engine = create_engine(db.url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        def wait(_conn: object) -> None:
            holding.set()
            release.wait(10)

        db.read(wait)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(BackendError, match=r"is busy: no connection was free within 0\.2 s"):
            db.read(lambda conn: conn.execute(text("SELECT 1")).scalar())
    finally:
        release.set()
        holder.join()
    assert db.read(lambda conn: conn.execute(text("SELECT 1")).scalar()) == 1
    db.dispose()
