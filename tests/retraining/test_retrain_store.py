"""The cycle store on SQLite and PostgreSQL: concurrent triggers start one cycle."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from driftline.core.clock import now_ms
from driftline.retraining._sql import SqlRetrainingStore
from driftline.retraining.cycles import CycleState, Trigger
from driftline.workspace import Workspace


def test_concurrent_triggers_start_exactly_one_cycle(
    shared_db_url: str, open_workspace: Callable[..., Workspace]
) -> None:
    ws = open_workspace(shared_db_url)
    assert ws.database is not None
    store = SqlRetrainingStore(ws.database)
    store.put_policy("churn", {"model": "churn"}, "", actor="test", now=now_ms())

    def fire(i: int) -> str:
        cause = Trigger("alert", f"alert-{i}")
        return store.trigger(
            "churn", cause, cooldown_ms=0, max_per_day=10, actor="test", now=now_ms()
        ).outcome

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(fire, range(100)))
    assert outcomes.count("started") == 1
    assert outcomes.count("absorbed") == 99
    (cycle,) = store.cycles("churn")
    assert cycle.state is CycleState.TRIGGERED
    assert cycle.absorbed == 99
