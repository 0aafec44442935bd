"""The SQL backend of deployment records (SQLite and PostgreSQL through one code path).

Every write is a compare-and-set on ``generation`` inside one transaction with its audit
entry: two serving processes that race to drive one rollout step cannot both win, and
the loser's change (and its audit entry) is not written.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from driftline.core.audit import append_audit, iter_audit
from driftline.core.clock import from_ms, now_ms, to_ms
from driftline.errors import AlreadyExistsError, BackendError, ConflictError
from driftline.serving import _tables as t
from driftline.serving.models import Deployment, Rollout, RolloutState

if TYPE_CHECKING:
    from driftline.core.audit import AuditEntry
    from driftline.core.metadata import Database

__all__ = ["SqlDeploymentStore", "spec_json", "spec_of_json"]

_RETRIES = 20
ENTITY = "deployment"


def spec_json(deployment: Deployment) -> str:
    """The spec as stored (the wire codec's form)."""
    from driftline.api.codec import encode

    return json.dumps(encode(deployment.spec), sort_keys=True)


def spec_of_json(text: str) -> Any:
    """The spec :func:`spec_json` stored."""
    from driftline.api.codec import decode
    from driftline.serving.models import DeploymentSpec

    return decode(DeploymentSpec, json.loads(text))


class SqlDeploymentStore:
    """:class:`~driftline.serving.store.DeploymentStore` on the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def find_deployment(self, name: str) -> Deployment | None:
        c = t.serving_deployments.c
        query = sa.select(t.serving_deployments).where(c.name == name)
        rows = self.db.read(lambda conn: conn.execute(query).all())
        return _record(rows[0]) if rows else None

    def list_deployments(self) -> list[Deployment]:
        query = sa.select(t.serving_deployments).order_by(t.serving_deployments.c.name)
        return [_record(r) for r in self.db.read(lambda conn: conn.execute(query).all())]

    def save_deployment(
        self,
        deployment: Deployment,
        *,
        expected: int | None,
        actor: str,
        action: str | None,
        details: dict[str, Any] | None = None,
    ) -> Deployment:
        c = t.serving_deployments.c
        now = now_ms()
        generation = (expected or 0) + 1
        r = deployment.rollout
        last_check = None if r.last_check is None else json.dumps(r.last_check)
        window_start = None if r.window_start is None else to_ms(r.window_start)
        next_check_at = None if r.next_check_at is None else to_ms(r.next_check_at)
        values = {
            "model": deployment.spec.model,
            "spec": spec_json(deployment),
            "state": str(r.state),
            "step": r.step,
            "canary_version": r.canary_version,
            "shadow_version": r.shadow_version,
            "failed_checks": r.failed_checks,
            "window_start": window_start,
            "next_check_at": next_check_at,
            "last_check": last_check,
            "message": r.message,
            "generation": generation,
            "updated_at": now,
            "updated_by": actor,
        }

        def write(conn: Connection) -> None:
            if expected is None:
                exists = conn.execute(sa.select(c.name).where(c.name == deployment.name)).first()
                if exists is not None:
                    raise AlreadyExistsError(f"Deployment {deployment.name!r} already exists")
                conn.execute(
                    t.serving_deployments.insert().values(
                        name=deployment.name, created_at=now, **values
                    )
                )
            else:
                moved = conn.execute(
                    t.serving_deployments.update()
                    .where(c.name == deployment.name, c.generation == expected)
                    .values(**values)
                )
                if moved.rowcount != 1:
                    raise ConflictError(
                        f"Deployment {deployment.name!r} changed meanwhile (it is no longer "
                        f"at generation {expected}); read it again and retry"
                    )
            if action is not None:
                append_audit(
                    conn,
                    actor=actor,
                    action=action,
                    entity_type=ENTITY,
                    entity=deployment.name,
                    after={
                        "state": str(r.state),
                        "step": r.step,
                        "canary_weight": deployment.canary_weight,
                        "canary_version": r.canary_version,
                        "message": r.message,
                        "generation": generation,
                        **(details or {}),
                    },
                )

        for _ in range(_RETRIES):
            try:
                self.db.write(write)
                break
            except SqlIntegrityError:
                # A concurrent insert of the same name or a race for the audit sequence:
                # the whole transaction again, with fresh reads.
                continue
        else:
            raise BackendError("Deployments are under too much contention; try again")
        stored = dataclasses.replace(
            r,  # as it reads back: times in whole milliseconds, JSON round-tripped
            window_start=from_ms(window_start),
            next_check_at=from_ms(next_check_at),
            last_check=None if last_check is None else json.loads(last_check),
        )
        return dataclasses.replace(
            deployment,
            rollout=stored,
            generation=generation,
            created_at=from_ms(now) if expected is None else from_ms(to_ms(deployment.created_at)),
            updated_at=from_ms(now),
            updated_by=actor,
        )

    def note(self, name: str, *, actor: str, action: str, details: dict[str, Any]) -> None:
        def write(conn: Connection) -> None:
            append_audit(
                conn, actor=actor, action=action, entity_type=ENTITY, entity=name, after=details
            )

        for _ in range(_RETRIES):
            try:
                self.db.write(write)
                return
            except SqlIntegrityError:
                continue  # a race for the audit sequence: append again
        raise BackendError("The audit log is under too much contention; try again")

    def history(self, name: str, limit: int | None = 100) -> list[AuditEntry]:
        found = self.db.read(lambda conn: iter_audit(conn, entity_type=ENTITY, entity_prefix=name))
        exact = [e for e in found if e.entity == name]
        return exact if limit is None else exact[:limit]


def _record(row: Any) -> Deployment:
    return Deployment(
        spec=spec_of_json(row.spec),
        rollout=Rollout(
            state=RolloutState(row.state),
            step=int(row.step),
            canary_version=row.canary_version,
            shadow_version=row.shadow_version,
            failed_checks=int(row.failed_checks),
            window_start=from_ms(row.window_start),
            next_check_at=from_ms(row.next_check_at),
            last_check=None if row.last_check is None else json.loads(row.last_check),
            message=row.message,
        ),
        generation=int(row.generation),
        created_at=from_ms(row.created_at),
        updated_at=from_ms(row.updated_at),
        updated_by=row.updated_by,
    )
