"""The SQL backend of the registry (SQLite and PostgreSQL through one code path)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from driftline.core.audit import (
    append_audit,
)
from driftline.core.clock import from_ms, now_ms, to_ms
from driftline.core.jsonvalues import check_json_value
from driftline.core.metadata import Database
from driftline.core.values import check_int64, check_ms
from driftline.errors import AlreadyExistsError, BackendError, ConflictError, NotFoundError
from driftline.registry import _tables as t
from driftline.registry.models import (
    AliasMove,
    Approval,
    Evaluation,
    ModelVersion,
    RegisteredModel,
)
from driftline.registry.store import ANY_HOLDER

__all__ = ["SqlRegistryStore"]

T = TypeVar("T")
_RETRIES = 20


class SqlRegistryStore:
    """:class:`~driftline.registry.store.RegistryStore` on the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _write(self, fn: Callable[[Connection], T]) -> T:
        """A write that may lose a race on a primary key (version number, audit sequence):
        the loser's whole transaction is retried, so its reads are fresh."""
        for _ in range(_RETRIES):
            try:
                return self.db.write(fn)
            except SqlIntegrityError:
                continue
        raise BackendError("The registry is under too much contention; try again")

    # -- models -------------------------------------------------------------------

    def ensure_model(
        self, name: str, *, actor: str, description: str | None = None
    ) -> RegisteredModel:
        m = t.registered_models.c

        def create(conn: Connection) -> None:
            if conn.execute(sa.select(m.name).where(m.name == name)).first() is not None:
                return
            now = now_ms()
            conn.execute(
                t.registered_models.insert().values(
                    name=name, description=description, created_at=now, updated_at=now
                )
            )
            append_audit(
                conn,
                actor=actor,
                action="create_model",
                entity_type="model",
                entity=name,
                after={"name": name, "description": description},
            )

        self._write(create)
        found = self._models(lambda q: q.where(m.name == name))
        return found[0]

    def update_model(
        self, name: str, *, description: str | None, tags: dict[str, str], actor: str
    ) -> RegisteredModel:
        m, g = t.registered_models.c, t.registered_model_tags.c

        def update(conn: Connection) -> None:
            before = conn.execute(sa.select(m.description).where(m.name == name)).first()
            if before is None:
                raise NotFoundError(f"No registered model {name!r}")
            values: dict[str, Any] = {"updated_at": now_ms()}
            if description is not None:
                values["description"] = description
            conn.execute(t.registered_models.update().where(m.name == name).values(**values))
            for key, value in tags.items():
                conn.execute(t.registered_model_tags.delete().where(g.name == name, g.key == key))
                conn.execute(
                    t.registered_model_tags.insert().values(name=name, key=key, value=value)
                )
            append_audit(
                conn,
                actor=actor,
                action="update_model",
                entity_type="model",
                entity=name,
                before={"description": before.description},
                after={"description": description, "tags": tags},
            )

        self._write(update)
        return self._models(lambda q: q.where(m.name == name))[0]

    def list_models(self) -> list[RegisteredModel]:
        return self._models(lambda q: q.order_by(t.registered_models.c.name))

    def _models(self, narrow: Callable[[Any], Any]) -> list[RegisteredModel]:
        m, v = t.registered_models.c, t.model_versions.c
        latest = sa.select(sa.func.max(v.version)).where(v.name == m.name).scalar_subquery()
        query = narrow(sa.select(t.registered_models, latest.label("latest")))

        def read(conn: Connection) -> list[RegisteredModel]:
            rows = conn.execute(query).all()
            names = [row.name for row in rows]
            aliases: dict[str, dict[str, int]] = {n: {} for n in names}
            tags: dict[str, dict[str, str]] = {n: {} for n in names}
            if names:
                a = t.model_aliases.c
                for name, alias, version in conn.execute(
                    sa.select(a.name, a.alias, a.version).where(a.name.in_(names))
                ):
                    aliases[name][alias] = version
                g = t.registered_model_tags.c
                for name, key, value in conn.execute(
                    sa.select(g.name, g.key, g.value).where(g.name.in_(names))
                ):
                    tags[name][key] = value
            return [
                RegisteredModel(
                    name=row.name,
                    description=row.description,
                    created_at=from_ms(row.created_at),
                    updated_at=from_ms(row.updated_at),
                    latest_version=row.latest,
                    aliases=dict(sorted(aliases[row.name].items())),
                    tags=tags[row.name],
                )
                for row in rows
            ]

        return self.db.read(read)

    # -- versions -----------------------------------------------------------------

    def add_version(self, name: str, fields: dict[str, Any], *, actor: str) -> ModelVersion:
        v = t.model_versions.c
        if fields.get("signature") is not None:
            fields = {
                **fields,
                "signature": check_json_value(fields["signature"], "The model signature"),
            }

        def insert(conn: Connection) -> int:
            latest = conn.execute(sa.select(sa.func.max(v.version)).where(v.name == name)).scalar()
            number = (latest or 0) + 1
            row = {
                **fields,
                "name": name,
                "version": number,
                "created_by": actor,
                "created_at": now_ms(),
            }
            if row.get("signature") is not None:
                row["signature"] = json.dumps(row["signature"], sort_keys=True)
            conn.execute(t.model_versions.insert().values(**row))
            conn.execute(
                t.registered_models.update()
                .where(t.registered_models.c.name == name)
                .values(updated_at=now_ms())
            )
            append_audit(
                conn,
                actor=actor,
                action="create_version",
                entity_type="model_version",
                entity=f"{name}/{number}",
                after={k: fields.get(k) for k in ("source", "run_id", "package_digest", "flavor")},
            )
            return number

        number = self._write(insert)
        found = self.find_version(name, number)
        assert found is not None
        return found

    def find_version(
        self, name: str, version: int | None = None, *, alias: str | None = None
    ) -> ModelVersion | None:
        v, a = t.model_versions.c, t.model_aliases.c
        query = sa.select(t.model_versions).where(v.name == name)
        if alias is not None:
            query = query.where(
                v.version
                == sa.select(a.version).where(a.name == name, a.alias == alias).scalar_subquery()
            )
        elif version is not None:
            query = query.where(v.version == version)
        query = query.order_by(v.version.desc()).limit(1)
        found = self._versions(query)
        return found[0] if found else None

    def list_versions(self, name: str) -> list[ModelVersion]:
        v = t.model_versions.c
        return self._versions(
            sa.select(t.model_versions).where(v.name == name).order_by(v.version.desc())
        )

    def _versions(self, query: Any) -> list[ModelVersion]:
        def read(conn: Connection) -> list[ModelVersion]:
            rows = conn.execute(query).all()
            names = sorted({row.name for row in rows})
            aliases: dict[tuple[str, int], list[str]] = {}
            if names:
                a = t.model_aliases.c
                for name, alias, version in conn.execute(
                    sa.select(a.name, a.alias, a.version).where(a.name.in_(names)).order_by(a.alias)
                ):
                    aliases.setdefault((name, version), []).append(alias)
            return [self._version(row, aliases.get((row.name, row.version), [])) for row in rows]

        return self.db.read(read)

    @staticmethod
    def _version(row: Any, aliases: Sequence[str]) -> ModelVersion:
        return ModelVersion(
            name=row.name,
            version=row.version,
            source=row.source,
            run_id=row.run_id,
            package_digest=row.package_digest,
            flavor=row.flavor,
            signature=None if row.signature is None else json.loads(row.signature),
            description=row.description,
            created_by=row.created_by,
            created_at=from_ms(row.created_at),
            aliases=tuple(aliases),
        )

    # -- aliases ------------------------------------------------------------------

    def move_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        expected: int | object | None,
        actor: str,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> AliasMove:
        a, h, v = t.model_aliases.c, t.alias_history.c, t.model_versions.c
        if details is not None:
            details = check_json_value(details, "The details of an alias move")

        def move(conn: Connection) -> AliasMove:
            if version is not None:
                exists = conn.execute(
                    sa.select(v.version).where(v.name == name, v.version == version)
                ).first()
                if exists is None:
                    raise NotFoundError(f"Model {name} has no version {version}")
            current = conn.execute(
                sa.select(a.version).where(a.name == name, a.alias == alias)
            ).scalar()
            if expected is not ANY_HOLDER and current != expected:
                raise ConflictError(
                    f"Alias {name}@{alias} points at "
                    f"{'nothing' if current is None else f'version {current}'}, not "
                    f"{'nothing' if expected is None else f'version {expected}'}: it moved "
                    "meanwhile. Look again and retry."
                )
            now = now_ms()
            # The write itself is the compare-and-set: under PostgreSQL's READ COMMITTED a
            # concurrent mover makes it match no row (an insert race fails on the primary
            # key and the retry sees the new holder), so the check above cannot be stale.
            if version is None:
                moved = conn.execute(
                    t.model_aliases.delete().where(
                        a.name == name, a.alias == alias, a.version == current
                    )
                ).rowcount
            elif current is None:
                conn.execute(
                    t.model_aliases.insert().values(
                        name=name, alias=alias, version=version, updated_at=now
                    )
                )
                moved = 1
            else:
                moved = conn.execute(
                    t.model_aliases.update()
                    .where(a.name == name, a.alias == alias, a.version == current)
                    .values(version=version, updated_at=now)
                ).rowcount
            if moved != 1:
                raise ConflictError(
                    f"Alias {name}@{alias} moved while this change was being made; look "
                    "again and retry"
                )
            seq = (
                conn.execute(
                    sa.select(sa.func.max(h.seq)).where(h.name == name, h.alias == alias)
                ).scalar()
                or 0
            ) + 1
            conn.execute(
                t.alias_history.insert().values(
                    name=name,
                    alias=alias,
                    seq=seq,
                    version=version,
                    previous_version=current,
                    actor=actor,
                    reason=reason,
                    at=now,
                )
            )
            append_audit(
                conn,
                actor=actor,
                action=f"alias_{reason}",
                entity_type="alias",
                entity=f"{name}@{alias}",
                before={"version": current},
                after={"version": version, **(details or {})},
            )
            return AliasMove(
                alias=alias,
                seq=seq,
                version=version,
                previous_version=current,
                actor=actor,
                reason=reason,
                at=from_ms(now),
            )

        return self._write(move)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        h = t.alias_history.c
        query = sa.select(t.alias_history).where(h.name == name)
        if alias is not None:
            query = query.where(h.alias == alias)
        rows = self.db.read(
            lambda conn: conn.execute(query.order_by(h.at.desc(), h.seq.desc())).all()
        )
        return [
            AliasMove(
                alias=r.alias,
                seq=r.seq,
                version=r.version,
                previous_version=r.previous_version,
                actor=r.actor,
                reason=r.reason,
                at=from_ms(r.at),
            )
            for r in rows
        ]

    # -- evaluations and approvals --------------------------------------------------

    def add_evaluation(self, evaluation: Evaluation) -> None:
        try:
            self._insert_evaluation(evaluation)
        except SqlIntegrityError:
            raise AlreadyExistsError(
                f"Cannot store evaluation {evaluation.id!r} of {evaluation.name}/"
                f"{evaluation.version}: an evaluation with that id exists already (or the "
                "version is gone); evaluations are immutable, store a new one under a new id"
            ) from None

    def _insert_evaluation(self, evaluation: Evaluation) -> None:
        # Every writer of evaluations (the registry service, the REST route) ends here:
        # what cannot be read back and listed is refused before anything is written.
        metrics = check_json_value(evaluation.metrics, "The metrics of an evaluation")
        slices = check_json_value(evaluation.slices, "The slices of an evaluation")
        rows = check_int64(evaluation.rows, "The rows of an evaluation")
        created_at = check_ms(to_ms(evaluation.created_at), "The time of an evaluation")
        self.db.write(
            lambda conn: conn.execute(
                t.evaluations.insert().values(
                    evaluation_id=evaluation.id,
                    name=evaluation.name,
                    version=evaluation.version,
                    dataset=evaluation.dataset,
                    target=evaluation.target,
                    task=evaluation.task,
                    rows=rows,
                    metrics=json.dumps(metrics),
                    slices=json.dumps(slices) if slices else None,
                    created_at=created_at,
                )
            )
        )

    def list_evaluations(self, name: str, version: int) -> list[Evaluation]:
        e = t.evaluations.c
        rows = self.db.read(
            lambda conn: conn.execute(
                sa.select(t.evaluations)
                .where(e.name == name, e.version == version)
                .order_by(e.created_at.desc(), e.evaluation_id.desc())
            ).all()
        )
        return [
            Evaluation(
                id=r.evaluation_id,
                name=r.name,
                version=r.version,
                dataset=r.dataset,
                target=r.target,
                task=r.task,
                rows=r.rows,
                metrics=json.loads(r.metrics),
                slices=json.loads(r.slices) if r.slices else {},
                created_at=from_ms(r.created_at),
            )
            for r in rows
        ]

    def add_approval(self, approval: Approval) -> Approval:
        p = t.approvals.c

        def insert(conn: Connection) -> None:
            exists = conn.execute(
                sa.select(p.actor).where(
                    p.name == approval.name,
                    p.version == approval.version,
                    p.alias == approval.alias,
                    p.actor == approval.actor,
                )
            ).first()
            if exists is not None:
                raise AlreadyExistsError(
                    f"{approval.actor} already approved {approval.name}/{approval.version} "
                    f"for {approval.alias}"
                )
            conn.execute(
                t.approvals.insert().values(
                    name=approval.name,
                    version=approval.version,
                    alias=approval.alias,
                    actor=approval.actor,
                    comment=approval.comment,
                    created_at=int(approval.created_at.timestamp() * 1000),
                )
            )
            append_audit(
                conn,
                actor=approval.actor,
                action="approve",
                entity_type="model_version",
                entity=f"{approval.name}/{approval.version}",
                after={"alias": approval.alias, "comment": approval.comment},
            )

        self._write(insert)
        return approval

    def list_approvals(self, name: str, version: int, alias: str | None = None) -> list[Approval]:
        p = t.approvals.c
        query = sa.select(t.approvals).where(p.name == name, p.version == version)
        if alias is not None:
            query = query.where(p.alias == alias)
        rows = self.db.read(lambda conn: conn.execute(query.order_by(p.created_at)).all())
        return [
            Approval(
                name=r.name,
                version=r.version,
                alias=r.alias,
                actor=r.actor,
                comment=r.comment,
                created_at=from_ms(r.created_at),
            )
            for r in rows
        ]

    def set_policy(self, alias: str, required: int, *, actor: str) -> None:
        p = t.approval_policies.c

        def upsert(conn: Connection) -> None:
            before = conn.execute(sa.select(p.required).where(p.alias == alias)).scalar()
            if before is None:
                conn.execute(
                    t.approval_policies.insert().values(
                        alias=alias, required=required, updated_at=now_ms()
                    )
                )
            else:
                conn.execute(
                    t.approval_policies.update()
                    .where(p.alias == alias)
                    .values(required=required, updated_at=now_ms())
                )
            append_audit(
                conn,
                actor=actor,
                action="set_policy",
                entity_type="policy",
                entity=alias,
                before={"required": before},
                after={"required": required},
            )

        self._write(upsert)

    def policy(self, alias: str) -> int:
        p = t.approval_policies.c
        found = self.db.read(
            lambda conn: conn.execute(sa.select(p.required).where(p.alias == alias)).scalar()
        )
        return int(found or 0)
