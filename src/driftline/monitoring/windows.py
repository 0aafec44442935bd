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

__all__ = ["format_duration", "parse_duration", "parse_since", "window_bounds"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_MAX_WINDOWS = 10_000


def parse_duration(
    value: str | int | timedelta, what: str = "duration", *, positive: bool = False
) -> timedelta:
    """``"30m"``, ``"12h"``, ``"1d"``, ``"2w"``, ``"1.5h"``, a ``timedelta`` or whole
    seconds (an int) as a ``timedelta``; the one duration reader of monitoring.

    Raises:
        InvalidArgumentError: Naming ``what`` (the field): not a duration, negative, or
            zero when ``positive``.
    """
    if isinstance(value, timedelta):
        delta = value
    elif isinstance(value, int) and not isinstance(value, bool):
        delta = timedelta(seconds=value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        delta = timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    else:
        raise InvalidArgumentError(
            f"Invalid {what} {value!r}: not a duration; write a number with a unit s, m, h, "
            "d or w, e.g. 30m, 12h, 1d or 2w"
        )
    if delta < timedelta(0) or (positive and delta == timedelta(0)):
        must = "longer than zero" if positive else "not negative"
        raise InvalidArgumentError(f"Invalid {what} {value!r}: it must be {must}")
    return delta


def format_duration(seconds: int) -> str:
    """The shortest exact text :func:`parse_duration` reads back (``86400`` ->
    ``1d``)."""
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_since(value: str | timedelta | datetime, now: datetime) -> datetime:
    """A start time: a datetime (naive is UTC) or a duration back from ``now``."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return now - parse_duration(value, "since")


def window_bounds(
    window: str | int | timedelta, since: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """``(start, end)`` of each window from ``since`` to ``until`` (module docstring)."""
    length = parse_duration(window, "window", positive=True)
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
