"""The SQL backend of reference records (SQLite and PostgreSQL through one code path)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from driftline.core.metadata import Database
from driftline.monitoring import _tables as t
from driftline.monitoring.models import StoredReference

__all__ = ["SqlReferenceStore"]


class SqlReferenceStore:
    """:class:`~driftline.monitoring.store.ReferenceStore` on the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_reference(self, record: StoredReference) -> StoredReference:
        values = {
            "reference_id": record.id,
            "name": record.name,
            "digest": record.digest,
            "source": record.source,
            "source_key": record.source_key,
            "settings_key": record.settings_key,
            "rows": record.rows,
            "created_at": record.created_at,
        }
        self.db.write(lambda conn: conn.execute(t.monitoring_references.insert().values(values)))
        return record

    def find_reference(self, name: str) -> StoredReference | None:
        return self._newest(t.monitoring_references.c.name == name)

    def find_by_source(self, source_key: str, settings_key: str) -> StoredReference | None:
        c = t.monitoring_references.c
        return self._newest(sa.and_(c.source_key == source_key, c.settings_key == settings_key))

    def list_references(self) -> list[StoredReference]:
        c = t.monitoring_references.c
        query = sa.select(t.monitoring_references).order_by(c.created_at.desc(), c.reference_id)
        return [_record(r) for r in self.db.read(lambda conn: conn.execute(query).all())]

    def referenced_digests(self) -> set[str]:
        query = sa.select(t.monitoring_references.c.digest).distinct()
        return {r[0] for r in self.db.read(lambda conn: conn.execute(query).all())}

    def _newest(self, where: Any) -> StoredReference | None:
        c = t.monitoring_references.c
        query = (
            sa.select(t.monitoring_references)
            .where(where)
            .order_by(c.created_at.desc(), c.reference_id.desc())
            .limit(1)
        )
        rows = self.db.read(lambda conn: conn.execute(query).all())
        return _record(rows[0]) if rows else None


def _record(row: Any) -> StoredReference:
    return StoredReference(
        id=row.reference_id,
        name=row.name,
        digest=row.digest,
        source=row.source,
        source_key=row.source_key,
        settings_key=row.settings_key,
        rows=int(row.rows),
        created_at=int(row.created_at),
    )
