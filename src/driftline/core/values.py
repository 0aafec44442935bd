"""The ranges of numbers and times driftline stores: what every backend can read back.

A value is checked where it enters (the services, the wire models and decoders, the SQL
stores' writes), against the bounds below, so nothing is stored that a reader cannot
turn back into a record: a time beyond year 9999 has no ``datetime``, an integer beyond
64 bits fits no SQLite or PostgreSQL column, and an integer too large for a float
cannot be a metric value.

- Times are epoch milliseconds from ``0`` (1970-01-01T00:00:00Z) to
  :data:`MAX_MS` (9999-12-31T23:59:59.999Z), inclusive.
- Integers (steps, sizes, counts, offsets) are signed 64-bit.
- Metric values are floats; NaN and the infinities are kept (that is documented), a
  number that does not fit a float is refused.
"""

from __future__ import annotations

import operator
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_MS",
    "MIN_MS",
    "check_float",
    "check_int64",
    "check_ms",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

MIN_MS = 0
"""The earliest time driftline stores: 1970-01-01T00:00:00.000Z."""

MAX_MS = 253_402_300_799_999
"""The latest time driftline stores: 9999-12-31T23:59:59.999Z (``datetime``'s last year)."""


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{what} must be an integer, not a boolean")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return operator.index(value)
    except TypeError:
        raise InvalidArgumentError(
            f"{what} must be an integer, got {type(value).__name__} {value!r}"
        ) from None


def check_int64(value: Any, what: str) -> int:
    """``value`` as an ``int`` if it is a whole number that fits in signed 64 bits.

    Raises:
        InvalidArgumentError: naming ``what``, for anything else.
    """
    number = _integer(value, what)
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidArgumentError(
            f"{what} is {number}, out of the 64-bit range [{INT64_MIN}, {INT64_MAX}]"
        )
    return number


def check_ms(value: Any, what: str) -> int:
    """``value`` as epoch milliseconds if it is a whole number in ``[MIN_MS, MAX_MS]``.

    Example:
        >>> check_ms(1_700_000_000_000, "start_time")
        1700000000000

    Raises:
        InvalidArgumentError: naming ``what``, for a non-integer or a time out of range.
    """
    ms = _integer(value, what)
    if not MIN_MS <= ms <= MAX_MS:
        raise InvalidArgumentError(
            f"{what} is {ms}, not a time driftline can store: give epoch milliseconds "
            f"from {MIN_MS} (1970-01-01) to {MAX_MS} (9999-12-31)"
        )
    return ms


def check_float(value: Any, what: str) -> float:
    """``value`` as a float (NaN and infinities kept); refuses what a float cannot hold.

    Raises:
        InvalidArgumentError: naming ``what``, for a non-number or an integer too large
            for a float.
    """
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{what} must be a number, not a boolean")
    if isinstance(value, float):
        return value
    try:
        number = float(value)
    except OverflowError:
        raise InvalidArgumentError(
            f"{what} is too large for a float (at most about 1.8e308)"
        ) from None
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"{what} must be a number, got {type(value).__name__} {value!r}"
        ) from None
    return number
