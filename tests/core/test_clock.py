"""Timestamps are aware UTC; the database keeps epoch milliseconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from driftline.core.clock import from_ms, now_ms, to_ms, utcnow

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def exact_ms(value: datetime) -> int:
    return (value - EPOCH) // timedelta(milliseconds=1)


def test_now_is_aware_utc_and_agrees_with_now_ms() -> None:
    before = time.time_ns() // 1_000_000
    ms = now_ms()
    stamp = utcnow()
    after = time.time_ns() // 1_000_000
    assert before <= ms <= after
    assert stamp.tzinfo is not None
    assert stamp.utcoffset() == timedelta(0)
    assert before - 1 <= exact_ms(stamp) <= after + 1


def test_to_ms_of_aware_datetimes_in_any_zone() -> None:
    moment = datetime(2024, 3, 10, 12, 30, 15, 123000, tzinfo=UTC)
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    assert to_ms(moment) == to_ms(plus_two) == exact_ms(moment)


def test_to_ms_passes_numbers_through() -> None:
    assert to_ms(1_700_000_000_123) == 1_700_000_000_123
    assert to_ms(1_700_000_000_123.9) == 1_700_000_000_123


def test_milliseconds_round_trip_exactly() -> None:
    start = exact_ms(datetime(2024, 1, 1, tzinfo=UTC))
    for offset in range(0, 50_000, 7):
        ms = start + offset * 1_009
        back = from_ms(ms)
        assert back is not None
        assert back.tzinfo is not None
        assert exact_ms(back) == ms
        assert to_ms(back) == ms


def test_from_ms_keeps_none() -> None:
    assert from_ms(None) is None


@pytest.mark.usefixtures("new_york_time")
def test_naive_datetimes_mean_utc_even_when_tz_says_otherwise() -> None:
    assert time.localtime(0).tm_gmtoff != 0, "the fixture should have moved the local zone"
    naive = datetime(2024, 7, 1, 12, 0, 0)
    assert to_ms(naive) == exact_ms(naive.replace(tzinfo=UTC))
    assert from_ms(to_ms(naive)) == naive.replace(tzinfo=UTC)
