"""The SQL backend of retraining policies and cycles (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from driftline.core.audit import append_audit
from driftline.core.clock import from_ms
from driftline.core.ids import new_id
from driftline.core.metadata import Database
from driftline.errors import ConflictError, InvalidArgumentError, NotFoundError
from driftline.retraining import _tables as t
from driftline.retraining.cycles import (
    END_STATES,
    NEXT,
    CursorMove,
    Cycle,
    CycleState,
    Trigger,
    TriggerOutcome,
)
from driftline.retraining.triggers import ALERT_GRACE_MS, ALERT_KEY_PREFIX, alert_key

__all__ = ["SqlRetrainingStore"]

_OPEN = [s.value for s in CycleState if s not in END_STATES]
DAY_MS = 86_400_000


class SqlRetrainingStore:
    """Policies and cycles on the metadata database; every change is audited."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- policies ---------------------------------------------------------------------

    def put_policy(
        self,
        model: str,
        policy: dict[str, Any],
        source: str,
        *,
        actor: str,
        now: int,
        cursors: Mapping[str, int] | None = None,
    ) -> None:
        """Create or replace ``model``'s policy.

        ``cursors``: the starting point of each new_data and schedule trigger of the
        policy (key -> value). Cursors the policy had already keep what they have seen;
        those of triggers the policy no longer has are dropped. None leaves them as
        they are.
        """
        c = t.retraining_policies.c
        text = _json(policy, "the policy")

        def write(conn: Connection) -> None:
            before = conn.execute(sa.select(c.policy).where(c.model == model)).scalar()
            if before is None:
                conn.execute(
                    t.retraining_policies.insert().values(
                        model=model, policy=text, source=source, triggers_seen=0,
                        alerts_seen_at=now,
                        created_at=now, updated_at=now, updated_by=actor,
                    )
                )  # fmt: skip
            else:
                conn.execute(
                    t.retraining_policies.update()
                    .where(c.model == model)
                    .values(policy=text, source=source, updated_at=now, updated_by=actor)
                )
            if cursors is not None:
                _keep_cursors(conn, model, cursors, now)
            append_audit(
                conn, actor=actor, action="retraining.policy.apply",
                entity_type="retraining_policy", entity=model,
                before=None if before is None else json.loads(before), after=policy,
            )  # fmt: skip

        self.db.write(write)

    def get_policy(self, model: str) -> dict[str, Any] | None:
        """``model``'s stored policy (as applied), or None."""
        c = t.retraining_policies.c
        q = sa.select(c.policy).where(c.model == model)
        text = self.db.read(lambda conn: conn.execute(q).scalar())
        return None if text is None else dict(json.loads(text))

    def list_policies(self) -> list[str]:
        """Models with a policy."""
        c = t.retraining_policies.c
        q = sa.select(c.model).order_by(c.model)
        return [str(m) for m in self.db.read(lambda conn: conn.execute(q).scalars().all())]

    def alerts_seen_at(self, model: str) -> int | None:
        """The time of the newest alert already looked at for ``model``."""
        c = t.retraining_policies.c
        q = sa.select(c.alerts_seen_at).where(c.model == model)
        value = self.db.read(lambda conn: conn.execute(q).scalar())
        return None if value is None else int(value)

    def applied_at(self, model: str) -> int | None:
        """When ``model``'s policy was first applied (ms), None without a policy."""
        c = t.retraining_policies.c
        q = sa.select(c.created_at).where(c.model == model)
        value = self.db.read(lambda conn: conn.execute(q).scalar())
        return None if value is None else int(value)

    def alert_marks(self, model: str) -> dict[str, int]:
        """The alerts already looked at for ``model`` and still kept: id -> its time."""
        c = t.retraining_cursors.c
        q = sa.select(c.key, c.value).where(c.model == model, c.key.startswith(ALERT_KEY_PREFIX))
        rows = self.db.read(lambda conn: conn.execute(q).all())
        return {str(k)[len(ALERT_KEY_PREFIX) :]: int(v) for k, v in rows}

    def see_alerts(self, model: str, until: int, *, marks: Mapping[str, int] | None = None) -> None:
        """Move ``model``'s alert cursor forward to ``until`` (never back), mark the alerts
        of ``marks`` (id -> time) looked at unless they are, and forget the marks older
        than :data:`ALERT_GRACE_MS` before the cursor (a look never reads that far back)."""
        p = t.retraining_policies.c
        c = t.retraining_cursors.c

        def write(conn: Connection) -> None:
            _lock_policy(conn, model)
            conn.execute(
                t.retraining_policies.update()
                .where(p.model == model)
                .where(sa.or_(p.alerts_seen_at.is_(None), p.alerts_seen_at < until))
                .values(alerts_seen_at=until)
            )
            for alert_id, at in (marks or {}).items():
                _move_cursor(conn, model, CursorMove(alert_key(alert_id), None, at), until)
            cursor = conn.execute(sa.select(p.alerts_seen_at).where(p.model == model)).scalar_one()
            conn.execute(
                t.retraining_cursors.delete().where(
                    c.model == model,
                    c.key.startswith(ALERT_KEY_PREFIX),
                    c.value < int(cursor) - ALERT_GRACE_MS,
                )
            )

        self.db.write(write)

    # -- cursors of new_data and schedule triggers ------------------------------------

    def cursors(self, model: str) -> dict[str, int]:
        """``model``'s cursors of new_data and schedule triggers: key -> the value seen
        (see :class:`CursorMove`); alerts' marks are :meth:`alert_marks`."""
        c = t.retraining_cursors.c
        q = sa.select(c.key, c.value).where(
            c.model == model, sa.not_(c.key.startswith(ALERT_KEY_PREFIX))
        )
        return {str(k): int(v) for k, v in self.db.read(lambda conn: conn.execute(q).all())}

    def start_cursor(self, model: str, key: str, value: int, *, now: int) -> int:
        """Give ``model`` the cursor ``key`` at ``value`` unless it has one; the value
        it has afterwards."""

        def write(conn: Connection) -> int:
            _lock_policy(conn, model)
            _keep_cursors(conn, model, {key: value}, now, drop_others=False)
            c = t.retraining_cursors.c
            found = conn.execute(
                sa.select(c.value).where(c.model == model, c.key == key)
            ).scalar_one()
            return int(found)

        return self.db.write(write)

    # -- cycles -----------------------------------------------------------------------

    def trigger(
        self,
        model: str,
        cause: Trigger,
        *,
        cooldown_ms: int,
        max_per_day: int,
        actor: str,
        now: int,
        cursor: CursorMove | None = None,
    ) -> TriggerOutcome:
        """Start a cycle for ``cause`` unless one is running (it absorbs the trigger), the
        last one started inside the cooldown, or the day's cap is reached; one
        transaction, serialized per model by the policy row's lock.

        With ``cursor``, the trigger also moves that cursor (compare-and-set): when it
        moved on already (another agent saw the same version, due time or alert),
        nothing else happens and the outcome is ``seen``.
        """
        p = t.retraining_policies.c
        c = t.retraining_cycles.c

        def write(conn: Connection) -> TriggerOutcome:
            bumped = conn.execute(
                t.retraining_policies.update()
                .where(p.model == model)
                .values(triggers_seen=p.triggers_seen + 1)
            )
            if bumped.rowcount != 1:
                raise NotFoundError(
                    f"Model {model!r} has no retraining policy: apply one with "
                    "driftline retrain apply retrain.yaml"
                )
            if cursor is not None and not _move_cursor(conn, model, cursor, now):
                return TriggerOutcome(
                    "seen", None, f"{cursor.key} was seen already ({cause.kind} {cause.ref})"
                )
            running = conn.execute(
                sa.select(t.retraining_cycles)
                .where(c.model == model, c.state.in_(_OPEN))
                .order_by(c.created_at.desc())
                .limit(1)
            ).first()
            if running is not None:
                conn.execute(
                    t.retraining_cycles.update()
                    .where(c.cycle_id == running.cycle_id)
                    .values(absorbed=c.absorbed + 1)
                )
                cycle = _cycle(running)
                return TriggerOutcome(
                    "absorbed", cycle, f"cycle {cycle.id} is running ({cycle.state.value})"
                )
            last = conn.execute(
                sa.select(sa.func.max(c.created_at)).where(c.model == model)
            ).scalar()
            if last is not None and now - int(last) < cooldown_ms:
                left = (cooldown_ms - (now - int(last))) / 1000
                return TriggerOutcome(
                    "skipped",
                    None,
                    f"in cooldown: the last cycle started {(now - int(last)) / 1000:.0f} s ago "
                    f"({left:.0f} s left)",
                )
            day_start = now - now % DAY_MS
            today = conn.execute(
                sa.select(sa.func.count()).where(c.model == model, c.created_at >= day_start)
            ).scalar_one()
            if today >= max_per_day:
                return TriggerOutcome(
                    "skipped",
                    None,
                    f"max_cycles_per_day reached ({today} of {max_per_day} today, UTC)",
                )
            cycle_id = new_id()
            row = {
                "cycle_id": cycle_id, "model": model, "state": CycleState.TRIGGERED.value,
                "generation": 1, "cause_kind": cause.kind,
                "cause": _json(cause.to_dict(), "the trigger's payload"),
                "absorbed": 0, "created_at": now, "updated_at": now,
            }  # fmt: skip
            conn.execute(t.retraining_cycles.insert().values(row))
            append_audit(
                conn, actor=actor, action="retraining.cycle.triggered",
                entity_type="retraining_cycle", entity=cycle_id,
                after={"model": model, "state": "triggered", "cause": cause.to_dict()},
            )  # fmt: skip
            found = conn.execute(sa.select(t.retraining_cycles).where(c.cycle_id == cycle_id)).one()
            return TriggerOutcome("started", _cycle(found), f"started by {cause.kind} {cause.ref}")

        return self.db.write(write)

    def transition(
        self,
        cycle: Cycle,
        to: CycleState,
        *,
        actor: str,
        now: int,
        **products: Any,
    ) -> Cycle:
        """Move ``cycle`` to ``to`` if it is still where ``cycle`` says (compare-and-set);
        ``products``: run_id, version, rollout, report, reason."""
        if to is not CycleState.FAILED and to not in NEXT.get(cycle.state, frozenset()):
            raise InvalidArgumentError(f"A cycle cannot go from {cycle.state.value} to {to.value}")
        if cycle.state in END_STATES:
            raise InvalidArgumentError(f"Cycle {cycle.id} already ended ({cycle.state.value})")
        unknown = set(products) - {"run_id", "version", "rollout", "report", "reason"}
        if unknown:
            raise InvalidArgumentError(f"Unknown cycle fields: {', '.join(sorted(unknown))}")
        c = t.retraining_cycles.c
        values: dict[str, Any] = {
            "state": to.value,
            "generation": cycle.generation + 1,
            "updated_at": now,
        }
        for key, value in products.items():
            values[key] = (
                _json(value, "a cycle's record") if key in ("rollout", "report") else value
            )

        def write(conn: Connection) -> Cycle:
            moved = conn.execute(
                t.retraining_cycles.update()
                .where(
                    c.cycle_id == cycle.id,
                    c.state == cycle.state.value,
                    c.generation == cycle.generation,
                )
                .values(values)
            )
            if moved.rowcount != 1:
                raise ConflictError(
                    f"Cycle {cycle.id} moved on since it was read (another driver acted on it)"
                )
            after = {"model": cycle.model, "state": to.value, **{k: v for k, v in products.items()}}
            append_audit(
                conn, actor=actor, action=f"retraining.cycle.{to.value}",
                entity_type="retraining_cycle", entity=cycle.id,
                before={"state": cycle.state.value}, after=after,
            )  # fmt: skip
            return _cycle(
                conn.execute(sa.select(t.retraining_cycles).where(c.cycle_id == cycle.id)).one()
            )

        return self.db.write(write)

    def note(self, cycle_id: str, *, action: str, details: dict[str, Any], actor: str) -> None:
        """Append an audit entry about a cycle without moving it (a notification that
        could not be delivered)."""

        def write(conn: Connection) -> None:
            append_audit(
                conn, actor=actor, action=action, entity_type="retraining_cycle",
                entity=cycle_id, after=details,
            )  # fmt: skip

        self.db.write(write)

    def get_cycle(self, cycle_id: str) -> Cycle:
        """One cycle by id."""
        c = t.retraining_cycles.c
        q = sa.select(t.retraining_cycles).where(c.cycle_id == cycle_id)
        row = self.db.read(lambda conn: conn.execute(q).first())
        if row is None:
            raise NotFoundError(f"No retraining cycle {cycle_id!r}")
        return _cycle(row)

    def cycles(
        self, model: str | None = None, *, open_only: bool = False, limit: int | None = 100
    ) -> list[Cycle]:
        """Cycles, newest first."""
        c = t.retraining_cycles.c
        q = sa.select(t.retraining_cycles).order_by(c.created_at.desc(), c.cycle_id.desc())
        if model is not None:
            q = q.where(c.model == model)
        if open_only:
            q = q.where(c.state.in_(_OPEN))
        if limit is not None:
            q = q.limit(limit)
        return [_cycle(r) for r in self._read(lambda conn: conn.execute(q).all())]

    def cycle_of_version(self, model: str, version: int) -> Cycle | None:
        """The cycle whose pipeline registered ``model/version``, or None."""
        c = t.retraining_cycles.c
        q = (
            sa.select(t.retraining_cycles)
            .where(c.model == model, c.version == version)
            .order_by(c.created_at.desc())
            .limit(1)
        )
        row = self.db.read(lambda conn: conn.execute(q).first())
        return None if row is None else _cycle(row)

    def _read(self, fn: Callable[[Connection], Any]) -> Any:
        return self.db.read(fn)


def _lock_policy(conn: Connection, model: str) -> None:
    """Hold ``model``'s policy row for the transaction (its writers serialize on it)."""
    p = t.retraining_policies.c
    found = conn.execute(sa.select(p.model).where(p.model == model).with_for_update()).scalar()
    if found is None:
        raise NotFoundError(f"Model {model!r} has no retraining policy")


def _keep_cursors(
    conn: Connection, model: str, wanted: Mapping[str, int], now: int, *, drop_others: bool = True
) -> None:
    """Add the cursors of ``wanted`` that ``model`` lacks (the policy row is held);
    alerts' marks are not the policy's to drop (they go with the alert cursor)."""
    c = t.retraining_cursors.c
    have = set(
        conn.execute(
            sa.select(c.key).where(c.model == model, sa.not_(c.key.startswith(ALERT_KEY_PREFIX)))
        )
        .scalars()
        .all()
    )
    if drop_others and have - set(wanted):
        conn.execute(
            t.retraining_cursors.delete().where(
                c.model == model, c.key.in_(sorted(have - set(wanted)))
            )
        )
    rows = [
        {"model": model, "key": key, "value": int(value), "updated_at": now}
        for key, value in wanted.items()
        if key not in have
    ]
    if rows:
        conn.execute(t.retraining_cursors.insert(), rows)


def _move_cursor(conn: Connection, model: str, move: CursorMove, now: int) -> bool:
    """The compare-and-set of :class:`CursorMove` (the policy row is held, so a cursor
    that must not exist yet cannot be created by another writer meanwhile)."""
    c = t.retraining_cursors.c
    if move.expected is None:
        if move.key.startswith(ALERT_KEY_PREFIX) and _out_of_reach(conn, model, move.to):
            return False
        found = conn.execute(sa.select(c.key).where(c.model == model, c.key == move.key)).first()
        if found is not None:
            return False
        conn.execute(
            t.retraining_cursors.insert().values(
                model=model, key=move.key, value=move.to, updated_at=now
            )
        )
        return True
    moved = conn.execute(
        t.retraining_cursors.update()
        .where(c.model == model, c.key == move.key, c.value == move.expected)
        .values(value=move.to, updated_at=now)
    )
    return bool(moved.rowcount == 1)


def _out_of_reach(conn: Connection, model: str, at: int) -> bool:
    """Whether an alert of time ``at`` is more than :data:`ALERT_GRACE_MS` behind
    ``model``'s alert cursor: the look that moved the cursor past it looked at it, and
    its mark may be forgotten since, so a missing mark does not make it new (a look that
    read an older cursor would otherwise turn it into a trigger a second time)."""
    p = t.retraining_policies.c
    seen = conn.execute(sa.select(p.alerts_seen_at).where(p.model == model)).scalar()
    return seen is not None and at < int(seen) - ALERT_GRACE_MS


def _cycle(row: Any) -> Cycle:
    cause = json.loads(row.cause)
    return Cycle(
        id=row.cycle_id,
        model=row.model,
        state=CycleState(row.state),
        generation=row.generation,
        cause=Trigger(cause["kind"], cause["ref"], dict(cause.get("payload") or {})),
        absorbed=row.absorbed,
        created_at=from_ms(row.created_at) or datetime.now(UTC),
        updated_at=from_ms(row.updated_at) or datetime.now(UTC),
        run_id=row.run_id,
        version=row.version,
        rollout=None if row.rollout is None else json.loads(row.rollout),
        report=None if row.report is None else json.loads(row.report),
        reason=row.reason,
    )


def _json(value: Any, what: str) -> str:
    """``value`` as the JSON text stored; NaN and infinities (which strict JSON readers
    refuse) are refused here with a clear error rather than stored."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except ValueError:
        raise InvalidArgumentError(
            f"{what} holds NaN or an infinite number, which is not stored: give a finite "
            "number or leave the field out"
        ) from None
