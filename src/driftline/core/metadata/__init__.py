"""The metadata database: engine and transactions, the shared table registry, migrations."""

from driftline.core.metadata.engine import (
    CommitHook,
    Database,
    database_schemes,
    normalize_url,
    note,
)
from driftline.core.metadata.migrate import HEAD_REVISION, current_revision, ensure_schema, upgrade
from driftline.core.metadata.schema import metadata

__all__ = [
    "HEAD_REVISION",
    "CommitHook",
    "Database",
    "current_revision",
    "database_schemes",
    "ensure_schema",
    "metadata",
    "normalize_url",
    "note",
    "upgrade",
]
