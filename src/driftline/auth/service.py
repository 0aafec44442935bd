"""User administration and authentication rules.

:class:`AuthService` works on an :class:`~driftline.auth.store.AuthStore` (the database):
it validates names and roles, hashes passwords and token secrets, and verifies
credentials. :class:`UserAdmin` is what the CLI needs of it; the remote implementation
(``driftline.auth._http.HttpUserAdmin``) talks to a server's ``/api/v1/users`` routes.

Unlike the stages, the remote side is a service and not a store: passwords and token
secrets must be hashed, and the acting user decided, on the server, never by a client.

A credential cannot grant anything that outlives it. The server passes the
authenticated ``caller`` to every method that creates or widens access, and when the
caller's credential is a token with an expiry:

- a token it creates (for anyone) expires no later than the caller's token;
- it cannot create users, set another user's password, change a role, enable a user
  or give a grant: those last until someone undoes them, so they need a credential
  without expiry (a password, or a token without expiry);
- disabling users and revoking grants or tokens stay allowed: they only take access
  away, and an expiring admin token is the tool for exactly that in an incident.

Changing one's own password needs the current one (when there is one), whatever the
credential: else a stolen short-lived token would set a password of its own choosing
and with it mint tokens without expiry. Wrong current passwords count against the
failed-password limits (:mod:`driftline.auth.throttle`). Setting a password revokes
every other token of the user (see :meth:`AuthService.set_password`).

Example:
    >>> auth = AuthService(SqlAuthStore(db), actor="root")          # doctest: +SKIP
    >>> auth.create_user("alice", role="admin")                      # doctest: +SKIP
    >>> issued = auth.create_token("alice", name="laptop")          # doctest: +SKIP
    >>> auth.authenticate_token(issued.secret).name                  # doctest: +SKIP
    'alice'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from driftline.auth import hashing
from driftline.auth.cache import CredentialCache
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
from driftline.auth.store import AuthStore, Credentials
from driftline.auth.throttle import FailureThrottle
from driftline.core.clock import to_ms, utcnow
from driftline.core.ids import new_id
from driftline.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)

__all__ = ["AuthService", "UserAdmin", "check_user_name", "parse_role", "resource_of"]

# No ':' (basic auth splits on it) and no '/' (user names are URL path segments).
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_TOKEN_ID = re.compile(r"^[0-9a-f]{32}$")
_MAX_RESOURCE = 256
_MAX_TOKEN_NAME = 128


def check_user_name(name: str) -> str:
    """Return ``name`` if it is a valid user name, else raise ``InvalidArgumentError``."""
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"Invalid user name {name!r}: 1-128 characters, letters, digits and . _ @ + -, "
            "starting with a letter or digit"
        )
    return name


def _known_name(name: str | None) -> str | None:
    """A user name to look up; one no user can have is ``NotFoundError`` before any query."""
    if name is not None and not (isinstance(name, str) and _USER_NAME.fullmatch(name)):
        raise NotFoundError(f"No user {name!r}; see driftline users list")
    return name


def _known_token_id(token_id: str) -> str:
    if not (isinstance(token_id, str) and _TOKEN_ID.fullmatch(token_id)):
        raise NotFoundError(f"No token {token_id!r}; see driftline tokens list")
    return token_id


def parse_role(role: str | Role) -> Role:
    """A :class:`Role` from its name, with a clear error."""
    try:
        return Role(role)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidArgumentError(f"Unknown role {role!r}; known: {known}") from None


def _permission(permission: str | Permission) -> Permission:
    try:
        return Permission(permission)
    except ValueError:
        known = ", ".join(p.value for p in Permission)
        raise InvalidArgumentError(f"Unknown permission {permission!r}; known: {known}") from None


def resource_of(experiment: str | None, model: str | None) -> tuple[ResourceKind, str]:
    """The one resource a grant names: exactly one of ``experiment`` and ``model``."""
    if (experiment is None) == (model is None):
        raise InvalidArgumentError("Name exactly one of an experiment or a model")
    kind, name = (
        (ResourceKind.EXPERIMENT, experiment)
        if experiment is not None
        else (ResourceKind.MODEL, model)
    )
    assert name is not None
    if not name.strip() or len(name) > _MAX_RESOURCE or any(ord(c) < 32 for c in name):
        raise InvalidArgumentError(
            f"Invalid {kind.value} name {name!r}: 1-{_MAX_RESOURCE} printable characters"
        )
    return kind, name


class UserAdmin(Protocol):
    """User administration, local (:class:`AuthService`) or remote (over a server)."""

    def create_user(self, name: str, *, role: str | Role, password: str | None = None) -> User:
        """Create a user; ``AlreadyExistsError`` if the name is taken."""
        ...

    def list_users(self) -> list[User]:
        """Every user, by name."""
        ...

    def update_user(
        self,
        name: str,
        *,
        role: str | Role | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a user's role or disabled flag (``None`` keeps it)."""
        ...

    def set_password(
        self, name: str, password: str, *, current_password: str | None = None
    ) -> PasswordChange:
        """Set a user's password, revoking its other tokens.

        Through a server, one's own password needs ``current_password``.
        """
        ...

    def grant(
        self,
        user: str,
        *,
        permission: str | Permission,
        experiment: str | None = None,
        model: str | None = None,
    ) -> Grant:
        """Give ``user`` a permission on one experiment or model."""
        ...

    def revoke(self, user: str, *, experiment: str | None = None, model: str | None = None) -> None:
        """Remove ``user``'s grant on one experiment or model."""
        ...

    def list_grants(self, user: str | None = None) -> list[Grant]:
        """Grants of one user, or of everyone."""
        ...

    def create_token(
        self,
        user: str | None = None,
        *,
        name: str = "token",
        expires_at: datetime | None = None,
    ) -> IssuedToken:
        """A new token (its secret is in the result and nowhere else)."""
        ...

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """Tokens of one user, or of everyone."""
        ...

    def revoke_token(self, token_id: str) -> Token:
        """Revoke a token."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class AuthService:
    """Users, grants and tokens on a store, and credential verification.

    Args:
        store: Where users, grants and tokens live.
        actor: Recorded in the audit log as the author of changes, unless a call names
            another (the server passes the authenticated caller).
        cache: The credential cache (a fresh one by default).
        throttle: Limits on failed password checks (a fresh one by default).
        on_close: Called by :meth:`close` (e.g. to dispose a database opened for it).
    """

    def __init__(
        self,
        store: AuthStore,
        *,
        actor: str,
        cache: CredentialCache | None = None,
        throttle: FailureThrottle | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.actor = actor
        self.cache = cache or CredentialCache()
        self.throttle = throttle or FailureThrottle()
        self._on_close = on_close

    # -- users --------------------------------------------------------------------

    def create_user(
        self,
        name: str,
        *,
        role: str | Role,
        password: str | None = None,
        actor: str | None = None,
        caller: Principal | None = None,
    ) -> User:
        """Create a user with a role and, optionally, a password.

        ``caller`` (the server's authenticated caller) needs a credential without expiry.
        """
        check_user_name(name)
        self.require_lasting(caller, "Creating a user")
        password_hash = None if password is None else hashing.hash_password(password)
        user = self.store.add_user(
            name=name, role=parse_role(role), password_hash=password_hash, actor=actor or self.actor
        )
        self.cache.clear()
        return user

    def get_user(self, name: str) -> User:
        """The user called ``name``; ``NotFoundError`` if there is none."""
        user = self.store.find_user(str(_known_name(name)))
        if user is None:
            raise NotFoundError(f"No user {name!r}; see driftline users list")
        return user

    def list_users(self) -> list[User]:
        """Every user, by name."""
        return self.store.list_users()

    def update_user(
        self,
        name: str,
        *,
        role: str | Role | None = None,
        disabled: bool | None = None,
        actor: str | None = None,
        caller: Principal | None = None,
    ) -> User:
        """Change a user's role or disabled flag (``None`` keeps it).

        A role change or enabling a user needs a ``caller`` credential without expiry;
        disabling does not (it only takes access away).
        """
        new_role = None if role is None else parse_role(role)
        if new_role is not None:
            self.require_lasting(caller, "Changing a role")
        if disabled is False:
            self.require_lasting(caller, "Enabling a user")
        user = self.store.update_user(
            str(_known_name(name)), actor=actor or self.actor, role=new_role, disabled=disabled
        )
        self.cache.clear()
        return user

    def set_password(
        self,
        name: str,
        password: str,
        *,
        current_password: str | None = None,
        actor: str | None = None,
        caller: Principal | None = None,
        client: str = "",
    ) -> PasswordChange:
        """Set ``name``'s password and revoke all of its tokens but the caller's own.

        With no ``caller`` (working on the database, as on the server's machine) nothing
        more is asked. Through the server (``caller`` given):

        - one's own password needs ``current_password`` if a password is set, checked
          under the failed-password limits for ``client``; setting a first password
          needs a credential without expiry;
        - another user's password (the route lets only admins) needs no current
          password, but a credential without expiry.

        Why revoke the other tokens: a password change is how a user answers a
        suspected leak, so the tokens minted with the old password must end with it.
        The token the caller changed its own password with is kept: the caller just
        proved the current password, the token expires when it always would, and
        revoking it would cut off the session that made the change. The credential
        cache is cleared, so the old password and the revoked tokens stop working at
        once in this process (within :data:`driftline.auth.cache.TTL` elsewhere).
        """
        user = str(_known_name(name))
        hashing.check_password_strength(password)
        keep_token: str | None = None
        if caller is not None and caller.name == user:
            credentials = self.store.find_credentials(user)
            if credentials is None:
                raise NotFoundError(f"No user {name!r}; see driftline users list")
            if credentials.password_hash is None:
                self.require_lasting(caller, "Setting a first password")
            else:
                self._check_current_password(user, current_password, credentials, client)
            keep_token = caller.token_id
        elif caller is not None:
            self.require_lasting(caller, "Setting another user's password")
        updated, revoked = self.store.set_password(
            user, hashing.hash_password(password), keep_token=keep_token, actor=actor or self.actor
        )
        self.cache.clear()
        return PasswordChange(user=updated, revoked_tokens=revoked)

    def _check_current_password(
        self, name: str, current: str | None, credentials: Credentials, client: str
    ) -> None:
        if current is None:
            raise InvalidArgumentError(
                "Changing your own password needs your current one: send current_password "
                "(driftline users passwd NAME --current-password-stdin --password-stdin)"
            )
        self.throttle.check(client, name)
        assert credentials.password_hash is not None
        if not hashing.verify_password(current, credentials.password_hash):
            self.throttle.failed(client, name)
            raise PermissionDeniedError(
                "The current password is wrong; the password was not changed"
            )
        self.throttle.succeeded(client, name)

    # -- grants -------------------------------------------------------------------

    def grant(
        self,
        user: str,
        *,
        permission: str | Permission,
        experiment: str | None = None,
        model: str | None = None,
        actor: str | None = None,
        caller: Principal | None = None,
    ) -> Grant:
        """Give ``user`` ``permission`` on one experiment or model (replacing any grant).

        ``caller`` (the server's authenticated caller) needs a credential without expiry.
        """
        kind, resource = resource_of(experiment, model)
        self.require_lasting(caller, "Giving a grant")
        result = self.store.put_grant(
            str(_known_name(user)),
            kind,
            resource,
            _permission(permission),
            actor=actor or self.actor,
        )
        self.cache.clear()
        return result

    def revoke(
        self,
        user: str,
        *,
        experiment: str | None = None,
        model: str | None = None,
        actor: str | None = None,
    ) -> None:
        """Remove ``user``'s grant on one experiment or model; ``NotFoundError`` if none."""
        kind, resource = resource_of(experiment, model)
        if not self.store.delete_grant(
            str(_known_name(user)), kind, resource, actor=actor or self.actor
        ):
            raise NotFoundError(f"User {user!r} has no grant on {kind.value} {resource!r}")
        self.cache.clear()

    def list_grants(self, user: str | None = None) -> list[Grant]:
        """Grants of one user, or of everyone."""
        return self.store.list_grants(_known_name(user))

    # -- tokens -------------------------------------------------------------------

    def create_token(
        self,
        user: str | None = None,
        *,
        name: str = "token",
        expires_at: datetime | None = None,
        actor: str | None = None,
        caller: Principal | None = None,
    ) -> IssuedToken:
        """Create a token for ``user``; the result holds the secret, shown only this once.

        A token made by a ``caller`` holding an expiring token (admins included, and for
        any user) expires no later than the caller's token.
        """
        if user is None:
            raise InvalidArgumentError(
                "Name the user the token is for: --user NAME (working directly on the "
                "database, nobody is signed in)"
            )
        if not name or len(name) > _MAX_TOKEN_NAME or any(ord(c) < 32 for c in name):
            raise InvalidArgumentError(
                f"Invalid token name {name!r}: 1-{_MAX_TOKEN_NAME} printable characters"
            )
        if expires_at is not None and to_ms(expires_at) <= to_ms(utcnow()):
            raise InvalidArgumentError("A token's expiry must be in the future")
        parent = self.credential_expiry(caller)
        if parent is not None and (expires_at is None or expires_at > parent):
            raise InvalidArgumentError(
                f"A token made with a token cannot outlive it: give expires_at no later than "
                f"{parent.isoformat()}, or sign in with your password to make a longer one"
            )
        token_id, secret = new_id(), hashing.new_token_secret()
        token = self.store.add_token(
            token_id=token_id,
            user=str(_known_name(user)),
            name=name,
            secret_hash=hashing.hash_token_secret(secret),
            expires_at=expires_at,
            actor=actor or self.actor,
        )
        return IssuedToken(token=token, secret=hashing.format_token(token_id, secret))

    def get_token(self, token_id: str) -> Token:
        """A token (without its secret); ``NotFoundError`` if unknown."""
        stored = self.store.find_token(_known_token_id(token_id))
        if stored is None:
            raise NotFoundError(f"No token {token_id!r}; see driftline tokens list")
        return stored.token

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """Tokens of one user, or of everyone, oldest first."""
        return self.store.list_tokens(_known_name(user))

    def revoke_token(self, token_id: str, *, actor: str | None = None) -> Token:
        """Revoke a token; it stops working at once here, within the cache TTL elsewhere."""
        token = self.store.revoke_token(_known_token_id(token_id), actor=actor or self.actor)
        self.cache.clear()
        return token

    # -- what a credential may grant ----------------------------------------------

    def credential_expiry(self, caller: Principal | None) -> datetime | None:
        """When the caller's credential stops working; ``None`` if it does not expire
        (a password, a token without expiry, or no caller: the database itself)."""
        if caller is None or caller.token_id is None:
            return None
        return self.get_token(caller.token_id).expires_at

    def require_lasting(self, caller: Principal | None, what: str) -> None:
        """Refuse (``PermissionDeniedError``) if ``caller`` holds an expiring token.

        ``what`` (e.g. ``"Creating a user"``) lasts until someone undoes it, so an
        expiring credential granting it would outlive itself.
        """
        expiry = self.credential_expiry(caller)
        if expiry is not None:
            raise PermissionDeniedError(
                f"{what} lasts beyond your token, which expires at "
                f"{expiry:%Y-%m-%d %H:%M:%SZ}; sign in with your password or a token "
                "without expiry"
            )

    # -- authentication -----------------------------------------------------------

    def authenticate_token(self, value: str) -> Principal:
        """The principal a token string stands for; ``UnauthenticatedError`` otherwise."""
        key = CredentialCache.key("token", value)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        try:
            token_id, secret = hashing.parse_token(value)
        except InvalidArgumentError:
            raise UnauthenticatedError(
                "Invalid token: expected dl_<id>_<secret> from `driftline tokens create`"
            ) from None
        stored = self.store.find_token(token_id)
        if stored is None or not hashing.verify_token_secret(secret, stored.secret_hash):
            raise UnauthenticatedError("Invalid token; create one with `driftline tokens create`")
        token, now = stored.token, utcnow()
        if token.revoked_at is not None:
            raise UnauthenticatedError(f"Token {token_id} was revoked; create a new one")
        if token.expires_at is not None and now >= token.expires_at:
            raise UnauthenticatedError(
                f"Token {token_id} expired at {token.expires_at:%Y-%m-%d %H:%M:%SZ}; "
                "create a new one"
            )
        principal = self._principal(self.store.find_credentials(token.user), token_id)
        left = None if token.expires_at is None else (token.expires_at - now).total_seconds()
        self.cache.put(key, principal, max_age=left)
        return principal

    def authenticate_password(self, name: str, password: str, *, client: str = "") -> Principal:
        """The principal of a user name and password; ``UnauthenticatedError`` otherwise.

        ``client`` (the caller's address) is what failed checks are counted against:
        past the limits of :mod:`driftline.auth.throttle` the check is refused with
        ``TooManyAttemptsError`` before any hashing.
        """
        key = CredentialCache.key("password", name, password)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        self.throttle.check(client, name)
        credentials = self.store.find_credentials(name) if _USER_NAME.fullmatch(name) else None
        if credentials is None or credentials.password_hash is None:
            hashing.waste_password_check(password)
            self.throttle.failed(client, name)
            raise UnauthenticatedError("Wrong user name or password")
        if not hashing.verify_password(password, credentials.password_hash):
            self.throttle.failed(client, name)
            raise UnauthenticatedError("Wrong user name or password")
        self.throttle.succeeded(client, name)
        principal = self._principal(credentials, None)
        self.cache.put(key, principal)
        return principal

    def authenticate_authorization(self, header: str, *, client: str = "") -> Principal:
        """The principal of an HTTP ``Authorization`` header (``Bearer`` or ``Basic``),
        sent from the address ``client``."""
        kind, parts = _parse_authorization(header)
        if kind == "token":
            return self.authenticate_token(parts[0])
        return self.authenticate_password(parts[0], parts[1], client=client)

    def peek_authorization(self, header: str) -> Principal | None:
        """The cached principal of an ``Authorization`` header, without checking anything.

        ``None`` when it is not cached (or malformed): then call
        :meth:`authenticate_authorization`, which may be slow.
        """
        try:
            kind, parts = _parse_authorization(header)
        except UnauthenticatedError:
            return None
        return self.cache.get(CredentialCache.key(kind, *parts))

    @staticmethod
    def _principal(credentials: Credentials | None, token_id: str | None) -> Principal:
        if credentials is None:
            raise UnauthenticatedError("Invalid token; its user no longer exists")
        user = credentials.user
        if user.disabled:
            raise UnauthenticatedError(f"User {user.name!r} is disabled; ask an admin")
        return Principal(
            user_id=user.user_id,
            name=user.name,
            role=user.role,
            grants=credentials.grants,
            token_id=token_id,
        )

    def close(self) -> None:
        """Run the ``on_close`` its creator gave (once)."""
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


def _parse_authorization(header: str) -> tuple[str, tuple[str, ...]]:
    """``("token", (token,))`` or ``("password", (name, password))`` of a header value."""
    import base64
    import binascii

    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and value:
        return "token", (value,)
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise UnauthenticatedError("Malformed basic credentials (not base64)") from None
        try:
            text = decoded.decode("utf-8")
        except UnicodeDecodeError:
            text = decoded.decode("latin-1")
        name, colon, password = text.partition(":")
        if not colon:
            raise UnauthenticatedError("Malformed basic credentials (expected name:password)")
        if hashing.looks_like_token(password):
            # A token as the password: the MLflow client can only send basic auth.
            return "token", (password,)
        return "password", (name, password)
    raise UnauthenticatedError(
        "Unsupported Authorization header: use 'Bearer <token>' or HTTP basic auth"
    )
