"""Strings and numbers a request may carry: bounded by the columns they end up in.

PostgreSQL refuses NUL characters in text and numbers beyond its column types; checking
both at the edge turns what would be a database error (a 500) into a clear 400.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from driftline.core.values import INT64_MAX, MAX_MS, MIN_MS

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "Count",
    "Digest",
    "EpochMs",
    "Id",
    "Label",
    "Name",
    "Number",
    "Text",
    "has_nul",
    "no_nul",
]

INT32_MAX = 2**31 - 1


def has_nul(value: Any) -> bool:
    """Whether a string, or any string inside lists and mappings, holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def no_nul(value: Any) -> Any:
    """A validator: ``value`` unchanged, or ``ValueError`` if a database could not store it
    as text (a NUL character, or a lone UTF-16 surrogate that has no UTF-8 form)."""
    if has_nul(value):
        raise ValueError("must not contain NUL characters")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(no_nul)]
"""Free text (a message, a description): any length, no NUL."""


Digest = Annotated[str, StringConstraints(max_length=80), AfterValidator(no_nul)]
"""A content digest (``blake3:<hex>``); its form is checked where it is used."""

Id = Annotated[str, StringConstraints(max_length=32), AfterValidator(no_nul)]
"""A record id (a run id, an evaluation id)."""

Name = Annotated[str, StringConstraints(max_length=256), AfterValidator(no_nul)]
"""A name or a person (at most 256 characters)."""

Label = Annotated[str, StringConstraints(max_length=64), AfterValidator(no_nul)]
"""A short label (a flavor, a task)."""

Number = Annotated[int, Field(ge=1, le=INT32_MAX)]
"""A version number (1, 2, ...)."""

Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""A count or a size in bytes."""

EpochMs = Annotated[int, Field(ge=MIN_MS, le=MAX_MS)]
"""A time in milliseconds since the epoch."""
