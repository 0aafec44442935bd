"""The SQL backend of users, grants and tokens (SQLite and PostgreSQL, one code path).

Audit entries never contain a password, a hash or a token secret: only names, roles,
permissions, token ids and whether a password is set.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from driftline.auth import _tables as t
from driftline.auth.models import Grant, Permission, ResourceKind, Role, Token, User
from driftline.auth.store import (
    GRANT_ENTITY,
    TOKEN_ENTITY,
    USER_ENTITY,
    Credentials,
    StoredToken,
)
from driftline.core.audit import append_audit
from driftline.core.clock import from_ms, now_ms, to_ms
from driftline.core.ids import new_id
from driftline.core.metadata import Database
from driftline.errors import AlreadyExistsError, BackendError, NotFoundError

__all__ = ["SqlAuthStore"]

T = TypeVar("T")
_RETRIES = 20

_u, _k, _g = t.users.c, t.tokens.c, t.grants.c


class SqlAuthStore:
    """:class:`~driftline.auth.store.AuthStore` on the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _write(self, fn: Callable[[Connection], T]) -> T:
        # A concurrent audit append (or a racing insert of the same key) fails on a
        # primary key; the whole transaction is retried, so its reads are fresh.
        for _ in range(_RETRIES):
            try:
                return self.db.write(fn)
            except SqlIntegrityError:
                continue
        raise BackendError("User administration is under too much contention; try again")

    # -- users --------------------------------------------------------------------

    def add_user(self, *, name: str, role: Role, password_hash: str | None, actor: str) -> User:
        def insert(conn: Connection) -> User:
            if _user_row(conn, name) is not None:
                raise AlreadyExistsError(f"User {name!r} exists already")
            row = {
                "user_id": new_id(),
                "name": name,
                "role": role.value,
                "password_hash": password_hash,
                "disabled": False,
                "created_at": now_ms(),
            }
            conn.execute(t.users.insert().values(**row))
            user = _user(row)
            append_audit(
                conn,
                actor=actor,
                action="create_user",
                entity_type=USER_ENTITY,
                entity=name,
                after=_audited(user),
            )
            return user

        return self._write(insert)

    def find_user(self, name: str) -> User | None:
        def read(conn: Connection) -> User | None:
            row = _user_row(conn, name)
            return None if row is None else _user(row._mapping)

        return self.db.read(read)

    def list_users(self) -> list[User]:
        def read(conn: Connection) -> list[User]:
            rows = conn.execute(sa.select(t.users).order_by(_u.name))
            return [_user(row._mapping) for row in rows]

        return self.db.read(read)

    def update_user(
        self,
        name: str,
        *,
        actor: str,
        role: Role | None = None,
        disabled: bool | None = None,
    ) -> User:
        def update(conn: Connection) -> User:
            row = _user_row(conn, name)
            if row is None:
                raise NotFoundError(f"No user {name!r}; see driftline users list")
            before = _user(row._mapping)
            values: dict[str, Any] = {}
            if role is not None:
                values["role"] = role.value
            if disabled is not None:
                values["disabled"] = disabled
            if values:
                conn.execute(t.users.update().where(_u.user_id == row.user_id).values(**values))
            after_row = {**row._mapping, **values}
            after = _user(after_row)
            if values:
                append_audit(
                    conn,
                    actor=actor,
                    action=_update_action(values),
                    entity_type=USER_ENTITY,
                    entity=name,
                    before=_audited(before),
                    after=_audited(after),
                )
            return after

        return self._write(update)

    def set_password(
        self, name: str, password_hash: str, *, keep_token: str | None, actor: str
    ) -> tuple[User, int]:
        def update(conn: Connection) -> tuple[User, int]:
            row = _user_row(conn, name)
            if row is None:
                raise NotFoundError(f"No user {name!r}; see driftline users list")
            before = _user(row._mapping)
            conn.execute(
                t.users.update()
                .where(_u.user_id == row.user_id)
                .values(password_hash=password_hash)
            )
            after = _user({**row._mapping, "password_hash": password_hash})
            live = sa.select(_k.token_id, _k.name).where(
                _k.user_id == row.user_id, _k.revoked_at.is_(None)
            )
            if keep_token is not None:
                live = live.where(_k.token_id != keep_token)
            ending = conn.execute(live.order_by(_k.token_id)).all()
            now = now_ms()
            if ending:
                conn.execute(
                    t.tokens.update()
                    .where(_k.token_id.in_([token.token_id for token in ending]))
                    .values(revoked_at=now)
                )
            append_audit(
                conn,
                actor=actor,
                action="set_password",
                entity_type=USER_ENTITY,
                entity=name,
                before=_audited(before),
                after={**_audited(after), "revoked_tokens": len(ending)},
            )
            for token in ending:
                append_audit(
                    conn,
                    actor=actor,
                    action="revoke_token",
                    entity_type=TOKEN_ENTITY,
                    entity=token.token_id,
                    before={"user": name, "name": token.name, "revoked_at": None},
                    after={"user": name, "name": token.name, "revoked_at": now},
                )
            return after, len(ending)

        return self._write(update)

    def find_credentials(self, name: str) -> Credentials | None:
        def read(conn: Connection) -> Credentials | None:
            row = _user_row(conn, name)
            if row is None:
                return None
            return Credentials(
                user=_user(row._mapping),
                password_hash=row.password_hash,
                grants=tuple(_grants(conn, name)),
            )

        return self.db.read(read)

    # -- grants -------------------------------------------------------------------

    def put_grant(
        self,
        user: str,
        kind: ResourceKind,
        resource: str,
        permission: Permission,
        *,
        actor: str,
    ) -> Grant:
        def put(conn: Connection) -> Grant:
            user_id = _user_id(conn, user)
            key = (_g.user_id == user_id, _g.resource_kind == kind.value)
            old = conn.execute(
                sa.select(_g.permission).where(*key, _g.resource_name == resource)
            ).first()
            now = now_ms()
            if old is None:
                conn.execute(
                    t.grants.insert().values(
                        user_id=user_id,
                        resource_kind=kind.value,
                        resource_name=resource,
                        permission=permission.value,
                        created_at=now,
                    )
                )
            elif old.permission != permission.value:
                conn.execute(
                    t.grants.update()
                    .where(*key, _g.resource_name == resource)
                    .values(permission=permission.value, created_at=now)
                )
            if old is None or old.permission != permission.value:
                append_audit(
                    conn,
                    actor=actor,
                    action="grant",
                    entity_type=GRANT_ENTITY,
                    entity=_grant_entity(user, kind, resource),
                    before=None if old is None else {"permission": old.permission},
                    after={"permission": permission.value},
                )
            return next(g for g in _grants(conn, user) if g.kind is kind and g.resource == resource)

        return self._write(put)

    def delete_grant(self, user: str, kind: ResourceKind, resource: str, *, actor: str) -> bool:
        def delete(conn: Connection) -> bool:
            user_id = _user_id(conn, user)
            where = (
                _g.user_id == user_id,
                _g.resource_kind == kind.value,
                _g.resource_name == resource,
            )
            old = conn.execute(sa.select(_g.permission).where(*where)).first()
            if old is None:
                return False
            conn.execute(t.grants.delete().where(*where))
            append_audit(
                conn,
                actor=actor,
                action="revoke",
                entity_type=GRANT_ENTITY,
                entity=_grant_entity(user, kind, resource),
                before={"permission": old.permission},
                after=None,
            )
            return True

        return self._write(delete)

    def list_grants(self, user: str | None = None) -> list[Grant]:
        def read(conn: Connection) -> list[Grant]:
            if user is not None:
                _user_id(conn, user)
            return _grants(conn, user)

        return self.db.read(read)

    # -- tokens -------------------------------------------------------------------

    def add_token(
        self,
        *,
        token_id: str,
        user: str,
        name: str,
        secret_hash: str,
        expires_at: datetime | None,
        actor: str,
    ) -> Token:
        def insert(conn: Connection) -> Token:
            row = {
                "token_id": token_id,
                "user_id": _user_id(conn, user),
                "name": name,
                "secret_hash": secret_hash,
                "created_at": now_ms(),
                "expires_at": None if expires_at is None else to_ms(expires_at),
                "revoked_at": None,
            }
            conn.execute(t.tokens.insert().values(**row))
            token = _token(row, user)
            append_audit(
                conn,
                actor=actor,
                action="create_token",
                entity_type=TOKEN_ENTITY,
                entity=token_id,
                after={"user": user, "name": name, "expires_at": row["expires_at"]},
            )
            return token

        return self._write(insert)

    def find_token(self, token_id: str) -> StoredToken | None:
        def read(conn: Connection) -> StoredToken | None:
            row = conn.execute(_token_query().where(_k.token_id == token_id)).first()
            if row is None:
                return None
            return StoredToken(
                token=_token(row._mapping, row.user_name), secret_hash=row.secret_hash
            )

        return self.db.read(read)

    def list_tokens(self, user: str | None = None) -> list[Token]:
        def read(conn: Connection) -> list[Token]:
            query = _token_query().order_by(_k.created_at, _k.token_id)
            if user is not None:
                query = query.where(_k.user_id == _user_id(conn, user))
            return [_token(row._mapping, row.user_name) for row in conn.execute(query)]

        return self.db.read(read)

    def revoke_token(self, token_id: str, *, actor: str) -> Token:
        def revoke(conn: Connection) -> Token:
            row = conn.execute(_token_query().where(_k.token_id == token_id)).first()
            if row is None:
                raise NotFoundError(f"No token {token_id!r}; see driftline tokens list")
            if row.revoked_at is not None:
                return _token(row._mapping, row.user_name)
            now = now_ms()
            conn.execute(t.tokens.update().where(_k.token_id == token_id).values(revoked_at=now))
            append_audit(
                conn,
                actor=actor,
                action="revoke_token",
                entity_type=TOKEN_ENTITY,
                entity=token_id,
                before={"user": row.user_name, "name": row.name, "revoked_at": None},
                after={"user": row.user_name, "name": row.name, "revoked_at": now},
            )
            return _token({**row._mapping, "revoked_at": now}, row.user_name)

        return self._write(revoke)


# -- rows to records ------------------------------------------------------------------


def _user_row(conn: Connection, name: str) -> Any:
    return conn.execute(sa.select(t.users).where(_u.name == name)).first()


def _user_id(conn: Connection, name: str) -> str:
    user_id = conn.execute(sa.select(_u.user_id).where(_u.name == name)).scalar()
    if user_id is None:
        raise NotFoundError(f"No user {name!r}; see driftline users list")
    return str(user_id)


def _user(values: Any) -> User:
    return User(
        user_id=values["user_id"],
        name=values["name"],
        role=Role(values["role"]),
        disabled=bool(values["disabled"]),
        created_at=from_ms(values["created_at"]),
        has_password=values["password_hash"] is not None,
    )


def _audited(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role.value,
        "disabled": user.disabled,
        "password": user.has_password,
    }


def _update_action(values: dict[str, Any]) -> str:
    if set(values) == {"role"}:
        return "change_role"
    if set(values) == {"disabled"}:
        return "disable_user" if values["disabled"] else "enable_user"
    return "update_user"


def _grant_entity(user: str, kind: ResourceKind, resource: str) -> str:
    return f"{user}/{kind.value}:{resource}"


def _grants(conn: Connection, user: str | None) -> list[Grant]:
    query = (
        sa.select(t.grants, _u.name.label("user_name"))
        .join(t.users, _u.user_id == _g.user_id)
        .order_by(_u.name, _g.resource_kind, _g.resource_name)
    )
    if user is not None:
        query = query.where(_u.name == user)
    return [
        Grant(
            user=row.user_name,
            kind=ResourceKind(row.resource_kind),
            resource=row.resource_name,
            permission=Permission(row.permission),
            created_at=from_ms(row.created_at),
        )
        for row in conn.execute(query)
    ]


def _token_query() -> sa.Select[Any]:
    return sa.select(t.tokens, _u.name.label("user_name")).join(t.users, _u.user_id == _k.user_id)


def _token(values: Any, user: str) -> Token:
    return Token(
        token_id=values["token_id"],
        user=user,
        name=values["name"],
        created_at=from_ms(values["created_at"]),
        expires_at=from_ms(values["expires_at"]),
        revoked_at=from_ms(values["revoked_at"]),
    )
