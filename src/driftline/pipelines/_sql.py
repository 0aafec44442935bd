"""The SQL backend of schedules, triggers, firings and the lease (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from driftline.core.clock import from_ms, to_ms
from driftline.core.metadata import Database
from driftline.errors import AlreadyExistsError
from driftline.pipelines import _tables as t
from driftline.pipelines.records import Firing, FiringStatus, Lease, Schedule, Trigger

__all__ = ["SqlAutomationStore"]


def _insert(dialect: str, table: sa.Table) -> Any:
    """The dialect's INSERT construct that supports ON CONFLICT."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def _inserted(stmt: Any, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING that returns a row only when it inserted one
    (the driver's rowcount for it is -1 on PostgreSQL)."""
    return stmt.on_conflict_do_nothing().returning(*table.primary_key.columns)


class SqlAutomationStore:
    """:class:`~driftline.pipelines.automation_store.AutomationStore` on the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- schedules ------------------------------------------------------------------

    def add_schedule(self, schedule: Schedule) -> Schedule:
        values = {
            "schedule_id": schedule.id,
            "name": schedule.name,
            "pipeline": schedule.pipeline,
            "module": schedule.module,
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "params": json.dumps(schedule.params, sort_keys=True),
            "enabled": schedule.enabled,
            "catchup": schedule.catchup,
            "next_due_at": to_ms(schedule.next_due_at),
            "last_fired_at": None,
            "created_at": to_ms(schedule.created_at),
            "updated_at": to_ms(schedule.updated_at),
        }
        self._add(t.pipelines_schedules, values, f"A schedule named {schedule.name!r}")
        return schedule

    def _add(self, table: sa.Table, values: dict[str, Any], what: str) -> None:
        stmt = _inserted(_insert(self.db.dialect, table).values(values), table)
        if not self.db.write(lambda conn: conn.execute(stmt).first() is not None):
            raise AlreadyExistsError(f"{what} exists already; delete it first or pick a name")

    def find_schedule(self, name: str) -> Schedule | None:
        query = sa.select(t.pipelines_schedules).where(t.pipelines_schedules.c.name == name)
        rows = self.db.read(lambda conn: conn.execute(query).all())
        return _schedule(rows[0]) if rows else None

    def list_schedules(self) -> list[Schedule]:
        query = sa.select(t.pipelines_schedules).order_by(t.pipelines_schedules.c.name)
        return [_schedule(r) for r in self.db.read(lambda conn: conn.execute(query).all())]

    def update_schedule(self, schedule_id: str, values: Mapping[str, Any]) -> None:
        if not values:
            return
        c = t.pipelines_schedules.c
        stmt = t.pipelines_schedules.update().where(c.schedule_id == schedule_id).values(**values)
        self.db.write(lambda conn: conn.execute(stmt))

    def delete_schedule(self, schedule_id: str) -> None:
        c = t.pipelines_schedules.c
        stmt = t.pipelines_schedules.delete().where(c.schedule_id == schedule_id)
        self.db.write(lambda conn: conn.execute(stmt))

    def advance_schedule(
        self, schedule_id: str, *, expected_due: int, next_due: int, firings: list[Firing]
    ) -> bool:
        c = t.pipelines_schedules.c
        values: dict[str, Any] = {"next_due_at": next_due}
        if firings:
            values["last_fired_at"] = max(to_ms(f.created_at) for f in firings)
        stmt = (
            t.pipelines_schedules.update()
            .where(c.schedule_id == schedule_id, c.next_due_at == expected_due)
            .values(**values)
        )

        def write(conn: Connection) -> bool:
            if conn.execute(stmt).rowcount != 1:
                return False
            for firing in firings:
                self._insert_firing(conn, firing)
            return True

        return self.db.write(write)

    # -- triggers -------------------------------------------------------------------

    def add_trigger(self, trigger: Trigger) -> Trigger:
        values = {
            "trigger_id": trigger.id,
            "name": trigger.name,
            "kind": trigger.kind,
            "source": trigger.source,
            "pipeline": trigger.pipeline,
            "module": trigger.module,
            "params": json.dumps(trigger.params, sort_keys=True),
            "enabled": trigger.enabled,
            "cursor": trigger.cursor,
            "created_at": to_ms(trigger.created_at),
            "updated_at": to_ms(trigger.updated_at),
        }
        self._add(t.pipelines_triggers, values, f"A trigger named {trigger.name!r}")
        return trigger

    def find_trigger(self, name: str) -> Trigger | None:
        query = sa.select(t.pipelines_triggers).where(t.pipelines_triggers.c.name == name)
        rows = self.db.read(lambda conn: conn.execute(query).all())
        return _trigger(rows[0]) if rows else None

    def list_triggers(self, *, kind: str | None = None, source: str | None = None) -> list[Trigger]:
        c = t.pipelines_triggers.c
        query = sa.select(t.pipelines_triggers).order_by(c.name)
        if kind is not None:
            query = query.where(c.kind == kind)
        if source is not None:
            query = query.where(c.source == source)
        return [_trigger(r) for r in self.db.read(lambda conn: conn.execute(query).all())]

    def delete_trigger(self, trigger_id: str) -> None:
        c = t.pipelines_triggers.c
        stmt = t.pipelines_triggers.delete().where(c.trigger_id == trigger_id)
        self.db.write(lambda conn: conn.execute(stmt))

    def advance_trigger(
        self, trigger_id: str, *, expected: int | None, cursor: int, firing: Firing | None
    ) -> bool:
        c = t.pipelines_triggers.c
        same = c.cursor.is_(None) if expected is None else c.cursor == expected
        stmt = (
            t.pipelines_triggers.update()
            .where(c.trigger_id == trigger_id, same)
            .values(cursor=cursor)
        )

        def write(conn: Connection) -> bool:
            if conn.execute(stmt).rowcount != 1:
                return False
            if firing is not None:
                self._insert_firing(conn, firing)
            return True

        return self.db.write(write)

    # -- firings --------------------------------------------------------------------

    def _insert_firing(self, conn: Connection, firing: Firing) -> bool:
        values = {
            "firing_id": firing.id,
            "origin": firing.origin,
            "origin_id": firing.origin_id,
            "origin_name": firing.origin_name,
            "pipeline": firing.pipeline,
            "module": firing.module,
            "params": json.dumps(firing.params, sort_keys=True),
            "payload": json.dumps(firing.payload, sort_keys=True),
            "dedup_key": firing.dedup_key,
            "status": firing.status.value,
            "created_at": to_ms(firing.created_at),
        }
        stmt = _inserted(
            _insert(self.db.dialect, t.pipelines_firings).values(values), t.pipelines_firings
        )
        return conn.execute(stmt).first() is not None

    def add_firing(self, firing: Firing) -> bool:
        return self.db.write(lambda conn: self._insert_firing(conn, firing))

    def get_firing(self, firing_id: str) -> Firing | None:
        query = sa.select(t.pipelines_firings).where(t.pipelines_firings.c.firing_id == firing_id)
        rows = self.db.read(lambda conn: conn.execute(query).all())
        return _firing(rows[0]) if rows else None

    def list_firings(
        self,
        *,
        status: FiringStatus | None = None,
        origin_name: str | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[Firing]:
        c = t.pipelines_firings.c
        order: tuple[Any, ...] = (c.created_at, c.firing_id)
        if not oldest_first:
            order = (c.created_at.desc(), c.firing_id.desc())
        query = sa.select(t.pipelines_firings).order_by(*order).limit(limit)
        if status is not None:
            query = query.where(c.status == status.value)
        if origin_name is not None:
            query = query.where(c.origin_name == origin_name)
        return [_firing(r) for r in self.db.read(lambda conn: conn.execute(query).all())]

    def start_firing(self, firing_id: str, *, agent: str, now: int) -> bool:
        c = t.pipelines_firings.c
        stmt = (
            t.pipelines_firings.update()
            .where(c.firing_id == firing_id, c.status == FiringStatus.PENDING.value)
            .values(status=FiringStatus.RUNNING.value, agent=agent, started_at=now)
        )
        return bool(self.db.write(lambda conn: conn.execute(stmt).rowcount) == 1)

    def set_firing_run(
        self, firing_id: str, *, run_id: str, resolved_params: Mapping[str, Any]
    ) -> None:
        c = t.pipelines_firings.c
        stmt = (
            t.pipelines_firings.update()
            .where(c.firing_id == firing_id)
            .values(run_id=run_id, resolved_params=json.dumps(resolved_params, sort_keys=True))
        )
        self.db.write(lambda conn: conn.execute(stmt))

    def end_firing(
        self, firing_id: str, *, status: FiringStatus, error: str | None, now: int
    ) -> None:
        c = t.pipelines_firings.c
        # Only a RUNNING firing ends: an agent that lost its lease mid-run must not
        # overwrite the FAILED its successor recorded.
        stmt = (
            t.pipelines_firings.update()
            .where(c.firing_id == firing_id, c.status == FiringStatus.RUNNING.value)
            .values(status=status.value, error=error, ended_at=now)
        )
        self.db.write(lambda conn: conn.execute(stmt))

    # -- the agent lease ------------------------------------------------------------

    def acquire_lease(
        self, name: str, *, holder: str, host: str, pid: int, now: int, ttl_ms: int
    ) -> tuple[bool, Lease | None]:
        c = t.pipelines_agent_lease.c
        expires = now + ttl_ms
        take = (
            t.pipelines_agent_lease.update()
            .where(c.name == name, sa.or_(c.holder == holder, c.expires_at < now))
            .values(
                holder=holder,
                host=host,
                pid=pid,
                renewed_at=now,
                expires_at=expires,
                # A new holder starts its tenure; a renewal keeps it.
                acquired_at=sa.case((c.holder == holder, c.acquired_at), else_=now),
            )
        )
        create = _insert(self.db.dialect, t.pipelines_agent_lease).values(
            name=name,
            holder=holder,
            host=host,
            pid=pid,
            acquired_at=now,
            renewed_at=now,
            expires_at=expires,
        )
        create = _inserted(create, t.pipelines_agent_lease)
        query = sa.select(t.pipelines_agent_lease).where(c.name == name)

        def write(conn: Connection) -> tuple[bool, Lease | None]:
            ours = conn.execute(take).rowcount == 1 or conn.execute(create).first() is not None
            row = conn.execute(query).first()
            return ours, (_lease(row) if row is not None else None)

        return self.db.write(write)

    def release_lease(self, name: str, *, holder: str) -> None:
        c = t.pipelines_agent_lease.c
        stmt = t.pipelines_agent_lease.delete().where(c.name == name, c.holder == holder)
        self.db.write(lambda conn: conn.execute(stmt))

    def get_lease(self, name: str) -> Lease | None:
        query = sa.select(t.pipelines_agent_lease).where(t.pipelines_agent_lease.c.name == name)
        row = self.db.read(lambda conn: conn.execute(query).first())
        return _lease(row) if row is not None else None


def _schedule(row: Any) -> Schedule:
    return Schedule(
        id=row.schedule_id,
        name=row.name,
        pipeline=row.pipeline,
        module=row.module,
        cron=row.cron,
        timezone=row.timezone,
        params=json.loads(row.params),
        enabled=bool(row.enabled),
        catchup=row.catchup,
        next_due_at=from_ms(int(row.next_due_at)),
        last_fired_at=from_ms(None if row.last_fired_at is None else int(row.last_fired_at)),
        created_at=from_ms(int(row.created_at)),
        updated_at=from_ms(int(row.updated_at)),
    )


def _trigger(row: Any) -> Trigger:
    return Trigger(
        id=row.trigger_id,
        name=row.name,
        kind=row.kind,
        source=row.source,
        pipeline=row.pipeline,
        module=row.module,
        params=json.loads(row.params),
        enabled=bool(row.enabled),
        cursor=None if row.cursor is None else int(row.cursor),
        created_at=from_ms(int(row.created_at)),
        updated_at=from_ms(int(row.updated_at)),
    )


def _firing(row: Any) -> Firing:
    def when(value: Any) -> Any:
        return None if value is None else from_ms(int(value))

    return Firing(
        id=row.firing_id,
        origin=row.origin,
        origin_id=row.origin_id,
        origin_name=row.origin_name,
        pipeline=row.pipeline,
        module=row.module,
        params=json.loads(row.params),
        payload=json.loads(row.payload),
        dedup_key=row.dedup_key,
        status=FiringStatus(row.status),
        run_id=row.run_id,
        resolved_params=None if row.resolved_params is None else json.loads(row.resolved_params),
        error=row.error,
        agent=row.agent,
        created_at=from_ms(int(row.created_at)),
        started_at=when(row.started_at),
        ended_at=when(row.ended_at),
    )


def _lease(row: Any) -> Lease:
    return Lease(
        holder=row.holder,
        host=row.host,
        pid=int(row.pid),
        acquired_at=from_ms(int(row.acquired_at)),
        renewed_at=from_ms(int(row.renewed_at)),
        expires_at=from_ms(int(row.expires_at)),
    )
