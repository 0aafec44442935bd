"""Time helpers. Every timestamp driftline keeps is timezone-aware UTC.

Databases store milliseconds since the Unix epoch (an integer is exact, sortable and
identical on SQLite and PostgreSQL); records expose aware ``datetime`` objects.
A naive ``datetime`` given by a user is interpreted as UTC, whatever ``TZ`` says.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import overload

__all__ = ["from_ms", "now_ms", "to_ms", "utcnow"]


def now_ms() -> int:
    """Milliseconds since the epoch, now."""
    return time.time_ns() // 1_000_000


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def to_ms(value: datetime | int | float) -> int:
    """Convert a datetime (naive means UTC) or epoch milliseconds to epoch milliseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    return int(value)


@overload
def from_ms(ms: int) -> datetime: ...


@overload
def from_ms(ms: None) -> None: ...


def from_ms(ms: int | None) -> datetime | None:
    """Convert epoch milliseconds to an aware UTC datetime (``None`` stays ``None``)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
