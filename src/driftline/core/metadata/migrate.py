"""Schema migrations: one Alembic history for SQLite and PostgreSQL, that stages add to.

The history is the kernel's chain (``migrations/versions``: revisions 0001-0004, the
schema every stage had when stages got migrations of their own) plus one branch per
stage that declares a migrations package (``Stage.migrations``). A stage's first
revision has ``down_revision = "0004"`` (or the head of the branch it builds on) and
``branch_labels = ("<stage name>",)``; ``depends_on`` names the branches whose tables
it refers to. Branches never collide: each stage only appends to its own.

- An empty database is brought to the newest schema on first open, so the embedded
  workspace needs no setup step.
- A database behind the history is refused with :class:`SchemaVersionError` until the
  user runs ``driftline db upgrade`` (upgrading silently could break other clients
  still running an older driftline against the same database).
- A database at a revision the history does not know was written by a newer release.

The version table holds one row per branch head. The heads this driftline needs are
computed from the revision files' ``revision``/``down_revision`` lines, read as text
(a few small files) rather than by loading Alembic and importing every script, so
opening a database stays a read of the version table.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.core.metadata.schema import VERSION_TABLE
from driftline.errors import SchemaVersionError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection

    from driftline.core.metadata.engine import Database

__all__ = [
    "BASE_REVISION",
    "MigrationHistory",
    "current_heads",
    "current_revision",
    "ensure_schema",
    "upgrade",
]

#: The kernel chain's last revision: where stage branches start.
BASE_REVISION = "0004"
# Any fixed 64-bit number: the advisory lock migrations take on PostgreSQL.
_LOCK_KEY = 0x6472696674
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def _kernel_folder() -> Path:
    return Path(str(resources.files("driftline.core.metadata") / "migrations" / "versions"))


@dataclass(frozen=True, slots=True)
class MigrationHistory:
    """The revision folders of one Alembic history and the heads they end in.

    Build it with :meth:`of` (the composition root passes the stages' migration
    packages; ``driftline.stages.migration_history`` does that for a stage list).
    """

    folders: tuple[Path, ...]
    revisions: frozenset[str]
    heads: frozenset[str]

    @classmethod
    def of(cls, packages: Iterable[str] = ()) -> MigrationHistory:
        """The kernel chain plus the revisions in each of ``packages`` (import names)."""
        folders = [_kernel_folder()]
        folders += [Path(str(resources.files(package))) for package in packages]
        down: dict[str, tuple[str, ...]] = {}
        for folder in folders:
            for path in sorted(folder.glob("*.py")):
                found = _read_revision_file(path)
                if found is not None:
                    down[found[0]] = found[1]
        named_below = {parent for parents in down.values() for parent in parents}
        return cls(
            folders=tuple(folders),
            revisions=frozenset(down),
            heads=frozenset(down.keys() - named_below),
        )

    @property
    def label(self) -> str:
        """The heads as shown to users: ``0004``, or ``0004-a,toy_0001`` for several."""
        return ",".join(sorted(self.heads))


def _read_revision_file(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """``(revision, down revisions)`` of a revision script, read as text."""
    values = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
    if "revision" not in values:
        return None
    revision = ast.literal_eval(values["revision"])
    parents = ast.literal_eval(values.get("down_revision", "None"))
    if parents is None:
        parents = ()
    elif isinstance(parents, str):
        parents = (parents,)
    return str(revision), tuple(str(p) for p in parents)


def _older_number(revision: str) -> bool:
    return revision.isdigit() and len(revision) == len(BASE_REVISION) and revision < BASE_REVISION


def _alembic_config(connection: Connection, history: MigrationHistory) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("driftline.core.metadata") / "migrations")
    )
    # Alembic splits this option on the separator it is told to use; paths have no NUL.
    config.set_main_option("path_separator", "newline")
    config.set_main_option("version_locations", "\n".join(str(f) for f in history.folders))
    config.attributes["connection"] = connection
    return config


def current_heads(db: Database) -> frozenset[str]:
    """The revisions the database is at (one per branch head); empty if driftline never
    touched it."""
    return db.read(_read_heads)


def current_revision(db: Database) -> str | None:
    """The database's heads as one string (``0004``), or ``None`` for an untouched one."""
    heads = current_heads(db)
    return ",".join(sorted(heads)) if heads else None


def _read_heads(conn: Connection) -> frozenset[str]:
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table(VERSION_TABLE):
        return frozenset()
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return frozenset(str(row[0]) for row in rows)


def upgrade(
    db: Database,
    history: MigrationHistory,
    revision: str = "heads",
    *,
    only_if_empty: bool = False,
) -> tuple[str | None, str]:
    """Migrate the database to ``revision`` (every head by default); return the
    ``(before, after)`` revisions as :func:`current_revision` shows them.

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
        if only_if_empty and _read_heads(conn):
            return
        command.upgrade(_alembic_config(conn, history), revision)

    db.write(migrate)
    return before, current_revision(db) or ""


def ensure_schema(db: Database, history: MigrationHistory) -> None:
    """Create the schema in an empty database; refuse an outdated or unknown one."""
    heads = current_heads(db)
    if heads == history.heads:
        return
    if not heads:
        upgrade(db, history, only_if_empty=True)
        heads = current_heads(db)
        if heads == history.heads:
            return
    shown = ",".join(sorted(heads)) or "none"
    # The kernel chain is numbered, so an unknown number below its last is older, not newer.
    unknown = {h for h in heads - history.revisions if not _older_number(h)}
    if unknown:
        raise SchemaVersionError(
            f"The metadata database {db.display_url} has schema revision {shown}, which is "
            f"newer than this driftline knows ({history.label}). Upgrade driftline."
        )
    raise SchemaVersionError(
        f"The metadata database {db.display_url} has schema revision {shown}, "
        f"this driftline needs {history.label}. Back it up, then run: driftline db upgrade"
    )
