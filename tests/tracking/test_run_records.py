"""Tracking records: statuses, durations, code versions, staleness, value rendering."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import pytest

from driftline.tracking.models import (
    SYSTEM_TAG_PREFIX,
    LifecycleStage,
    Run,
    RunStatus,
    format_value,
)

START = datetime(2024, 1, 1, 12, tzinfo=UTC)


def make_run(**changes: object) -> Run:
    run = Run(
        id="a" * 32,
        experiment_id="b" * 32,
        name="brisk-heron-1",
        status=RunStatus.RUNNING,
        lifecycle_stage=LifecycleStage.ACTIVE,
        user="ana",
        start_time=START,
        end_time=None,
        heartbeat_at=None,
        parent_id=None,
    )
    return dataclasses.replace(run, **changes)  # type: ignore[arg-type]


def test_only_running_is_not_final() -> None:
    assert [s for s in RunStatus if not s.is_final] == [RunStatus.RUNNING]
    assert RunStatus("FAILED") is RunStatus.FAILED


def test_records_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_run().name = "x"  # type: ignore[misc]


def test_duration_of_ended_runs_only() -> None:
    assert make_run().duration is None
    ended = make_run(status=RunStatus.FINISHED, end_time=START + timedelta(seconds=90))
    assert ended.duration == timedelta(seconds=90)


def test_code_version_and_user_tags_come_from_system_tags() -> None:
    p = SYSTEM_TAG_PREFIX
    run = make_run(
        tags={
            p + "git.commit": "abc",
            p + "git.branch": "main",
            p + "git.dirty": "false",
            p + "source.command": "python t.py",
            "team": "risk",
        }
    )
    assert (run.code.commit, run.code.branch, run.code.dirty, run.code.command) == (
        "abc",
        "main",
        False,
        "python t.py",
    )
    assert run.user_tags == {"team": "risk"}
    unknown = make_run().code
    assert (unknown.commit, unknown.branch, unknown.dirty, unknown.command) == (
        None,
        None,
        None,
        None,
    )
    assert make_run(tags={p + "git.dirty": "true"}).code.dirty is True


def test_a_running_run_without_heartbeats_becomes_stale() -> None:
    after = timedelta(minutes=10)
    now = START + timedelta(minutes=30)
    assert make_run().is_stale(now, after)  # no heartbeat: measured from the start
    assert not make_run(heartbeat_at=now - timedelta(minutes=5)).is_stale(now, after)
    assert make_run(heartbeat_at=now - timedelta(minutes=11)).is_stale(now, after)
    ended = make_run(status=RunStatus.FAILED, end_time=START)
    assert not ended.is_stale(now, after)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (math.nan, "NaN"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (0.123456789, "0.123457"),
        (1e-9, "1e-09"),
        (3.0, "3"),
    ],
)
def test_format_value_spells_out_non_finite_values(value: float, text: str) -> None:
    assert format_value(value) == text
