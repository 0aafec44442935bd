"""Concurrent runs of one monitor raise each alert once (SQLite file and PostgreSQL).

Raising is a look-up (an alert of this monitor, check and severity within the cooldown?)
then an insert; done as two steps, two runs that both look before either inserts both
raise. The store does both in one transaction that concurrent runs of a monitor take in
turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor_traffic import frame, write_traffic

from driftline.core.ids import new_id
from driftline.monitoring import MonitoringService
from driftline.monitoring.monitor_models import Alert, Delivery
from driftline.workspace import Workspace

DAY1 = datetime(2026, 3, 1, 12, tzinfo=UTC)
THREADS = 6


def _alert(check: str, at: datetime) -> Alert:
    return Alert(
        id=new_id(),
        monitor="race",
        deployment="churn",
        check=check,
        severity="warning",
        message="drift",
        figures={},
        evaluation_id=new_id(),
        created_at=at,
        last_seen_at=at,
        deliveries=(Delivery(channel="log", state="pending"),),
    )


def _together(n: int, fn: Callable[[int], object]) -> list[object]:
    """Run ``fn(0..n-1)`` in ``n`` threads released at once; their results, in order."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads)
    if errors:
        raise errors[0]
    return results


def test_concurrent_raises_of_one_alert_store_one_and_count_the_rest(
    shared_db_url: str, open_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = open_workspace(shared_db_url)
    svc = ws.service("monitoring", MonitoringService)
    svc.fit_reference(frame(500, seed=1), name="train")
    write_traffic(ws, "churn", frame(200, seed=2), at=DAY1)
    monitors = svc.monitors
    monitors.create("race", deployment="churn", reference="train", alerts=["log"])
    store = monitors.store
    since = DAY1 - timedelta(hours=6)
    for round_ in range(5):  # a race lost once in five tries is still a race
        check = f"check-{round_}"
        results = _together(
            THREADS, lambda i, c=check: store.raise_alert(_alert(c, DAY1), since=since)
        )
        new = [alert for alert, is_new in results if is_new]  # type: ignore[misc]
        assert len(new) == 1, f"round {round_}: {len(new)} runs raised the same alert"
        assert {alert.id for alert, _ in results} == {new[0].id}  # type: ignore[misc]
        (stored,) = [a for a in monitors.alerts(monitor="race") if a.check == check]
        assert stored.repeats == THREADS - 1
        assert [d.channel for d in stored.deliveries] == ["log"]  # delivered once


def test_two_runs_of_a_monitor_at_once_raise_one_alert(
    shared_db_url: str, open_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = open_workspace(shared_db_url)
    svc = ws.service("monitoring", MonitoringService)
    svc.fit_reference(frame(2_000, seed=1), name="train")
    write_traffic(ws, "churn", frame(300, seed=3, shift=1.0), at=DAY1)
    monitors = svc.monitors
    monitors.create("race", deployment="churn", reference="train", alerts=["log"])
    at = DAY1 + timedelta(minutes=1)
    runs = _together(2, lambda i: monitors.run("race", at=at))
    raised = [a for r in runs for a in r.raised]  # type: ignore[attr-defined]
    repeated = [a for r in runs for a in r.repeated]  # type: ignore[attr-defined]
    assert len(raised) == 1
    assert [a.id for a in repeated] == [raised[0].id]
    (stored,) = monitors.alerts(monitor="race")
    assert stored.repeats == 1
    assert all(not r.healthy for r in runs)  # type: ignore[attr-defined]
