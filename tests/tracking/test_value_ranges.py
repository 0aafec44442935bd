"""Times and numbers at the ends of their range are stored and read back on every backend;
one past the end is refused, and nothing of the refused write is stored."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from driftline.core.clock import from_ms
from driftline.core.values import INT64_MAX, INT64_MIN, MAX_MS
from driftline.errors import InvalidArgumentError
from driftline.tracking import RunStatus
from driftline.workspace import Workspace


def test_the_last_storable_time_and_the_64_bit_steps_are_read_back(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace()
    experiment = ws.tracking.get_or_create_experiment("edge")
    run = ws.tracking.store.create_run(
        experiment_id=experiment.id, name="edge", user="u",
        start_time=MAX_MS, parent_id=None, tags={},
    )  # fmt: skip
    assert run.start_time == from_ms(MAX_MS)
    ws.tracking.log_batch(run.id, metrics=[("m", 1.0, INT64_MIN, 0), ("m", 2.0, INT64_MAX, MAX_MS)])
    history = ws.tracking.get_metric_history(run.id, "m")
    assert [(p.step, p.timestamp) for p in history] == [
        (INT64_MIN, from_ms(0)),
        (INT64_MAX, from_ms(MAX_MS)),
    ]
    ended = ws.tracking.store.update_run_status(
        run.id, status=RunStatus.FINISHED, end_time=MAX_MS, expected=RunStatus.RUNNING
    )
    assert ended.end_time == from_ms(MAX_MS)
    assert [r.id for r in ws.tracking.search_runs().items] == [run.id]


def test_one_past_the_range_is_refused_and_stores_nothing(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace()
    run = ws.tracking.create_run("edge")
    with pytest.raises(InvalidArgumentError, match="start_time"):
        ws.tracking.store.create_run(
            experiment_id=run.experiment_id, name="far", user="u",
            start_time=MAX_MS + 1, parent_id=None, tags={},
        )  # fmt: skip
    with pytest.raises(InvalidArgumentError, match="end_time"):
        ws.tracking.store.update_run_status(
            run.id, status=RunStatus.FINISHED, end_time=MAX_MS + 1, expected=RunStatus.RUNNING
        )
    for point in [("m", 1.0, 0, MAX_MS + 1), ("m", 1.0, INT64_MAX + 1, 0), ("m", 10**400, 0, 0)]:
        with pytest.raises(InvalidArgumentError):
            ws.tracking.log_batch(run.id, metrics=[point])
    ws.tracking.flush()
    assert ws.tracking.get_metric_history(run.id, "m") == []
    assert [r.id for r in ws.tracking.search_runs().items] == [run.id]
    assert ws.tracking.get_run(run.id).status is RunStatus.RUNNING
