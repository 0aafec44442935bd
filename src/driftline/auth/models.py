"""Records of authentication: users, their grants and API tokens.

Secrets never live in these records: a :class:`User` says whether it has a password,
a :class:`Token` carries no secret, and only :class:`IssuedToken` (returned once, when a
token is created) holds the string the caller presents, hidden from ``repr``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "Grant",
    "IssuedToken",
    "PasswordChange",
    "Permission",
    "Principal",
    "ResourceKind",
    "Role",
    "Token",
    "User",
]


class Role(enum.StrEnum):
    """A user's global role (see :mod:`driftline.auth.policy` for what each may do)."""

    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


class Permission(enum.StrEnum):
    """What a grant allows on one experiment or model; each level includes the ones below."""

    READ = "read"
    EDIT = "edit"
    MANAGE = "manage"

    @property
    def level(self) -> int:
        """``read`` < ``edit`` < ``manage``."""
        return _LEVELS[self]


_LEVELS = {Permission.READ: 0, Permission.EDIT: 1, Permission.MANAGE: 2}


class ResourceKind(enum.StrEnum):
    """What a grant is on."""

    EXPERIMENT = "experiment"
    MODEL = "model"


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A user of a driftline server.

    Attributes:
        user_id: Stable id (tokens and grants point to it).
        name: Unique login name.
        role: Global role.
        disabled: A disabled user cannot authenticate (tokens included).
        created_at: When the user was created.
        has_password: Whether a password is set (otherwise the user signs in with tokens).
    """

    user_id: str
    name: str
    role: Role
    disabled: bool = False
    created_at: datetime
    has_password: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """A permission of one user on one named experiment or model.

    Resources are named, not referenced by id, so a grant can be given before the
    experiment or model exists.
    """

    user: str
    kind: ResourceKind
    resource: str
    permission: Permission
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """An API token, without its secret.

    Attributes:
        token_id: Public id; also the middle part of the token string.
        user: Name of the user the token acts as.
        name: A label for people (``laptop``, ``ci``).
        created_at: When it was created.
        expires_at: When it stops working (``None``: never).
        revoked_at: When it was revoked (``None``: not revoked).
    """

    token_id: str
    user: str
    name: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def active_at(self, when: datetime) -> bool:
        """Whether the token authenticates at ``when`` (not revoked, not expired)."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or when < self.expires_at


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedToken:
    """A token just created: the only time its secret string is available.

    Attributes:
        token: The stored token.
        secret: The string to present (``dl_<token_id>_<secret>``); it is not stored
            anywhere, so it cannot be shown again.
    """

    token: Token
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordChange:
    """A password just set, and what it ended.

    Attributes:
        user: The user, after the change.
        revoked_tokens: How many of the user's tokens the change revoked (all but the
            one the change was made with, if that was the user's own).
    """

    user: User
    revoked_tokens: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller: the user with its grants, as of authentication.

    Attributes:
        user_id: The user's id.
        name: The user's name (recorded as the actor of what the request changes).
        role: The user's global role.
        grants: The user's grants.
        token_id: The token the caller presented, if it authenticated with one.
    """

    user_id: str
    name: str
    role: Role
    grants: tuple[Grant, ...] = ()
    token_id: str | None = None

    def permission_on(self, kind: ResourceKind, resource: str) -> Permission | None:
        """The grant on one experiment or model, if any."""
        for grant in self.grants:
            if grant.kind is kind and grant.resource == resource:
                return grant.permission
        return None
