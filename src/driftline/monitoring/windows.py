"""Durations (``"1d"``, ``"12h"``) and the windows of a monitoring range.

Windows are aligned to multiples of their length since the epoch (UTC), so daily windows
are UTC days and two checks of the same range see the same windows. The range runs from
``since`` (rounded down to a window start) to ``until`` (default now); the last window
may be partial (it ends at ``until``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from driftline.errors import InvalidArgumentError

__all__ = ["parse_duration", "parse_since", "window_bounds"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_MAX_WINDOWS = 10_000


def parse_duration(value: str | timedelta, what: str = "duration") -> timedelta:
    """``"30m"``, ``"12h"``, ``"1d"``, ``"2w"`` (or a ``timedelta``) as a ``timedelta``."""
    if isinstance(value, timedelta):
        delta = value
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        delta = timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    else:
        raise InvalidArgumentError(
            f"The {what} {value!r} is not a duration; write e.g. 30m, 12h, 1d or 2w"
        )
    if delta < timedelta(0):
        raise InvalidArgumentError(f"The {what} must not be negative, got {value!r}")
    return delta


def parse_since(value: str | timedelta | datetime, now: datetime) -> datetime:
    """A start time: a datetime (naive is UTC) or a duration back from ``now``."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return now - parse_duration(value, "since")


def window_bounds(
    window: str | timedelta, since: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """``(start, end)`` of each window from ``since`` to ``until`` (module docstring)."""
    length = parse_duration(window, "window")
    if length <= timedelta(0):
        raise InvalidArgumentError(f"A window must be longer than zero, got {window!r}")
    if until <= since:
        raise InvalidArgumentError(
            f"since ({since.isoformat()}) must be before {until.isoformat()}"
        )
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    start = epoch + ((since - epoch) // length) * length
    count = -(-(until - start) // length)
    if count > _MAX_WINDOWS:
        raise InvalidArgumentError(
            f"{count} windows of {window} from {since.isoformat()}: use a longer window "
            f"or a later since (at most {_MAX_WINDOWS})"
        )
    return [(start + i * length, min(start + (i + 1) * length, until)) for i in range(count)]
