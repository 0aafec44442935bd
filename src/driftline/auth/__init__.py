"""Users, roles, API tokens and grants of a driftline server (``driftline server --auth``).

- :mod:`~driftline.auth.models`: the records (:class:`User`, :class:`Grant`,
  :class:`Token`, :class:`Principal`).
- :mod:`~driftline.auth.policy`: who may do what (the role/grant table is there).
- :mod:`~driftline.auth.service`: user administration and credential checks.
- :func:`open_auth`: the administration service for a workspace's settings: directly on
  the database for a database URL (how the first admin is created, on the server's
  machine), or through the server for ``http(s)://`` (with ``DRIFTLINE_TOKEN``).

It is a package of its own rather than part of ``server/`` (where the design first put
auth) because two adapters use it: the server authenticates with it and the CLI
bootstraps and administers users with it, and adapters never import each other.

Example:
    >>> auth = open_auth(Settings.load())                             # doctest: +SKIP
    >>> auth.create_user("alice", role="admin")                       # doctest: +SKIP
    >>> print(auth.create_token("alice").secret)                      # doctest: +SKIP
    >>> auth.close()                                                  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.auth.models import (
    Grant,
    IssuedToken,
    PasswordChange,
    Permission,
    Principal,
    ResourceKind,
    Role,
    Token,
    User,
)
from driftline.auth.service import AuthService, UserAdmin

if TYPE_CHECKING:
    from driftline.core.metadata import Database
    from driftline.settings import Settings

__all__ = [
    "AuthService",
    "Grant",
    "IssuedToken",
    "PasswordChange",
    "Permission",
    "Principal",
    "ResourceKind",
    "Role",
    "Token",
    "User",
    "UserAdmin",
    "auth_service",
    "open_auth",
]


def auth_service(database: Database, *, actor: str) -> AuthService:
    """The auth service on an open database (the caller keeps owning the database)."""
    from driftline.auth._sql import SqlAuthStore

    return AuthService(SqlAuthStore(database), actor=actor)


def open_auth(settings: Settings) -> UserAdmin:
    """User administration for ``settings``: on the database, or through the server.

    Close the result when done.
    """
    if settings.is_remote:
        from driftline.api.client import ApiClient
        from driftline.auth._http import HttpUserAdmin

        return HttpUserAdmin(ApiClient(settings.uri, token=settings.token))
    from driftline.auth._sql import SqlAuthStore
    from driftline.core.artifacts import open_byte_store
    from driftline.core.audit_anchors import anchor_audit_log
    from driftline.core.metadata import Database, ensure_schema

    database = Database(settings.uri)
    try:
        ensure_schema(database)
    except BaseException:
        database.dispose()
        raise
    # User changes are audited: anchor them as the workspace does its own changes.
    anchor_audit_log(database, open_byte_store(settings.artifact_root))
    return AuthService(SqlAuthStore(database), actor=settings.user, on_close=database.dispose)
