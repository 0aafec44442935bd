"""Request bodies of the user administration routes (``/api/v1/users``, ``/api/v1/tokens``).

Answers are records encoded with :mod:`driftline.api.codec`. Passwords travel only in
request bodies, never in answers; a token's secret is in the answer that creates it
and nowhere else.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CreateTokenBody", "CreateUserBody", "GrantBody", "UpdateUserBody"]

RoleName = Literal["admin", "editor", "viewer"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateUserBody(_Body):
    """A new user."""

    name: str = Field(min_length=1, max_length=128)
    role: RoleName
    password: str | None = Field(default=None, max_length=1024)


class UpdateUserBody(_Body):
    """Changes to a user; absent fields stay as they are.

    A ``password`` is changed in a request of its own; changing one's own password
    needs ``current_password``.
    """

    role: RoleName | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, max_length=1024)
    current_password: str | None = Field(default=None, max_length=1024)


class GrantBody(_Body):
    """A permission on exactly one experiment or model."""

    permission: Literal["read", "edit", "manage"]
    experiment: str | None = Field(default=None, min_length=1, max_length=256)
    model: str | None = Field(default=None, min_length=1, max_length=256)


class CreateTokenBody(_Body):
    """A new token; ``user`` defaults to the caller, ``expires_at`` is epoch milliseconds."""

    user: str | None = Field(default=None, min_length=1, max_length=128)
    name: str = Field(default="token", min_length=1, max_length=128)
    expires_at: int | None = Field(default=None, ge=0, le=253_402_300_799_000)
