"""Schedules, triggers and firings in process: cron checks, catch-up, dedup, parameters."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType

import pandas as pd
import pytest

from driftline.core.clock import to_ms
from driftline.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from driftline.pipelines.agent import LEASE, Agent
from driftline.pipelines.automation import Automation
from driftline.pipelines.cron import parse_cron
from driftline.pipelines.records import FiringStatus
from driftline.workspace import Workspace

PIPES = """
import driftline as dl

@dl.step
def load(dataset: str) -> str:
    return dataset

@dl.step
def boom(x: str) -> str:
    raise RuntimeError("boom " + x)

@dl.pipeline
def demo(dataset: str = "customers@latest", n: int = 3):
    return load(dataset)

@dl.pipeline
def broken(x: str = "a"):
    return boom(x)
"""


# Also through a driftline server process (its records store over HTTP).
remote_too = pytest.mark.parametrize(
    "shared_db_url",
    [
        "sqlite-file",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("http", marks=pytest.mark.server),
    ],
    indirect=True,
)


def at(text: str) -> int:
    return to_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))


@pytest.fixture
def pipes(write_module: Callable[..., ModuleType]) -> ModuleType:
    return write_module("sched_pipes", PIPES)


@pytest.fixture
def auto(
    shared_db_url: str, open_workspace: Callable[..., Workspace], pipes: ModuleType
) -> Automation:
    return Automation.for_workspace(open_workspace(shared_db_url))


def commit(ws: Workspace, n: int) -> str:
    return ws.data.commit("customers", pd.DataFrame({"x": list(range(n))})).ref


# -- cron -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("61 3 * * *", "field 1 (minute) '61' at character 1"),
        ("0 24 * * *", "field 2 (hour) '24' at character 3"),
        ("0 3 0 * *", "field 3 (day-of-month) '0' at character 5"),
        ("0 3 * 13 *", "field 4 (month) '13' at character 7"),
        ("0  3 * * fri-xyz", "field 5 (day-of-week) 'fri-xyz' at character 10"),
        ("0 3 * *", "it has 4 field(s)"),
        ("@fortnightly", "Unknown cron shortcut '@fortnightly'"),
    ],
)
def test_an_invalid_cron_expression_names_the_field_and_position(
    expression: str, names: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_cron(expression)
    assert names in str(caught.value)


def test_cron_due_times_follow_the_time_zone_across_daylight_saving() -> None:
    cron = parse_cron("0 3 * * *", "Europe/Berlin")
    # 03:00 in Berlin is 02:00 UTC in winter, 01:00 UTC in summer (DST began 2026-03-29).
    assert cron.next_after(at("2026-03-28T12:00:00")) == at("2026-03-29T01:00:00")
    assert cron.next_after(at("2026-01-10T12:00:00")) == at("2026-01-11T02:00:00")
    assert parse_cron("@daily").next_after(at("2026-01-10T00:00:00")) == at("2026-01-11T00:00:00")
    with pytest.raises(InvalidArgumentError, match="did you mean Europe/Berlin"):
        parse_cron("0 3 * * *", "Europe/Berln")


# -- schedules --------------------------------------------------------------------------


@remote_too
def test_schedule_create_list_pause_resume_delete(auto: Automation) -> None:
    made = auto.create_schedule(
        "nightly", "demo", cron="0 3 * * *", timezone="Europe/Berlin", params={"n": 5},
        now=at("2026-01-10T12:00:00"),
    )  # fmt: skip
    assert made.next_due_at == datetime(2026, 1, 11, 2, tzinfo=UTC)
    assert made.pipeline == "demo"
    assert made.module == "sched_pipes"
    assert [s.name for s in auto.list_schedules()] == ["nightly"]
    with pytest.raises(AlreadyExistsError):
        auto.create_schedule("nightly", "demo", cron="0 4 * * *")
    assert auto.set_enabled("nightly", False).enabled is False
    # Due times while paused are not "missed": resuming counts from then on.
    resumed = auto.set_enabled("nightly", True, now=at("2026-02-01T12:00:00"))
    assert resumed.next_due_at == datetime(2026, 2, 2, 2, tzinfo=UTC)
    auto.delete_schedule("nightly")
    with pytest.raises(NotFoundError, match="No schedule named 'nightly'; schedules: none"):
        auto.get_schedule("nightly")


@remote_too
def test_unknown_pipeline_parameter_or_dataset_list_what_exists(auto: Automation) -> None:
    with pytest.raises(NotFoundError, match="No pipeline named 'demo2'; known pipelines: ") as e:
        auto.create_schedule("s", "demo2", cron="0 3 * * *")
    assert "demo" in str(e.value).split("known pipelines: ")[1].split(", ")
    with pytest.raises(InvalidArgumentError, match="no parameter 'C'; its parameters: dataset="):
        auto.create_schedule("s", "demo", cron="0 3 * * *", params={"C": 1})
    commit(auto.workspace, 3)
    with pytest.raises(NotFoundError, match="No dataset named 'custmers'; datasets: customers"):
        auto.create_trigger("t", "demo", on_dataset="custmers")
    with pytest.raises(NotFoundError, match="datasets: customers"):
        auto.create_schedule("s", "demo", cron="0 3 * * *", params={"dataset": "orders@latest"})
    with pytest.raises(InvalidArgumentError, match="Unknown catch-up policy 'sometimes'"):
        auto.create_schedule("s", "demo", cron="0 3 * * *", catchup="sometimes")
    with pytest.raises(InvalidArgumentError, match="field 2 \\(hour\\)"):
        auto.create_schedule("s", "demo", cron="0 99 * * *")
    assert auto.list_schedules() == []
    assert auto.list_triggers() == []


@pytest.mark.parametrize("catchup", ["once", "all", "skip"])
def test_due_times_missed_while_no_agent_ran_follow_the_catchup_policy(
    auto: Automation, catchup: str
) -> None:
    # Hourly from 2026-01-01 00:00; the agent comes back at 01:10 the next day.
    auto.create_schedule(
        "hourly", "demo", cron="0 * * * *", catchup=catchup, params={"dataset": "x"},
        now=at("2025-12-31T23:30:00"),
    )  # fmt: skip
    back = at("2026-01-02T01:10:00")
    added = auto.collect(back)
    keys = [f.dedup_key for f in added]
    if catchup == "all":
        assert len(keys) == 26
        assert keys[0] == f"due:{at('2026-01-01T00:00:00')}"
    elif catchup == "once":
        assert keys == [f"due:{at('2026-01-02T01:00:00')}"]
        assert added[0].payload["missed"] == 25
    else:
        assert keys == []  # even the newest due time is 10 minutes late
    # Whatever the policy, the next look has nothing more to do, and the next due time
    # is after the look.
    assert auto.collect(back + 1000) == []
    assert auto.get_schedule("hourly").next_due_at == datetime(2026, 1, 2, 2, tzinfo=UTC)


def test_skip_runs_a_due_time_seen_on_time(auto: Automation) -> None:
    auto.create_schedule(
        "hourly", "demo", cron="0 * * * *", catchup="skip", params={"dataset": "x"},
        now=at("2026-01-01T00:30:00"),
    )  # fmt: skip
    assert [f.dedup_key for f in auto.collect(at("2026-01-01T01:00:20"))] == [
        f"due:{at('2026-01-01T01:00:00')}"
    ]


@remote_too
def test_two_processes_collecting_at_once_fire_a_due_time_once(
    auto: Automation, shared_db_url: str, open_workspace: Callable[..., Workspace]
) -> None:
    other = Automation.for_workspace(open_workspace(shared_db_url))
    auto.create_schedule(
        "nightly", "demo", cron="0 3 * * *", params={"dataset": "x"},
        now=at("2026-01-01T00:00:00"),
    )  # fmt: skip
    results: list[int] = []
    barrier = threading.Barrier(2)

    def look(a: Automation) -> None:
        barrier.wait()
        results.append(len(a.collect(at("2026-01-05T00:00:00"))))

    threads = [threading.Thread(target=look, args=(a,)) for a in (auto, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 1]
    assert len(auto.list_firings()) == 1


# -- triggers ---------------------------------------------------------------------------


@remote_too
def test_a_new_dataset_version_fires_once_and_fills_the_parameter(auto: Automation) -> None:
    ws = auto.workspace
    commit(ws, 3)
    trigger = auto.create_trigger(
        "on-new", "demo", on_dataset="customers",
        params={"dataset": "customers@{trigger.dataset_version}"},
    )  # fmt: skip
    assert trigger.kind == "dataset"
    assert trigger.cursor == 1
    assert auto.collect() == []  # versions that existed before the trigger are not new
    assert commit(ws, 4) == "customers@2"
    fired = auto.collect()
    assert [(f.origin_name, f.dedup_key) for f in fired] == [("on-new", "customers@2")]
    assert auto.collect() == []  # seen: it fires once
    ran = Agent(ws, say=lambda _m: None).tick()
    assert [f.status for f in ran] == [FiringStatus.FINISHED]
    assert ran[0].resolved_params == {"dataset": "customers@2", "n": 3}
    run = ws.tracking.get_run(ran[0].run_id or "")
    assert run.params["dataset"] == "customers@2"
    assert run.tags["driftline.pipeline.origin"] == "trigger:on-new"
    # A dataset version committed twice between looks: one run, on the newest.
    commit(ws, 5)
    commit(ws, 6)
    assert [f.dedup_key for f in auto.collect()] == ["customers@4"]


def test_dataset_references_are_pinned_when_the_run_starts(auto: Automation) -> None:
    ws = auto.workspace
    commit(ws, 3)
    auto.create_schedule(
        "nightly", "demo", cron="0 3 * * *", params={"dataset": "customers@latest"},
        now=at("2026-01-01T00:00:00"),
    )  # fmt: skip
    commit(ws, 4)  # after the schedule was made, before it runs
    auto.collect(at("2026-01-02T00:00:00"))
    ran = Agent(ws, say=lambda _m: None).tick()
    assert ran[0].params == {"dataset": "customers@latest"}
    assert ran[0].resolved_params == {"dataset": "customers@2", "n": 3}


@remote_too
def test_alerts_fire_their_triggers_once_per_key(auto: Automation) -> None:
    auto.create_trigger(
        "retrain", "demo", on_alert="monitoring:churn", params={"dataset": "{trigger.ref}"}
    )
    first = auto.fire("monitoring:churn", {"ref": "x@1"}, key="alert-7")
    assert [f.origin_name for f in first] == ["retrain"]
    assert auto.fire("monitoring:churn", {"ref": "x@1"}, key="alert-7") == []
    with pytest.raises(NotFoundError, match="sources with triggers: monitoring:churn"):
        auto.fire("monitoring:fraud")
    ran = Agent(auto.workspace, say=lambda _m: None).tick()
    assert ran[0].resolved_params == {"dataset": "x@1", "n": 3}


@remote_too
def test_a_failing_firing_is_recorded_and_the_agent_goes_on(auto: Automation) -> None:
    auto.create_trigger("bad", "broken")
    auto.create_trigger("missing", "demo", params={"dataset": "{trigger.ref}"})
    auto.create_trigger("good", "demo", params={"dataset": "plain"})
    for name in ("bad", "missing", "good"):
        auto.fire_trigger(name)
    messages: list[str] = []
    ran = Agent(auto.workspace, say=messages.append).run(once=True)
    by_name = {f.origin_name: f for f in ran}
    assert by_name["bad"].status is FiringStatus.FAILED
    assert "Step 'boom' of pipeline 'broken' failed: RuntimeError: boom a" in (
        by_name["bad"].error or ""
    )
    assert by_name["missing"].status is FiringStatus.FAILED
    assert "uses {trigger.ref} but the firing's payload has no values" in (
        by_name["missing"].error or ""
    )
    assert by_name["good"].status is FiringStatus.FINISHED
    assert any("Trigger bad failed" in m for m in messages)
    # The lease was given back when --once ended.
    assert auto.store.get_lease(LEASE) is None


# -- the lease --------------------------------------------------------------------------


def test_the_lease_is_a_compare_and_set_with_expiry(auto: Automation) -> None:
    store = auto.store
    now = at("2026-01-01T00:00:00")

    def take(holder: str, when: int) -> bool:
        return store.acquire_lease(LEASE, holder=holder, host="h", pid=1, now=when, ttl_ms=1000)[0]

    assert take("a", now)
    assert not take("b", now + 500)  # a holds it
    assert take("a", now + 900)  # a renews: now until now + 1900
    assert not take("b", now + 1800)
    assert take("b", now + 2000)  # a's lease expired: a dead leader is replaced
    lease = store.get_lease(LEASE)
    assert lease is not None
    assert lease.holder == "b"
    assert lease.acquired_at == datetime.fromtimestamp((now + 2000) / 1000, UTC)
    store.release_lease(LEASE, holder="a")  # not a's: nothing happens
    assert store.get_lease(LEASE) is not None
    store.release_lease(LEASE, holder="b")
    assert store.get_lease(LEASE) is None


def test_one_unreadable_schedule_does_not_stop_the_others(auto: Automation) -> None:
    for name in ("broken-one", "fine"):
        auto.create_schedule(
            name, "demo", cron="0 3 * * *", params={"dataset": "x"},
            now=at("2026-01-01T00:00:00"),
        )  # fmt: skip
    # A record this version cannot read (written by hand, or by a newer version).
    auto.store.update_schedule(auto.get_schedule("broken-one").id, {"cron": "0 3 * * 9"})
    problems: list[str] = []
    added = auto.collect(at("2026-01-02T00:00:00"), on_error=problems.append)
    assert [f.origin_name for f in added] == ["fine"]
    assert len(problems) == 1
    assert problems[0].startswith("schedule broken-one: Invalid cron expression")
    with pytest.raises(InvalidArgumentError):
        auto.collect(at("2026-01-02T00:00:00"))


def test_an_agent_that_lost_its_lease_cannot_overwrite_a_recovered_firing(
    auto: Automation,
) -> None:
    auto.create_trigger("by-hand", "demo", params={"dataset": "x"})
    fired = auto.fire_trigger("by-hand")
    assert auto.store.start_firing(fired.id, agent="old", now=1)
    auto.recover(agent="new")  # the old agent's lease expired
    auto.store.end_firing(fired.id, status=FiringStatus.FINISHED, error=None, now=2)
    found = auto.store.get_firing(fired.id)
    assert found is not None
    assert found.status is FiringStatus.FAILED
    assert "marked failed by new" in (found.error or "")
