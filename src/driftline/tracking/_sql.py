"""The SQL backend of tracking: SQLite and PostgreSQL through one code path."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.exc import SQLAlchemyError

from driftline.core.clock import from_ms, now_ms
from driftline.core.ids import new_id
from driftline.core.metadata import Database
from driftline.core.values import check_ms
from driftline.errors import (
    AlreadyExistsError,
    ConflictError,
    DriftlineError,
    InvalidArgumentError,
    NotFoundError,
)
from driftline.tracking import _tables as t
from driftline.tracking._search_sql import RunSearchCompiler, too_complex
from driftline.tracking.models import (
    ArtifactEntry,
    Experiment,
    LifecycleStage,
    MetricPoint,
    Run,
    RunStatus,
)
from driftline.tracking.store import LogBatch, MetricRow, RunQuery, TrackingCapabilities

__all__ = ["SqlTrackingStore"]

log = logging.getLogger("driftline.tracking")

# Batch receipts (idempotency keys) are kept a day: far longer than any client retries.
_RECEIPT_TTL_MS = 24 * 3600 * 1000
_PRUNE_INTERVAL = 600.0  # seconds between prunes, per store

# Parameter sets per INSERT statement; keeps PostgreSQL statements and SQLite's
# bound-variable limit comfortable while amortizing round trips.
_CHUNK = 5_000


def _upsert(dialect: str, table: sa.Table) -> Any:
    """The dialect's INSERT construct that supports ON CONFLICT."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def _as_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _db_float(value: float) -> float | None:
    return None if value != value else value  # NaN is stored as NULL


def _from_db_float(value: float | None) -> float:
    return math.nan if value is None else value


def _wanted_params(batch: LogBatch) -> tuple[dict[tuple[str, str], str], list[str]]:
    """The first value of each param key in a batch, and a conflict for each other value."""
    # Params are write-once, within a batch too: the first value of a key stands.
    wanted: dict[tuple[str, str], str] = {}
    conflicts = []
    for run_id, key, value in batch.params:
        held = wanted.setdefault((run_id, key), value)
        if held != value:
            conflicts.append(
                f"param {key!r} of run {run_id} is {held!r}; cannot change it to {value!r}"
            )
    return wanted, conflicts


def _copy_metrics(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Bulk-load metric points with PostgreSQL's binary COPY, in the open transaction.

    executemany costs ~30 µs of client CPU per row (holding the GIL the training loop
    needs); COPY costs under 1 µs.
    """
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(
        "COPY metrics (run_id, key, value, step, timestamp) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["varchar", "varchar", "float8", "int8", "int8"])
        for row in rows:
            copy.write_row(row)


def _insert_run(
    conn: Connection,
    run_id: str,
    experiment_id: str,
    name: str,
    user: str,
    start_time: int,
    parent_id: str | None,
    tags: dict[str, str],
) -> None:
    """Insert a RUNNING run and its tags (the one way a run row is born)."""
    conn.execute(
        t.runs.insert().values(
            run_id=run_id,
            experiment_id=experiment_id,
            name=name,
            status=RunStatus.RUNNING.value,
            lifecycle_stage=LifecycleStage.ACTIVE.value,
            user_id=user,
            start_time=start_time,
            heartbeat_at=start_time,
            parent_run_id=parent_id,
        )
    )
    if tags:
        conn.execute(
            t.tags.insert(),
            [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()],
        )


def _move_status(
    conn: Connection, run_id: str, expected: RunStatus, status: RunStatus, end_time: int | None
) -> None:
    """Move a run from ``expected`` to ``status`` (a compare-and-set): ``NotFoundError``
    for an unknown run, ``ConflictError`` naming its status when it is not ``expected``."""
    result = conn.execute(
        t.runs.update()
        .where(t.runs.c.run_id == run_id, t.runs.c.status == expected.value)
        .values(status=status.value, end_time=end_time)
    )
    if result.rowcount == 0:
        current = conn.execute(sa.select(t.runs.c.status).where(t.runs.c.run_id == run_id)).scalar()
        if current is None:
            raise NotFoundError(f"No run with id {run_id!r}")
        raise ConflictError(
            f"Run {run_id} is {current}, not {expected.value}; it cannot become {status.value}"
        )


class SqlTrackingStore:
    """:class:`~driftline.tracking.store.TrackingStore` and run-artifact index on SQL."""

    capabilities = TrackingCapabilities(latest_points=True, child_runs=True)

    def __init__(self, db: Database) -> None:
        self.db = db
        self._next_prune = 0.0
        self._artifact_upsert: Any = None
        paramstyle = db.engine.dialect.paramstyle
        mark = "?" if paramstyle == "qmark" else "%s"
        self._insert_metrics_sql = (
            "INSERT INTO metrics (run_id, key, value, step, timestamp) "
            f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})"
        )

    # -- experiments --------------------------------------------------------------

    def create_experiment(
        self, *, name: str, description: str | None, tags: dict[str, str]
    ) -> Experiment:
        experiment_id = new_id()
        now = now_ms()

        def insert(conn: Connection) -> None:
            conn.execute(
                t.experiments.insert().values(
                    experiment_id=experiment_id,
                    name=name,
                    description=description,
                    lifecycle_stage=LifecycleStage.ACTIVE.value,
                    created_at=now,
                    updated_at=now,
                )
            )
            if tags:
                conn.execute(
                    t.experiment_tags.insert(),
                    [
                        {"experiment_id": experiment_id, "key": k, "value": v}
                        for k, v in tags.items()
                    ],
                )

        try:
            self.db.write(insert)
        except SqlIntegrityError:
            existing = self.find_experiment(name=name)
            hint = (
                " (it is deleted: restore it with `driftline experiments restore`)"
                if existing and existing.lifecycle_stage is LifecycleStage.DELETED
                else ""
            )
            raise AlreadyExistsError(f"Experiment {name!r} exists already{hint}") from None
        found = self.find_experiment(id=experiment_id)
        assert found is not None
        return found

    def find_experiment(
        self, *, id: str | None = None, name: str | None = None
    ) -> Experiment | None:
        column, value = (t.experiments.c.experiment_id, id) if id else (t.experiments.c.name, name)

        def read(conn: Connection) -> Experiment | None:
            row = conn.execute(sa.select(t.experiments).where(column == value)).first()
            if row is None:
                return None
            return self._experiments(conn, [row])[0]

        return self.db.read(read)

    def list_experiments(
        self, *, include_deleted: bool, max_results: int, offset: int
    ) -> list[Experiment]:
        query = sa.select(t.experiments).order_by(
            t.experiments.c.created_at.desc(), t.experiments.c.experiment_id.desc()
        )
        if not include_deleted:
            query = query.where(t.experiments.c.lifecycle_stage == LifecycleStage.ACTIVE.value)
        query = query.limit(max_results).offset(offset)
        return self.db.read(lambda conn: self._experiments(conn, conn.execute(query).all()))

    def set_experiment_lifecycle(self, experiment_id: str, stage: LifecycleStage) -> Experiment:
        def update(conn: Connection) -> None:
            result = conn.execute(
                t.experiments.update()
                .where(t.experiments.c.experiment_id == experiment_id)
                .values(lifecycle_stage=stage.value, updated_at=now_ms())
            )
            if result.rowcount == 0:
                raise NotFoundError(f"No experiment with id {experiment_id!r}")

        self.db.write(update)
        found = self.find_experiment(id=experiment_id)
        assert found is not None
        return found

    def _experiments(self, conn: Connection, rows: Sequence[Any]) -> list[Experiment]:
        ids = [row.experiment_id for row in rows]
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        if ids:
            for tag in conn.execute(
                sa.select(t.experiment_tags).where(t.experiment_tags.c.experiment_id.in_(ids))
            ):
                tags[tag.experiment_id][tag.key] = tag.value
        return [
            Experiment(
                id=row.experiment_id,
                name=row.name,
                description=row.description,
                lifecycle_stage=LifecycleStage(row.lifecycle_stage),
                created_at=from_ms(row.created_at),
                updated_at=from_ms(row.updated_at),
                tags=tags[row.experiment_id],
            )
            for row in rows
        ]

    # -- runs ---------------------------------------------------------------------

    def create_run(
        self,
        *,
        experiment_id: str,
        name: str,
        user: str,
        start_time: int,
        parent_id: str | None,
        tags: dict[str, str],
    ) -> Run:
        run_id = new_id()
        # Every writer (the service, the REST and MLflow routes) ends here: a time no
        # reader could turn back into a datetime is refused before anything is written.
        start_time = check_ms(start_time, "start_time")

        def insert(conn: Connection) -> Run:
            _insert_run(conn, run_id, experiment_id, name, user, start_time, parent_id, tags)
            # Read back in the same transaction: if the run cannot be returned, it is
            # not stored either.
            return self._run(conn, run_id)

        return self.db.write(insert)

    def get_run(self, run_id: str) -> Run:
        """Like :meth:`find_run`, raising ``NotFoundError``."""
        run = self.find_run(run_id)
        if run is None:
            raise NotFoundError(f"No run with id {run_id!r}")
        return run

    def find_run(self, run_id: str) -> Run | None:
        def read(conn: Connection) -> Run | None:
            row = conn.execute(sa.select(t.runs).where(t.runs.c.run_id == run_id)).first()
            return None if row is None else self._runs(conn, [row])[0]

        return self.db.read(read)

    def _run(self, conn: Connection, run_id: str) -> Run:
        row = conn.execute(sa.select(t.runs).where(t.runs.c.run_id == run_id)).first()
        if row is None:
            raise NotFoundError(f"No run with id {run_id!r}")
        return self._runs(conn, [row])[0]

    def update_run_status(
        self, run_id: str, *, status: RunStatus, end_time: int | None, expected: RunStatus
    ) -> Run:
        if end_time is not None:
            end_time = check_ms(end_time, "end_time")

        def update(conn: Connection) -> Run:
            _move_status(conn, run_id, expected, status, end_time)
            return self._run(conn, run_id)

        return self.db.write(update)

    # -- child runs (ChildRuns): one transaction each, no read-back ------------------

    def start_child_run(
        self,
        *,
        experiment_id: str,
        name: str,
        user: str,
        start_time: int,
        parent_id: str,
        tags: dict[str, str],
        params: dict[str, str],
    ) -> Run:
        run_id = new_id()
        start_time = check_ms(start_time, "start_time")

        def insert(conn: Connection) -> None:
            _insert_run(conn, run_id, experiment_id, name, user, start_time, parent_id, tags)
            if params:  # a new run: nothing to conflict with
                conn.execute(
                    t.params.insert(),
                    [
                        {"run_id": run_id, "key": k, "value": v, "value_num": _as_number(v)}
                        for k, v in params.items()
                    ],
                )

        self.db.write(insert)
        started = from_ms(start_time)
        return Run(
            id=run_id,
            experiment_id=experiment_id,
            name=name,
            status=RunStatus.RUNNING,
            lifecycle_stage=LifecycleStage.ACTIVE,
            user=user,
            start_time=started,
            end_time=None,
            heartbeat_at=started,
            parent_id=parent_id,
            params=dict(sorted(params.items())),
            tags=dict(sorted(tags.items())),
        )

    def finish_child_run(
        self, run_id: str, *, status: RunStatus, end_time: int, artifacts: Sequence[ArtifactEntry]
    ) -> None:
        end_time = check_ms(end_time, "end_time")

        def update(conn: Connection) -> None:
            if artifacts:
                self._upsert_artifacts(conn, run_id, artifacts)
            _move_status(conn, run_id, RunStatus.RUNNING, status, end_time)

        self.db.write(update)

    def set_run_lifecycle(self, run_id: str, stage: LifecycleStage) -> Run:
        def update(conn: Connection) -> None:
            result = conn.execute(
                t.runs.update().where(t.runs.c.run_id == run_id).values(lifecycle_stage=stage.value)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"No run with id {run_id!r}")

        self.db.write(update)
        return self.get_run(run_id)

    def _runs(self, conn: Connection, rows: Sequence[Any]) -> list[Run]:
        """Hydrate run rows with params, latest metrics and tags: three queries per page."""
        ids = [row.run_id for row in rows]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        if ids:
            for run_id, key, value in conn.execute(
                sa.select(t.params.c.run_id, t.params.c.key, t.params.c.value).where(
                    t.params.c.run_id.in_(ids)
                )
            ):
                params[run_id][key] = value
            for run_id, key, number in conn.execute(
                sa.select(
                    t.latest_metrics.c.run_id, t.latest_metrics.c.key, t.latest_metrics.c.value
                ).where(t.latest_metrics.c.run_id.in_(ids))
            ):
                metrics[run_id][key] = _from_db_float(number)
            for run_id, key, value in conn.execute(
                sa.select(t.tags.c.run_id, t.tags.c.key, t.tags.c.value).where(
                    t.tags.c.run_id.in_(ids)
                )
            ):
                tags[run_id][key] = value
        return [
            Run(
                id=row.run_id,
                experiment_id=row.experiment_id,
                name=row.name,
                status=RunStatus(row.status),
                lifecycle_stage=LifecycleStage(row.lifecycle_stage),
                user=row.user_id,
                start_time=from_ms(row.start_time),
                end_time=from_ms(row.end_time),
                heartbeat_at=from_ms(row.heartbeat_at),
                parent_id=row.parent_run_id,
                params=dict(sorted(params[row.run_id].items())),
                metrics=dict(sorted(metrics[row.run_id].items())),
                tags=dict(sorted(tags[row.run_id].items())),
            )
            for row in rows
        ]

    # -- logging ------------------------------------------------------------------

    def write_batch(self, batch: LogBatch) -> list[str]:
        if not batch.key:
            return self.db.write(lambda conn: self._write_batch(conn, batch))
        conflicts = self.db.write(lambda conn: self._write_keyed_batch(conn, batch))
        self._prune_receipts()
        return conflicts

    def has_receipt(self, key: str) -> bool:
        """Whether a batch with this idempotency key was committed (a server asks first)."""
        query = sa.select(t.batch_receipts.c.key).where(t.batch_receipts.c.key == key)
        return self.db.read(lambda conn: conn.execute(query).first()) is not None

    def _write_keyed_batch(self, conn: Connection, batch: LogBatch) -> list[str]:
        """Write a batch once per idempotency key: the receipt commits with the rows."""
        receipt = (
            _upsert(self.db.dialect, t.batch_receipts)
            .values(key=batch.key, created_at=now_ms())
            .on_conflict_do_nothing()
            .returning(t.batch_receipts.c.key)  # a row only when inserted (rowcount is -1)
        )
        # On PostgreSQL a concurrent attempt with the same key waits here for the first
        # transaction: it then sees the receipt (first committed) or inserts it (rolled back).
        if conn.execute(receipt).first() is not None:
            return self._write_batch(conn, batch)
        # A retry of a committed batch whose answer was lost: write nothing again, but
        # answer the same param conflicts. Params are write-once, so what the first attempt
        # stored (or found) is still there and the check gives the same messages.
        wanted, conflicts = _wanted_params(batch)
        return conflicts + self._stored_conflicts(conn, wanted) if wanted else conflicts

    def _prune_receipts(self) -> None:
        """Now and then, forget receipts older than a retry could be (a day)."""
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + _PRUNE_INTERVAL
        cutoff = now_ms() - _RECEIPT_TTL_MS
        try:
            self.db.write(
                lambda conn: conn.execute(
                    t.batch_receipts.delete().where(t.batch_receipts.c.created_at < cutoff)
                )
            )
        except (DriftlineError, SQLAlchemyError) as exc:  # the batch is committed; try later
            log.warning("driftline could not prune old batch receipts: %s", exc)

    def _write_batch(self, conn: Connection, batch: LogBatch) -> list[str]:
        if batch.metrics:
            rows = [(r, k, _db_float(v), s, ts) for r, k, v, s, ts in batch.metrics]
            if self.db.dialect == "postgresql":
                _copy_metrics(conn, rows)
            else:
                for start in range(0, len(rows), _CHUNK):
                    conn.exec_driver_sql(self._insert_metrics_sql, rows[start : start + _CHUNK])
            self._upsert_latest(conn, batch.metrics)
        conflicts = self._insert_params(conn, batch) if batch.params else []
        if batch.tags:
            latest = {(r, k): v for r, k, v in batch.tags}  # the last write of a key wins
            stmt = _upsert(self.db.dialect, t.tags)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}
                ),
                [{"run_id": r, "key": k, "value": v} for (r, k), v in latest.items()],
            )
        if batch.heartbeats:
            conn.execute(
                t.runs.update()
                .where(
                    t.runs.c.run_id.in_(sorted(set(batch.heartbeats))), t.runs.c.status == "RUNNING"
                )
                .values(heartbeat_at=now_ms())
            )
        return conflicts

    def _upsert_latest(self, conn: Connection, rows: Iterable[MetricRow]) -> None:
        latest: dict[tuple[str, str], MetricRow] = {}
        for row in rows:
            ident = (row[0], row[1])
            held = latest.get(ident)
            if held is None or (row[3], row[4]) >= (held[3], held[4]):
                latest[ident] = row
        stmt = _upsert(self.db.dialect, t.latest_metrics)
        current = t.latest_metrics.c
        newer = sa.or_(
            stmt.excluded.step > current.step,
            sa.and_(
                stmt.excluded.step == current.step, stmt.excluded.timestamp >= current.timestamp
            ),
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["run_id", "key"],
                set_={
                    "value": stmt.excluded.value,
                    "step": stmt.excluded.step,
                    "timestamp": stmt.excluded.timestamp,
                },
                where=newer,
            ),
            [
                {"run_id": r, "key": k, "value": _db_float(v), "step": s, "timestamp": ts}
                for r, k, v, s, ts in latest.values()
            ],
        )

    def _insert_params(self, conn: Connection, batch: LogBatch) -> list[str]:
        wanted, conflicts = _wanted_params(batch)
        stmt = _upsert(self.db.dialect, t.params).on_conflict_do_nothing()
        conn.execute(
            stmt,
            [
                {"run_id": r, "key": k, "value": v, "value_num": _as_number(v)}
                for (r, k), v in wanted.items()
            ],
        )
        return conflicts + self._stored_conflicts(conn, wanted)

    def _stored_conflicts(self, conn: Connection, wanted: dict[tuple[str, str], str]) -> list[str]:
        # Params are write-once: whatever is stored now must be what this batch says.
        conflicts = []
        run_ids = sorted({r for r, _ in wanted})
        keys = sorted({k for _, k in wanted})
        for run_id, key, stored in conn.execute(
            sa.select(t.params.c.run_id, t.params.c.key, t.params.c.value).where(
                t.params.c.run_id.in_(run_ids), t.params.c.key.in_(keys)
            )
        ):
            given = wanted.get((run_id, key))
            if given is not None and given != stored:
                conflicts.append(
                    f"param {key!r} of run {run_id} is {stored!r}; cannot change it to {given!r}"
                )
        return conflicts

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        m = t.metrics.c
        query = (
            sa.select(m.value, m.step, m.timestamp)
            .where(m.run_id == run_id, m.key == key)
            .order_by(m.step, m.timestamp)
        )
        rows = self.db.read(lambda conn: conn.execute(query).all())
        return [
            MetricPoint(key=key, value=_from_db_float(v), step=s, timestamp=from_ms(ts))
            for v, s, ts in rows
        ]

    def latest_points(self, run_ids: Sequence[str]) -> dict[str, list[MetricPoint]]:
        """Each metric's latest point (value, step, time) per run, in one query."""
        m = t.latest_metrics.c
        query = (
            sa.select(m.run_id, m.key, m.value, m.step, m.timestamp)
            .where(m.run_id.in_(list(run_ids)))
            .order_by(m.run_id, m.key)
        )
        points: dict[str, list[MetricPoint]] = {}
        for run_id, key, value, step, ts in self.db.read(lambda conn: conn.execute(query).all()):
            points.setdefault(run_id, []).append(
                MetricPoint(key=key, value=_from_db_float(value), step=step, timestamp=from_ms(ts))
            )
        return points

    # -- search -------------------------------------------------------------------

    def search_runs(self, query: RunQuery) -> list[Run]:
        compiler = RunSearchCompiler()
        conditions: list[sa.ColumnElement[bool]] = []
        if query.experiment_ids is not None:
            conditions.append(t.runs.c.experiment_id.in_(list(query.experiment_ids)))
        if query.lifecycle is not None:
            conditions.append(t.runs.c.lifecycle_stage == query.lifecycle.value)
        if query.lifecycle is LifecycleStage.ACTIVE:
            # Deleting an experiment hides its runs with it.
            conditions.append(
                t.runs.c.experiment_id.in_(
                    sa.select(t.experiments.c.experiment_id).where(
                        t.experiments.c.lifecycle_stage == LifecycleStage.ACTIVE.value
                    )
                )
            )
        if query.filter is not None:
            conditions.append(compiler.where(query.filter))
        order = compiler.order_by(query.order_by)
        select = compiler.select_from(sa.select(t.runs)).where(*conditions).order_by(*order)
        select = select.limit(query.max_results).offset(query.offset)
        try:
            return self.db.read(lambda conn: self._runs(conn, conn.execute(select).all()))
        except sa.exc.DBAPIError as exc:
            if not too_complex(exc):
                raise
            raise InvalidArgumentError(
                "The search is too complex for this database; use fewer nested groups, "
                "comparisons or values"
            ) from exc

    # -- artifacts ----------------------------------------------------------------

    def add_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        if not entries:
            return
        self.db.write(lambda conn: self._upsert_artifacts(conn, run_id, entries))

    def _upsert_artifacts(
        self, conn: Connection, run_id: str, entries: Sequence[ArtifactEntry]
    ) -> None:
        if self._artifact_upsert is None:  # built once: ``excluded`` is costly to make
            stmt = _upsert(self.db.dialect, t.run_artifacts)
            self._artifact_upsert = stmt.on_conflict_do_update(
                index_elements=["run_id", "path"],
                set_={
                    "digest": stmt.excluded.digest,
                    "size": stmt.excluded.size,
                    "created_at": stmt.excluded.created_at,
                },
            )
        rows = [
            {
                "run_id": run_id,
                "path": e.path,
                "digest": e.digest,
                "size": e.size,
                "created_at": int(e.created_at.timestamp() * 1000),
            }
            for e in entries
        ]
        conn.execute(self._artifact_upsert, rows)

    def replace_artifact(self, run_id: str, entry: ArtifactEntry, *, expected: str | None) -> bool:
        """Compare-and-set of one path (see ``ConditionalArtifacts``)."""
        a = t.run_artifacts.c
        values = {
            "digest": entry.digest,
            "size": entry.size,
            "created_at": int(entry.created_at.timestamp() * 1000),
        }
        if expected is None:
            stmt = (
                _upsert(self.db.dialect, t.run_artifacts)
                .values(run_id=run_id, path=entry.path, **values)
                .on_conflict_do_nothing(index_elements=["run_id", "path"])
                .returning(a.path)
            )
        else:
            stmt = (
                t.run_artifacts.update()
                .where(a.run_id == run_id, a.path == entry.path, a.digest == expected)
                .values(**values)
                .returning(a.path)
            )
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
        return self.db.write(lambda conn: conn.execute(stmt).first()) is not None

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        a = t.run_artifacts.c
        query = sa.select(a.path, a.digest, a.size, a.created_at).where(a.run_id == run_id)
        if prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(sa.or_(a.path == prefix, a.path.like(escaped + "/%", escape="\\")))
        rows = self.db.read(lambda conn: conn.execute(query.order_by(a.path)).all())
        return [
            ArtifactEntry(path=p, digest=d, size=s, created_at=from_ms(c)) for p, d, s, c in rows
        ]

    def artifact_digests(self) -> set[str]:
        query = sa.select(t.run_artifacts.c.digest).distinct()
        return {row[0] for row in self.db.read(lambda conn: conn.execute(query).all())}
