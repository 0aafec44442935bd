"""The SQL backend of monitors, evaluations, figures and alerts (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from driftline.core.clock import from_ms, to_ms
from driftline.core.metadata import Database
from driftline.errors import AlreadyExistsError
from driftline.monitoring import _monitor_tables as t
from driftline.monitoring.monitor_models import (
    Alert,
    CheckOutcome,
    Delivery,
    Evaluation,
    Figure,
    Monitor,
)

__all__ = ["SqlMonitorStore"]

T = TypeVar("T")


class SqlMonitorStore:
    """:class:`~driftline.monitoring.monitor_store.MonitorStore` on the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- monitors ---------------------------------------------------------------------

    def add_monitor(self, monitor: Monitor, *, replace: bool) -> Monitor:
        c = t.monitoring_monitors.c
        values = {
            "monitor_id": monitor.id,
            "name": monitor.name,
            "deployment": monitor.deployment,
            "window_seconds": monitor.window_seconds,
            "checks": json.dumps(list(monitor.checks)),
            "channels": json.dumps(list(monitor.channels)),
            "cooldown_seconds": monitor.cooldown_seconds,
            "reference": monitor.reference,
            "thresholds": None if monitor.thresholds is None else json.dumps(monitor.thresholds),
            "created_at": to_ms(monitor.created_at),
        }

        def write(conn: Connection) -> None:
            if replace:
                conn.execute(t.monitoring_monitors.delete().where(c.name == monitor.name))
            conn.execute(t.monitoring_monitors.insert().values(values))

        try:
            self.db.write(write)
        except SqlIntegrityError:
            raise AlreadyExistsError(
                f"A monitor named {monitor.name!r} exists; pick another name or replace it "
                "(replace=True, or --replace)"
            ) from None
        return monitor

    def get_monitor(self, name: str) -> Monitor | None:
        q = sa.select(t.monitoring_monitors).where(t.monitoring_monitors.c.name == name)
        rows = self._read(lambda conn: conn.execute(q).all())
        return _monitor(rows[0]) if rows else None

    def list_monitors(self) -> list[Monitor]:
        q = sa.select(t.monitoring_monitors).order_by(t.monitoring_monitors.c.name)
        return [_monitor(r) for r in self._read(lambda conn: conn.execute(q).all())]

    def delete_monitor(self, name: str) -> bool:
        q = t.monitoring_monitors.delete().where(t.monitoring_monitors.c.name == name)
        return bool(self.db.write(lambda conn: conn.execute(q).rowcount))

    # -- evaluations and figures ------------------------------------------------------

    def add_evaluation(self, evaluation: Evaluation) -> None:
        row = {
            "evaluation_id": evaluation.id,
            "monitor": evaluation.monitor,
            "window_start": to_ms(evaluation.window_start),
            "window_end": to_ms(evaluation.window_end),
            "status": evaluation.status,
            "rows": evaluation.rows,
            "checks": json.dumps([c.to_dict() for c in evaluation.checks], allow_nan=False),
            "created_at": to_ms(evaluation.created_at),
        }
        figures = [
            {
                "evaluation_id": f.evaluation_id,
                "monitor": f.monitor,
                "check_name": f.check,
                "column_name": f.column or "",
                "metric": f.metric,
                "value": f.value,
                "window_start": to_ms(f.window_start),
                "window_end": to_ms(f.window_end),
            }
            for f in evaluation.figures
        ]

        def write(conn: Connection) -> None:
            conn.execute(t.monitoring_evaluations.insert().values(row))
            if figures:
                conn.execute(t.monitoring_figures.insert(), figures)

        self.db.write(write)

    def evaluations(
        self, monitor: str, *, since: datetime | None = None, limit: int | None = None
    ) -> list[Evaluation]:
        c = t.monitoring_evaluations.c
        q = sa.select(t.monitoring_evaluations).where(c.monitor == monitor)
        if since is not None:
            q = q.where(c.window_end >= to_ms(since))
        q = q.order_by(c.created_at.desc(), c.evaluation_id.desc())
        if limit is not None:
            q = q.limit(limit)
        rows = list(reversed(self._read(lambda conn: conn.execute(q).all())))
        figures: dict[str, list[Figure]] = {}
        if rows:
            f = t.monitoring_figures.c
            fq = (
                sa.select(t.monitoring_figures)
                .where(f.evaluation_id.in_([r.evaluation_id for r in rows]))
                .order_by(f.check_name, f.column_name, f.metric)
            )
            for r in self._read(lambda conn: conn.execute(fq).all()):
                figures.setdefault(r.evaluation_id, []).append(_figure(r))
        return [
            _evaluation(r, sorted(figures.get(r.evaluation_id, []), key=lambda x: x.order))
            for r in rows
        ]

    def figures(
        self,
        monitor: str,
        *,
        check: str | None = None,
        column: str | None = None,
        metric: str | None = None,
        since: datetime | None = None,
    ) -> list[Figure]:
        f = t.monitoring_figures.c
        q = sa.select(t.monitoring_figures).where(f.monitor == monitor)
        if check is not None:
            q = q.where(f.check_name == check)
        if column is not None:
            q = q.where(f.column_name == column)
        if metric is not None:
            q = q.where(f.metric == metric)
        if since is not None:
            q = q.where(f.window_end >= to_ms(since))
        found = [_figure(r) for r in self._read(lambda conn: conn.execute(q).all())]
        # sorted here, not by the database: text collations differ between backends
        return sorted(found, key=lambda x: (x.window_end, x.evaluation_id, *x.order))

    # -- alerts -----------------------------------------------------------------------

    def raise_alert(self, alert: Alert, *, since: datetime) -> tuple[Alert, bool]:
        a = t.monitoring_alerts.c
        m = t.monitoring_monitors.c
        row = _alert_row(alert)
        deliveries = [_delivery_row(alert.id, d) for d in alert.deliveries]
        same = sa.and_(
            a.monitor == alert.monitor,
            a.check_name == alert.check,
            a.severity == alert.severity,
            a.created_at >= to_ms(since),
        )

        def write(conn: Connection) -> tuple[str, bool]:
            # Two runs of one monitor take turns here: SQLite's write transaction holds
            # the database's write lock (BEGIN IMMEDIATE), PostgreSQL locks the monitor's
            # row; the second run's look-up then sees the first run's alert.
            conn.execute(sa.select(m.monitor_id).where(m.name == alert.monitor).with_for_update())
            earlier = conn.execute(
                sa.select(a.alert_id)
                .where(same)
                .order_by(a.created_at.desc(), a.alert_id.desc())
                .limit(1)
            ).scalar()
            if earlier is not None:
                conn.execute(
                    t.monitoring_alerts.update()
                    .where(a.alert_id == earlier)
                    .values(repeats=a.repeats + 1, last_seen_at=to_ms(alert.last_seen_at))
                )
                return str(earlier), False
            conn.execute(t.monitoring_alerts.insert().values(row))
            if deliveries:
                conn.execute(t.monitoring_deliveries.insert(), deliveries)
            return alert.id, True

        alert_id, raised = self.db.write(write)
        if raised:
            return alert, True
        return self._alerts(a.alert_id == alert_id, newest_first=True, limit=1)[0], False

    def add_alert(self, alert: Alert) -> None:
        row = _alert_row(alert)
        deliveries = [_delivery_row(alert.id, d) for d in alert.deliveries]

        def write(conn: Connection) -> None:
            conn.execute(t.monitoring_alerts.insert().values(row))
            if deliveries:
                conn.execute(t.monitoring_deliveries.insert(), deliveries)

        self.db.write(write)

    def alerts(
        self,
        *,
        since: datetime | None = None,
        monitor: str | None = None,
        severity: str | None = None,
        limit: int | None = None,
    ) -> list[Alert]:
        a = t.monitoring_alerts.c
        where: list[Any] = []
        if since is not None:
            where.append(a.created_at >= to_ms(since))
        if monitor is not None:
            where.append(a.monitor == monitor)
        if severity is not None:
            where.append(a.severity == severity)
        found = self._alerts(sa.and_(sa.true(), *where), newest_first=True, limit=limit)
        return list(reversed(found))

    def undelivered(self, monitor: str) -> list[tuple[Alert, Delivery]]:
        a, d = t.monitoring_alerts.c, t.monitoring_deliveries.c
        ids = (
            sa.select(d.alert_id)
            .join(t.monitoring_alerts, a.alert_id == d.alert_id)
            .where(a.monitor == monitor, d.state != "delivered")
        )
        out = []
        for alert in reversed(self._alerts(a.alert_id.in_(ids), newest_first=True, limit=None)):
            out += [(alert, x) for x in alert.deliveries if x.state != "delivered"]
        return out

    def update_delivery(self, alert_id: str, delivery: Delivery) -> None:
        d = t.monitoring_deliveries.c
        values = _delivery_row(alert_id, delivery)
        q = (
            t.monitoring_deliveries.update()
            .where(d.alert_id == alert_id, d.channel == delivery.channel)
            .values({k: v for k, v in values.items() if k not in ("alert_id", "channel")})
        )
        self.db.write(lambda conn: conn.execute(q))

    # -- internals --------------------------------------------------------------------

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return self.db.read(fn)

    def _alerts(self, where: Any, *, newest_first: bool, limit: int | None) -> list[Alert]:
        a, d = t.monitoring_alerts.c, t.monitoring_deliveries.c
        order = (a.created_at.desc(), a.alert_id.desc()) if newest_first else (a.created_at,)
        q = sa.select(t.monitoring_alerts).where(where).order_by(*order)
        if limit is not None:
            q = q.limit(limit)
        rows = self._read(lambda conn: conn.execute(q).all())
        deliveries: dict[str, list[Delivery]] = {}
        if rows:
            dq = (
                sa.select(t.monitoring_deliveries)
                .where(d.alert_id.in_([r.alert_id for r in rows]))
                .order_by(d.channel)
            )
            for r in self._read(lambda conn: conn.execute(dq).all()):
                deliveries.setdefault(r.alert_id, []).append(_delivery(r))
        return [_alert(r, deliveries.get(r.alert_id, [])) for r in rows]


def _monitor(row: Any) -> Monitor:
    return Monitor(
        id=row.monitor_id,
        name=row.name,
        deployment=row.deployment,
        window_seconds=int(row.window_seconds),
        checks=tuple(json.loads(row.checks)),
        channels=tuple(json.loads(row.channels)),
        cooldown_seconds=int(row.cooldown_seconds),
        reference=row.reference,
        thresholds=None if row.thresholds is None else json.loads(row.thresholds),
        created_at=from_ms(int(row.created_at)),
    )


def _figure(row: Any) -> Figure:
    return Figure(
        monitor=row.monitor,
        evaluation_id=row.evaluation_id,
        check=row.check_name,
        column=row.column_name or None,
        metric=row.metric,
        value=None if row.value is None else float(row.value),
        window_start=from_ms(int(row.window_start)),
        window_end=from_ms(int(row.window_end)),
    )


def _evaluation(row: Any, figures: list[Figure]) -> Evaluation:
    return Evaluation(
        id=row.evaluation_id,
        monitor=row.monitor,
        window_start=from_ms(int(row.window_start)),
        window_end=from_ms(int(row.window_end)),
        status=row.status,
        rows=int(row.rows),
        checks=tuple(CheckOutcome(**c) for c in json.loads(row.checks)),
        created_at=from_ms(int(row.created_at)),
        figures=tuple(figures),
    )


def _alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.id,
        "monitor": alert.monitor,
        "deployment": alert.deployment,
        "check_name": alert.check,
        "severity": alert.severity,
        "message": alert.message,
        "figures": json.dumps(alert.figures, allow_nan=False, default=str),
        "evaluation_id": alert.evaluation_id,
        "created_at": to_ms(alert.created_at),
        "last_seen_at": to_ms(alert.last_seen_at),
        "repeats": alert.repeats,
    }


def _delivery_row(alert_id: str, d: Delivery) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "channel": d.channel,
        "state": d.state,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "updated_at": 0 if d.updated_at is None else to_ms(d.updated_at),
    }


def _delivery(row: Any) -> Delivery:
    return Delivery(
        channel=row.channel,
        state=row.state,
        attempts=int(row.attempts),
        last_error=row.last_error,
        updated_at=from_ms(int(row.updated_at)) if row.updated_at else None,
    )


def _alert(row: Any, deliveries: list[Delivery]) -> Alert:
    return Alert(
        id=row.alert_id,
        monitor=row.monitor,
        deployment=row.deployment,
        check=row.check_name,
        severity=row.severity,
        message=row.message,
        figures=json.loads(row.figures),
        evaluation_id=row.evaluation_id,
        created_at=from_ms(int(row.created_at)),
        last_seen_at=from_ms(int(row.last_seen_at)),
        repeats=int(row.repeats),
        deliveries=tuple(deliveries),
    )
