"""Schema migrations: one Alembic chain for SQLite and PostgreSQL.

- An empty database is brought to the newest schema on first open, so the embedded
  workspace needs no setup step.
- A database at an older revision is refused with :class:`SchemaVersionError` until the
  user runs ``driftline db upgrade`` (upgrading silently could break other clients
  still running an older driftline against the same database).
- A database at a revision this driftline does not know was written by a newer release.

The head revision is a constant so that opening a database reads one row instead of
loading the migration scripts; a test keeps it equal to the chain's real head.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from driftline.core.metadata.schema import VERSION_TABLE
from driftline.errors import SchemaVersionError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection

    from driftline.core.metadata.engine import Database

__all__ = ["HEAD_REVISION", "current_revision", "ensure_schema", "upgrade"]

HEAD_REVISION = "0005"
# Any fixed 64-bit number: the advisory lock migrations take on PostgreSQL.
_LOCK_KEY = 0x6472696674


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("driftline.core.metadata") / "migrations")
    )
    config.attributes["connection"] = connection
    return config


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or ``None`` for a database driftline never touched."""
    return db.read(_read_revision)


def _read_revision(conn: Connection) -> str | None:
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    row = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    return None if row is None else str(row[0])


def upgrade(
    db: Database, revision: str = "head", *, only_if_empty: bool = False
) -> tuple[str | None, str]:
    """Migrate the database to ``revision``; return ``(before, after)`` revisions.

    The migration runs under a lock (PostgreSQL: a transaction-scoped advisory lock;
    SQLite: the write lock of ``BEGIN IMMEDIATE``) and re-reads the revision inside it, so
    two processes opening a fresh database at once migrate it exactly once.
    ``only_if_empty`` skips the migration if another process created the schema first.
    """
    from alembic import command
    from sqlalchemy import text

    before = current_revision(db)

    def migrate(conn: Connection) -> None:
        if db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        if only_if_empty and _read_revision(conn) is not None:
            return
        command.upgrade(_alembic_config(conn), revision)

    db.write(migrate)
    return before, current_revision(db) or ""


def ensure_schema(db: Database) -> None:
    """Create the schema in an empty database; refuse an outdated or unknown one."""
    revision = current_revision(db)
    if revision == HEAD_REVISION:
        return
    if revision is None:
        upgrade(db, only_if_empty=True)
        revision = current_revision(db)
        if revision == HEAD_REVISION:
            return
    if revision is None or revision < HEAD_REVISION:
        raise SchemaVersionError(
            f"The metadata database {db.display_url} has schema revision {revision}, "
            f"this driftline needs {HEAD_REVISION}. Back it up, then run: driftline db upgrade"
        )
    raise SchemaVersionError(
        f"The metadata database {db.display_url} has schema revision {revision}, which is "
        f"newer than this driftline knows ({HEAD_REVISION}). Upgrade driftline."
    )
