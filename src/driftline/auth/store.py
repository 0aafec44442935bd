"""The narrow storage protocol of users, grants and tokens.

Every change takes the ``actor`` and is written with its audit entry in one
transaction, so the audit log and the permissions never disagree. Those entries are of
the entity types in :data:`AUTH_ENTITIES`, and only admins read them on a server: they
name every user, role and grant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from driftline.auth.models import Grant, Permission, ResourceKind, Role, Token, User

__all__ = [
    "AUTH_ENTITIES",
    "GRANT_ENTITY",
    "TOKEN_ENTITY",
    "USER_ENTITY",
    "AuthStore",
    "Credentials",
    "StoredToken",
]

#: The audit log's entity types of users, grants and tokens.
USER_ENTITY = "user"
GRANT_ENTITY = "grant"
TOKEN_ENTITY = "token"
#: Every entity type the auth stage writes in the audit log.
AUTH_ENTITIES: frozenset[str] = frozenset({USER_ENTITY, GRANT_ENTITY, TOKEN_ENTITY})


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """What authenticating a user needs: the user, its password hash, its grants."""

    user: User
    password_hash: str | None = field(default=None, repr=False)
    grants: tuple[Grant, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredToken:
    """A token with the salted hash of its secret."""

    token: Token
    secret_hash: str = field(repr=False)


class AuthStore(Protocol):
    """Users, grants and tokens (``driftline.auth._sql.SqlAuthStore`` on the database)."""

    def add_user(self, *, name: str, role: Role, password_hash: str | None, actor: str) -> User:
        """Create a user; ``AlreadyExistsError`` if the name is taken."""
        ...

    def find_user(self, name: str) -> User | None:
        """The user called ``name``, or ``None``."""
        ...

    def list_users(self) -> list[User]:
        """Every user, by name."""
        ...

    def update_user(
        self,
        name: str,
        *,
        actor: str,
        role: Role | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change what is given (``None`` keeps it); ``NotFoundError`` for unknown users."""
        ...

    def set_password(
        self, name: str, password_hash: str, *, keep_token: str | None, actor: str
    ) -> tuple[User, int]:
        """Set ``name``'s password and revoke its tokens but ``keep_token``, in one
        transaction: ``(user, how many tokens were revoked)``."""
        ...

    def find_credentials(self, name: str) -> Credentials | None:
        """The user, password hash and grants of ``name``, or ``None``."""
        ...

    def put_grant(
        self,
        user: str,
        kind: ResourceKind,
        resource: str,
        permission: Permission,
        *,
        actor: str,
    ) -> Grant:
        """Grant (or change the grant of) ``user`` on one experiment or model."""
        ...

    def delete_grant(self, user: str, kind: ResourceKind, resource: str, *, actor: str) -> bool:
        """Remove a grant; ``False`` if there was none."""
        ...

    def list_grants(self, user: str | None = None) -> list[Grant]:
        """Grants of one user, or of everyone."""
        ...

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
        """Store a new token of ``user``."""
        ...

    def find_token(self, token_id: str) -> StoredToken | None:
        """A token with its secret's hash, or ``None``."""
        ...

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """Tokens of one user, or of everyone, oldest first."""
        ...

    def revoke_token(self, token_id: str, *, actor: str) -> Token:
        """Revoke a token (revoking twice changes nothing); ``NotFoundError`` if unknown."""
        ...
