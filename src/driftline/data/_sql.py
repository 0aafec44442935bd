"""The SQL backend of data versions (SQLite and PostgreSQL through one code path)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from driftline.core.audit import append_audit
from driftline.core.clock import from_ms, now_ms
from driftline.core.ids import new_id
from driftline.core.metadata import Database
from driftline.data import _tables as t
from driftline.data.models import Dataset, DatasetVersion
from driftline.data.store import NewVersion
from driftline.errors import BackendError, ConflictError, InvalidArgumentError

__all__ = ["SqlDataStore"]

_NUMBER_RETRIES = 20


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlDataStore:
    """:class:`~driftline.data.store.DataStore` on the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- datasets -------------------------------------------------------------------

    def ensure_dataset(self, name: str) -> Dataset:
        found = self._find_dataset(name)
        if found is not None:
            return found
        with contextlib.suppress(SqlIntegrityError):  # another process created it first
            self.db.write(
                lambda conn: conn.execute(
                    t.datasets.insert().values(
                        dataset_id=new_id(), name=name, description=None, created_at=now_ms()
                    )
                )
            )
        found = self._find_dataset(name)
        assert found is not None
        return found

    def _find_dataset(self, name: str) -> Dataset | None:
        rows = self.db.read(
            lambda conn: conn.execute(self._dataset_query().where(t.datasets.c.name == name)).all()
        )
        return self._dataset(rows[0]) if rows else None

    def list_datasets(self) -> list[Dataset]:
        query = self._dataset_query().order_by(t.datasets.c.name)
        return [self._dataset(row) for row in self.db.read(lambda conn: conn.execute(query).all())]

    @staticmethod
    def _dataset_query() -> sa.Select[Any]:
        v = t.dataset_versions.c
        latest = (
            sa.select(sa.func.max(v.number))
            .where(v.dataset_id == t.datasets.c.dataset_id)
            .scalar_subquery()
        )
        return sa.select(t.datasets, latest.label("latest"))

    @staticmethod
    def _dataset(row: Any) -> Dataset:
        return Dataset(
            id=row.dataset_id,
            name=row.name,
            description=row.description,
            created_at=from_ms(row.created_at),
            latest=row.latest,
        )

    # -- versions -------------------------------------------------------------------

    def add_version(self, dataset_id: str, new: NewVersion) -> tuple[DatasetVersion, bool]:
        v = t.dataset_versions.c

        def insert(conn: Connection) -> tuple[int, bool]:
            latest = conn.execute(
                sa.select(v.number, v.version_id)
                .where(v.dataset_id == dataset_id)
                .order_by(v.number.desc())
                .limit(1)
            ).first()
            if latest is not None and latest.version_id == new.version_id:
                return int(latest.number), False
            number = 1 if latest is None else latest.number + 1
            conn.execute(
                t.dataset_versions.insert().values(
                    dataset_id=dataset_id,
                    number=number,
                    version_id=new.version_id,
                    parent_number=None if latest is None else latest.number,
                    author=new.author,
                    message=new.message,
                    created_at=new.created_at,
                    run_id=new.run_id,
                    file_count=new.file_count,
                    size=new.size,
                    tabular=new.tabular,
                    profile_digest=new.profile_digest,
                )
            )
            return number, True

        # SQLite serializes writers (BEGIN IMMEDIATE); on PostgreSQL two writers can read
        # the same latest number, and the loser's INSERT hits the primary key: retry it.
        for _ in range(_NUMBER_RETRIES):
            try:
                number, created = self.db.write(insert)
                break
            except SqlIntegrityError:
                continue
        else:
            raise BackendError("Could not assign a version number under heavy contention")
        version = self._versions(lambda q: q.where(v.dataset_id == dataset_id, v.number == number))[
            0
        ]
        return version, created

    def put_version(self, dataset_id: str, number: int, new: NewVersion) -> DatasetVersion:
        v = t.dataset_versions.c

        def insert(conn: Connection) -> None:
            held = conn.execute(
                sa.select(v.version_id).where(v.dataset_id == dataset_id, v.number == number)
            ).scalar()
            if held == new.version_id:
                return
            if held is not None:
                raise ConflictError(
                    f"Version {number} here holds {held}, the remote's holds {new.version_id}: "
                    "the histories diverged; commit under another dataset name to keep both"
                )
            previous = conn.execute(
                sa.select(sa.func.max(v.number)).where(
                    v.dataset_id == dataset_id, v.number < number
                )
            ).scalar()
            conn.execute(
                t.dataset_versions.insert().values(
                    dataset_id=dataset_id,
                    number=number,
                    version_id=new.version_id,
                    parent_number=previous,
                    author=new.author,
                    message=new.message,
                    created_at=new.created_at,
                    run_id=new.run_id,
                    file_count=new.file_count,
                    size=new.size,
                    tabular=new.tabular,
                    profile_digest=new.profile_digest,
                )
            )

        try:
            self.db.write(insert)
        except SqlIntegrityError:
            self.db.write(insert)  # lost a race: re-check (raises on a real conflict)
        return self._versions(lambda q: q.where(v.dataset_id == dataset_id, v.number == number))[0]

    def find_version(
        self,
        dataset: str,
        *,
        number: int | None = None,
        tag: str | None = None,
        id_prefix: str | None = None,
        as_of: int | None = None,
    ) -> DatasetVersion | None:
        v = t.dataset_versions.c

        def narrow(query: sa.Select[Any]) -> sa.Select[Any]:
            query = query.where(t.datasets.c.name == dataset)
            if number is not None:
                query = query.where(v.number == number)
            if tag is not None:
                tagged = sa.select(t.dataset_tags.c.number).where(
                    t.dataset_tags.c.dataset_id == v.dataset_id, t.dataset_tags.c.tag == tag
                )
                query = query.where(v.number.in_(tagged.scalar_subquery()))
            if id_prefix is not None:
                query = query.where(v.version_id.like(f"%:{_escape_like(id_prefix)}%", escape="\\"))
            if as_of is not None:
                query = query.where(v.created_at <= as_of)
            return query.order_by(v.number.desc())

        found = self._versions(narrow)
        if id_prefix is not None and len({f.id for f in found}) > 1:
            raise InvalidArgumentError(
                f"Version id prefix {id_prefix!r} of {dataset} is ambiguous; give more digits"
            )
        return found[0] if found else None

    def list_versions(self, dataset: str) -> list[DatasetVersion]:
        v = t.dataset_versions.c
        return self._versions(
            lambda q: q.where(t.datasets.c.name == dataset).order_by(v.number.desc())
        )

    def all_versions(self) -> list[DatasetVersion]:
        v = t.dataset_versions.c
        return self._versions(lambda q: q.order_by(t.datasets.c.name, v.number))

    def versions_by_run(self, run_id: str) -> list[DatasetVersion]:
        v = t.dataset_versions.c
        return self._versions(lambda q: q.where(v.run_id == run_id).order_by(v.created_at))

    def run_inputs(self, run_id: str) -> list[DatasetVersion]:
        v, r = t.dataset_versions.c, t.run_inputs.c
        read = sa.select(r.dataset_id, r.number).where(r.run_id == run_id)
        return self._versions(
            lambda q: q.where(sa.tuple_(v.dataset_id, v.number).in_(read)).order_by(v.created_at)
        )

    def readers(self, dataset: str, number: int) -> list[str]:
        r = t.run_inputs.c
        query = (
            sa.select(r.run_id)
            .join(t.datasets, t.datasets.c.dataset_id == r.dataset_id)
            .where(t.datasets.c.name == dataset, r.number == number)
            .order_by(r.created_at)
        )
        return [row[0] for row in self.db.read(lambda conn: conn.execute(query).all())]

    def _versions(self, narrow: Any) -> list[DatasetVersion]:
        v = t.dataset_versions.c
        query = narrow(
            sa.select(t.dataset_versions, t.datasets.c.name).join(
                t.datasets, t.datasets.c.dataset_id == v.dataset_id
            )
        )

        def read(conn: Connection) -> list[DatasetVersion]:
            rows = conn.execute(query).all()
            return self._hydrate(conn, rows)

        return self.db.read(read)

    @staticmethod
    def _hydrate(conn: Connection, rows: Sequence[Any]) -> list[DatasetVersion]:
        tags: dict[tuple[str, int], list[str]] = {}
        dataset_ids = sorted({row.dataset_id for row in rows})
        if dataset_ids:
            for dataset_id, tag, number in conn.execute(
                sa.select(
                    t.dataset_tags.c.dataset_id, t.dataset_tags.c.tag, t.dataset_tags.c.number
                )
                .where(t.dataset_tags.c.dataset_id.in_(dataset_ids))
                .order_by(t.dataset_tags.c.tag)
            ):
                tags.setdefault((dataset_id, number), []).append(tag)
        return [
            DatasetVersion(
                dataset=row.name,
                number=row.number,
                id=row.version_id,
                parent=row.parent_number,
                author=row.author,
                message=row.message,
                created_at=from_ms(row.created_at),
                run_id=row.run_id,
                file_count=row.file_count,
                size=row.size,
                tabular=bool(row.tabular),
                profile_digest=row.profile_digest,
                tags=tuple(tags.get((row.dataset_id, row.number), ())),
            )
            for row in rows
        ]

    # -- tags and lineage -----------------------------------------------------------

    def add_tag(
        self, dataset_id: str, tag: str, number: int, created_at: int, *, actor: str
    ) -> None:
        dt = t.dataset_tags.c

        def insert(conn: Connection) -> None:
            held = conn.execute(
                sa.select(dt.number).where(dt.dataset_id == dataset_id, dt.tag == tag)
            ).scalar()
            if held == number:
                return
            if held is not None:
                raise ConflictError(
                    f"Tag {tag!r} already marks version {held}; tags are immutable, "
                    "pick a new tag name"
                )
            conn.execute(
                t.dataset_tags.insert().values(
                    dataset_id=dataset_id, tag=tag, number=number, created_at=created_at
                )
            )
            name = conn.execute(
                sa.select(t.datasets.c.name).where(t.datasets.c.dataset_id == dataset_id)
            ).scalar()
            append_audit(
                conn,
                actor=actor,
                action="tag",
                entity_type="dataset",
                entity=f"{name}@{tag}",
                after={"version": number},
            )

        try:
            self.db.write(insert)
        except SqlIntegrityError:
            self.db.write(insert)  # lost a race: re-check, which raises or is a no-op

    def add_run_input(self, run_id: str, dataset_id: str, number: int, created_at: int) -> None:
        r = t.run_inputs.c

        def insert(conn: Connection) -> None:
            exists = conn.execute(
                sa.select(sa.literal(1)).where(
                    r.run_id == run_id, r.dataset_id == dataset_id, r.number == number
                )
            ).first()
            if exists is None:
                conn.execute(
                    t.run_inputs.insert().values(
                        run_id=run_id,
                        dataset_id=dataset_id,
                        number=number,
                        created_at=created_at,
                    )
                )

        # Recorded concurrently, or the run vanished (the service checked it exists).
        with contextlib.suppress(SqlIntegrityError):
            self.db.write(insert)
