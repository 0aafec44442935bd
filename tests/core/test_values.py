"""The range rules of stored numbers and times, and of free-form JSON values."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from driftline.core.clock import from_ms, to_ms
from driftline.core.jsonvalues import MAX_JSON_DEPTH, check_json_value
from driftline.core.values import (
    INT64_MAX,
    INT64_MIN,
    MAX_MS,
    MIN_MS,
    check_float,
    check_int64,
    check_ms,
)
from driftline.errors import InvalidArgumentError


def nested(depth: int) -> Any:
    """A value with ``depth`` levels of objects and arrays (a scalar has none)."""
    value: Any = 1
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def test_times_at_the_ends_of_the_range_are_kept_and_read_back() -> None:
    assert check_ms(MIN_MS, "t") == 0
    assert check_ms(MAX_MS, "t") == MAX_MS
    assert from_ms(MAX_MS) == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert to_ms(from_ms(MAX_MS)) == MAX_MS
    assert check_ms(3.0, "t") == 3


@pytest.mark.parametrize("value", [MIN_MS - 1, MAX_MS + 1, 10**16, 2**64])
def test_times_one_past_the_range_are_refused(value: int) -> None:
    with pytest.raises(InvalidArgumentError, match=r"start_time is .* epoch milliseconds"):
        check_ms(value, "start_time")


@pytest.mark.parametrize("value", [True, 1.5, "1", None])
def test_a_time_must_be_a_whole_number(value: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="t must be an integer"):
        check_ms(value, "t")


def test_integers_are_signed_64_bit() -> None:
    assert check_int64(INT64_MAX, "step") == INT64_MAX
    assert check_int64(INT64_MIN, "step") == INT64_MIN
    assert check_int64(np.int64(5), "step") == 5
    for past in (INT64_MAX + 1, INT64_MIN - 1):
        with pytest.raises(InvalidArgumentError, match=r"step is .* out of the 64-bit range"):
            check_int64(past, "step")


def test_metric_values_are_floats_non_finite_kept_overflow_refused() -> None:
    assert math.isnan(check_float(math.nan, "m"))
    assert check_float(-math.inf, "m") == -math.inf
    assert check_float(2**1023, "m") == float(2**1023)
    assert check_float(np.float32(0.5), "m") == 0.5
    with pytest.raises(InvalidArgumentError, match="m is too large for a float"):
        check_float(10**400, "m")
    with pytest.raises(InvalidArgumentError, match="m must be a number"):
        check_float(True, "m")


def test_json_at_the_depth_limit_is_kept_one_more_level_is_refused() -> None:
    assert check_json_value(nested(MAX_JSON_DEPTH), "metrics") == nested(MAX_JSON_DEPTH)
    with pytest.raises(InvalidArgumentError, match="metrics nests deeper than 32 levels"):
        check_json_value(nested(MAX_JSON_DEPTH + 1), "metrics")
    # The input's depth never reaches Python's recursion limit.
    with pytest.raises(InvalidArgumentError, match="nests deeper"):
        check_json_value(nested(100_000), "metrics")


def test_json_at_the_size_limit_is_kept_one_byte_more_is_refused() -> None:
    value = "x" * 98  # encoded as 100 bytes with its quotes
    assert check_json_value(value, "details", max_bytes=100) == value
    with pytest.raises(InvalidArgumentError, match="details is 101 bytes as JSON; at most 100"):
        check_json_value(value + "x", "details", max_bytes=100)


def test_json_values_are_normalized_to_plain_json() -> None:
    value = {"n": np.int64(3), "f": np.float32(0.5), "t": (1, 2), "nan": math.nan}
    clean = check_json_value(value, "metrics")
    assert clean["n"] == 3
    assert type(clean["n"]) is int
    assert type(clean["f"]) is float
    assert clean["t"] == [1, 2]
    assert math.isnan(clean["nan"])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({1: "a"}, "keys must be strings"),
        ({"a": object()}, "not JSON"),
        ({"a": {1, 2}}, "not JSON"),
        ({"a": 2**64}, "beyond 64 bits"),
        ({"a": "\ud800"}, "lone surrogate"),
        ({"\ud800": 1}, "lone surrogate"),
        ({"a": "\x00"}, "NUL"),
    ],
)
def test_json_values_that_could_not_be_read_back_are_refused(value: Any, problem: str) -> None:
    with pytest.raises(InvalidArgumentError, match=problem):
        check_json_value(value, "details")
