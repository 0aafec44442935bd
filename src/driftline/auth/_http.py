"""User administration over a driftline server (``DRIFTLINE_URI=http://...``).

Talks to the routes of ``driftline.server.routes.users``; the server decides who acts
(the token's user) and hashes every secret. Records cross the wire with
:mod:`driftline.api.codec`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from driftline.api.codec import decode, encode
from driftline.auth.models import (
    Grant,
    IssuedToken,
    PasswordChange,
    Permission,
    Principal,
    Role,
    Token,
    User,
)

if TYPE_CHECKING:
    from driftline.api.client import ApiClient

__all__ = ["HttpUserAdmin"]


def _path(name: str) -> str:
    return quote(name, safe="")


class HttpUserAdmin:
    """:class:`~driftline.auth.service.UserAdmin` over a server's REST API.

    Args:
        client: The API client (its token says who acts).
        owns_client: Close the client in :meth:`close`.
    """

    def __init__(self, client: ApiClient, *, owns_client: bool = True) -> None:
        self.client = client
        self._owns_client = owns_client

    def whoami(self) -> Principal:
        """The user the client's token authenticates as, with its grants."""
        return decode(Principal, self.client.get_json("whoami"))

    def create_user(self, name: str, *, role: str | Role, password: str | None = None) -> User:
        body = {"name": name, "role": str(encode(role)), "password": password}
        return decode(User, self.client.post_json("users", body))

    def list_users(self) -> list[User]:
        return [decode(User, u) for u in self.client.get_json("users")["users"]]

    def update_user(
        self,
        name: str,
        *,
        role: str | Role | None = None,
        disabled: bool | None = None,
    ) -> User:
        body: dict[str, Any] = {}
        if role is not None:
            body["role"] = str(encode(role))
        if disabled is not None:
            body["disabled"] = disabled
        return decode(User, self.client.patch_json(f"users/{_path(name)}", body))

    def set_password(
        self, name: str, password: str, *, current_password: str | None = None
    ) -> PasswordChange:
        body: dict[str, Any] = {"password": password}
        if current_password is not None:
            body["current_password"] = current_password
        answer = self.client.patch_json(f"users/{_path(name)}", body)
        return PasswordChange(
            user=decode(User, answer), revoked_tokens=int(answer["revoked_tokens"])
        )

    def grant(
        self,
        user: str,
        *,
        permission: str | Permission,
        experiment: str | None = None,
        model: str | None = None,
    ) -> Grant:
        body = {"permission": str(encode(permission)), "experiment": experiment, "model": model}
        return decode(Grant, self.client.put_json(f"users/{_path(user)}/grants", body))

    def revoke(self, user: str, *, experiment: str | None = None, model: str | None = None) -> None:
        params = {k: v for k, v in (("experiment", experiment), ("model", model)) if v is not None}
        self.client.delete_json(f"users/{_path(user)}/grants", params=params)

    def list_grants(self, user: str | None = None) -> list[Grant]:
        params = {} if user is None else {"user": user}
        return [decode(Grant, g) for g in self.client.get_json("grants", params=params)["grants"]]

    def create_token(
        self,
        user: str | None = None,
        *,
        name: str = "token",
        expires_at: datetime | None = None,
    ) -> IssuedToken:
        body = {"user": user, "name": name, "expires_at": encode(expires_at)}
        return decode(IssuedToken, self.client.post_json("tokens", body))

    def list_tokens(self, user: str | None = None) -> list[Token]:
        params = {} if user is None else {"user": user}
        return [decode(Token, t) for t in self.client.get_json("tokens", params=params)["tokens"]]

    def revoke_token(self, token_id: str) -> Token:
        return decode(Token, self.client.delete_json(f"tokens/{_path(token_id)}"))

    def close(self) -> None:
        """Close the client if this object opened it."""
        if self._owns_client:
            self.client.close()
