"""Time helpers. Every timestamp driftline keeps is timezone-aware UTC.

Databases store milliseconds since the Unix epoch (an integer is exact, sortable and
identical on SQLite and PostgreSQL); records expose aware ``datetime`` objects.
A naive ``datetime`` given by a user is interpreted as UTC, whatever ``TZ`` says.
Conversions are exact integer arithmetic (no float rounding at the ends of the range
:mod:`driftline.core.values` allows).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import overload

__all__ = ["from_ms", "now_ms", "to_ms", "utcnow"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


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
        return (value - _EPOCH) // _MS
    return int(value)


@overload
def from_ms(ms: int) -> datetime: ...


@overload
def from_ms(ms: None) -> None: ...


def from_ms(ms: int | None) -> datetime | None:
    """Convert epoch milliseconds to an aware UTC datetime (``None`` stays ``None``)."""
    if ms is None:
        return None
    return _EPOCH + timedelta(milliseconds=ms)
