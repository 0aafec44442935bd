"""The registry every stage declares its tables in.

Stages define their SQLAlchemy Core tables on :data:`metadata` in their ``_tables``
module. The schema itself is created only by the migration chain (one chain for both
dialects); a test compares the migrated database with these declarations so the two
cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import MetaData

__all__ = ["VERSION_TABLE", "metadata"]

# Our own name, so a PostgreSQL database shared with another Alembic user is safe.
VERSION_TABLE = "driftline_schema_version"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)
