"""Cron expressions with a time zone: validation that names the field, next due times.

Five fields (minute hour day-of-month month day-of-week) as in crontab(5), with
``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly`` and ``@yearly``
(``@annually``). Evaluation is cronsim's (the evaluator of healthchecks.io, which
follows Debian cron across daylight-saving changes); time zones are IANA names read
through :mod:`zoneinfo`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from driftline.core.clock import from_ms, to_ms
from driftline.errors import InvalidArgumentError

__all__ = ["FIELDS", "Cron", "parse_cron", "zone"]

FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L"),
    ("month", "1-12 or jan-dec"),
    ("day-of-week", "0-7 or sun-sat, 1#2 for the second Monday"),
)
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_SYNTAX = "*, numbers, lists a,b, ranges a-b, steps */n or a-b/n"


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; an unknown name suggests close ones."""
    from zoneinfo import ZoneInfoNotFoundError, available_timezones

    try:
        if not name or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        near = difflib.get_close_matches(name, sorted(available_timezones()), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else "."
        raise InvalidArgumentError(
            f"Unknown time zone {name!r}{hint} Use an IANA name such as UTC or Europe/Berlin"
        ) from None


@dataclass(frozen=True)
class Cron:
    """A checked cron expression in a time zone (build it with :func:`parse_cron`)."""

    expression: str
    timezone: str

    @cached_property
    def _fields(self) -> str:
        return ALIASES.get(self.expression.strip().lower(), self.expression)

    def next_after(self, ms: int) -> int:
        """The first due time strictly after ``ms`` (epoch milliseconds)."""
        from cronsim import CronSim

        # cronsim returns the first match strictly after a whole second.
        start = from_ms(ms).astimezone(zone(self.timezone)).replace(microsecond=0)
        return to_ms(next(CronSim(self._fields, start)))

    def due_between(self, after_ms: int, until_ms: int, limit: int) -> list[int]:
        """Due times in ``(after_ms, until_ms]``, oldest first, at most ``limit``."""
        found: list[int] = []
        at = after_ms
        while len(found) < limit:
            at = self.next_after(at)
            if at > until_ms:
                break
            found.append(at)
        return found

    def describe(self) -> str:
        """In words, as cronsim explains it (``At 03:00 every day``)."""
        from cronsim import CronSim

        try:
            return str(CronSim(self._fields, datetime.now(zone(self.timezone))).explain())
        except Exception:  # explain() is best effort; the expression itself is valid
            return self.expression


def parse_cron(expression: str, timezone: str = "UTC") -> Cron:
    """Check ``expression`` and ``timezone``; errors name the field and its position.

    Example:
        >>> parse_cron("0 3 * * *", "Europe/Berlin").describe()
        'At 03:00 every day'
        >>> parse_cron("61 3 * * *")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        driftline.errors.InvalidArgumentError: ... field 1 (minute) '61' at character 1 ...
    """
    from cronsim import CronSim, CronSimError

    if not isinstance(expression, str) or not expression.strip():
        raise InvalidArgumentError(
            "Empty cron expression; give five fields: minute hour day-of-month month "
            'day-of-week, e.g. "0 3 * * *" for 03:00 every day'
        )
    zone(timezone)
    text = ALIASES.get(expression.strip().lower(), expression)
    if text.strip().startswith("@"):
        raise InvalidArgumentError(
            f"Unknown cron shortcut {expression.strip()!r}; known: {', '.join(ALIASES)}"
        )
    parts = text.split()
    if len(parts) != len(FIELDS):
        raise InvalidArgumentError(
            f"Invalid cron expression {expression!r}: it has {len(parts)} field(s), a cron "
            "expression has 5: minute hour day-of-month month day-of-week "
            '(e.g. "0 3 * * *" for 03:00 every day)'
        )
    start = datetime(2000, 1, 1)
    offset = 0
    for index, (part, (field, values)) in enumerate(zip(parts, FIELDS, strict=True)):
        offset = text.index(part, offset)
        probe = ["*"] * len(FIELDS)
        probe[index] = part
        try:
            CronSim(" ".join(probe), start)
        except CronSimError:
            raise InvalidArgumentError(
                f"Invalid cron expression {expression!r}: field {index + 1} ({field}) "
                f"{part!r} at character {offset + 1} is not valid; the {field} takes "
                f"{values} ({_SYNTAX})"
            ) from None
        offset += len(part)
    try:
        CronSim(text, start)
    except CronSimError as exc:  # fields valid alone, not together
        raise InvalidArgumentError(
            f"Invalid cron expression {expression!r}: {exc} (the fields are valid alone, "
            "not together)"
        ) from None
    cron = Cron(expression.strip(), timezone)
    try:
        cron.next_after(to_ms(start))
    except (StopIteration, CronSimError):
        raise InvalidArgumentError(
            f"The cron expression {expression!r} never comes due (e.g. February 30th)"
        ) from None
    return cron
