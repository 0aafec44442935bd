"""The metadata database: engine and transactions, the shared table registry, migrations."""

from driftline.core.metadata.engine import (
    CommitHook,
    Database,
    database_schemes,
    normalize_url,
    note,
)
from driftline.core.metadata.migrate import (
    BASE_REVISION,
    MigrationHistory,
    current_heads,
    current_revision,
    ensure_schema,
    upgrade,
)
from driftline.core.metadata.schema import metadata

__all__ = [
    "BASE_REVISION",
    "CommitHook",
    "Database",
    "MigrationHistory",
    "current_heads",
    "current_revision",
    "database_schemes",
    "ensure_schema",
    "metadata",
    "normalize_url",
    "note",
    "upgrade",
]
