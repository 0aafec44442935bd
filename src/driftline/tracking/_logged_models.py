"""MLflow logged models on the metadata database (see ``store.LoggedModelStore``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from driftline.core.jsonvalues import check_json_value
from driftline.core.metadata import Database
from driftline.tracking import _tables as t

__all__ = ["SqlLoggedModelStore"]

_COLUMNS = {
    "experiment_id": "experiment_id",
    "run_id": "source_run_id",
    "name": "name",
    "status": "status",
    "created_at": "creation_timestamp_ms",
    "updated_at": "last_updated_timestamp_ms",
}


def _row(record: dict[str, Any]) -> dict[str, Any]:
    # A record carries what clients sent (tags, params, metric points): bounded like
    # every stored JSON value, so a search can always read it back.
    clean = check_json_value(record, f"The logged model {record.get('model_id')!r}")
    return {
        "record": json.dumps(clean, sort_keys=True, separators=(",", ":")),
        **{column: record[key] for column, key in _COLUMNS.items()},
    }


def _record(text: str) -> dict[str, Any]:
    data = json.loads(text)
    return data if isinstance(data, dict) else {}


class SqlLoggedModelStore:
    """:class:`~driftline.tracking.store.LoggedModelStore` on the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, record: dict[str, Any]) -> bool:
        row = {"model_id": record["model_id"], **_row(record)}

        def insert(conn: Connection) -> bool:
            table = t.logged_models
            exists = conn.execute(
                sa.select(table.c.model_id).where(table.c.model_id == row["model_id"])
            ).first()
            if exists is not None:
                return False
            conn.execute(table.insert().values(**row))
            return True

        try:
            return self.db.write(insert)
        except IntegrityError:
            # Lost a race for the id (two requests adopting one old record), or the run
            # was purged meanwhile: either way, nothing of ours to add.
            return False

    def find(self, model_id: str) -> dict[str, Any] | None:
        table = t.logged_models
        text = self.db.read(
            lambda conn: conn.execute(
                sa.select(table.c.record).where(
                    table.c.model_id == model_id, table.c.deleted_at.is_(None)
                )
            ).scalar()
        )
        return None if text is None else _record(text)

    def update(
        self, model_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any] | None:
        table = t.logged_models

        def apply(conn: Connection) -> dict[str, Any] | None:
            # The row is locked until the transaction ends (SQLite: the write transaction
            # itself), so concurrent changes apply one after the other.
            text = conn.execute(
                sa.select(table.c.record)
                .where(table.c.model_id == model_id, table.c.deleted_at.is_(None))
                .with_for_update()
            ).scalar()
            if text is None:
                return None
            record = change(_record(text))
            conn.execute(table.update().where(table.c.model_id == model_id).values(**_row(record)))
            return record

        return self.db.write(apply)

    def delete(self, model_id: str, at: int) -> bool:
        table = t.logged_models

        def mark(conn: Connection) -> bool:
            result = conn.execute(
                table.update()
                .where(table.c.model_id == model_id, table.c.deleted_at.is_(None))
                .values(deleted_at=at)
            )
            return bool(result.rowcount)

        return self.db.write(mark)

    def search(self, experiment_ids: Sequence[str]) -> list[dict[str, Any]]:
        if not experiment_ids:
            return []
        table = t.logged_models
        query = (
            sa.select(table.c.record)
            .where(table.c.experiment_id.in_(list(experiment_ids)), table.c.deleted_at.is_(None))
            .order_by(table.c.created_at.desc(), table.c.model_id.desc())
        )
        return self.db.read(lambda conn: [_record(text) for text in conn.execute(query).scalars()])

    def known(self, model_ids: Collection[str]) -> set[str]:
        if not model_ids:
            return set()
        table = t.logged_models
        query = sa.select(table.c.model_id).where(table.c.model_id.in_(list(model_ids)))
        return self.db.read(lambda conn: set(conn.execute(query).scalars()))
