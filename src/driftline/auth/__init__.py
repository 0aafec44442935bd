"""Users, roles, API tokens and grants of a driftline server (``driftline server --auth``).

- :mod:`~driftline.auth.models`: the records (:class:`User`, :class:`Grant`,
  :class:`Token`, :class:`Principal`).
- :mod:`~driftline.auth.policy`: who may do what (the role/grant table is there).
- :mod:`~driftline.auth.service`: user administration and credential checks.
- ``Workspace.auth``: the administration service of a workspace, built by the
  composition root from :mod:`~driftline.auth.stage`: directly on the database for a
  database URL (how the first admin is created, on the server's machine), or through
  the server for ``http(s)://`` (with ``DRIFTLINE_TOKEN``).

It is a package of its own rather than part of ``server/`` (where the design first put
auth) because two adapters use it: the server authenticates with it and the CLI
bootstraps and administers users with it, and adapters never import each other.

Example:
    >>> with Workspace.from_settings() as ws:                         # doctest: +SKIP
    ...     ws.auth.create_user("alice", role="admin")
    ...     print(ws.auth.create_token("alice").secret)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.core.lazy import lazy_exports

if TYPE_CHECKING:
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
    from driftline.auth.policy import allowed_users, require
    from driftline.auth.service import AuthService, UserAdmin
    from driftline.auth.store import AUTH_ENTITIES
    from driftline.core.metadata import Database

__all__ = [
    "AUTH_ENTITIES",
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
    "allowed_users",
    "auth_service",
    "require",
]

# Imported on first use (see driftline.core.lazy): declaring the stage stays cheap.
__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            ("Grant", "IssuedToken", "PasswordChange", "Permission", "Principal"),
            "driftline.auth.models",
        ),
        **dict.fromkeys(("ResourceKind", "Role", "Token", "User"), "driftline.auth.models"),
        **dict.fromkeys(("AuthService", "UserAdmin"), "driftline.auth.service"),
        **dict.fromkeys(("allowed_users", "require"), "driftline.auth.policy"),
        "AUTH_ENTITIES": "driftline.auth.store",
    },
)


def auth_service(database: Database, *, actor: str) -> AuthService:
    """The auth service on an open database (the caller keeps owning the database)."""
    from driftline.auth._sql import SqlAuthStore
    from driftline.auth.service import AuthService

    return AuthService(SqlAuthStore(database), actor=actor)
