"""Retraining triggers fire as the policy says: alert thresholds (pure rules), new
dataset versions and cron due times (cursors kept in the store, SQLite and PostgreSQL),
each through the same deduplicated trigger, driven by the agent."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.retraining.retrain_support import PIPELINES, build_in, cli, customers

from driftline.core.clock import now_ms, to_ms
from driftline.errors import InvalidArgumentError
from driftline.retraining import RetrainingService
from driftline.retraining._sql import SqlRetrainingStore
from driftline.retraining.cycles import CursorMove, CycleState, Trigger
from driftline.retraining.policy import TriggerRule, parse_policy
from driftline.retraining.triggers import cursor_key, judge_alert
from driftline.workspace import Workspace

# -- the threshold rules (pure) ---------------------------------------------------------

DRIFT = {"rows": 500, "drift_share": 0.5, "drifted_columns": ["f0", "f2"], "reference": "r"}
PERFORMANCE = {
    "rows": 400, "labelled": 240, "label_coverage": 0.6, "task": "binary", "kind": "realized",
    "metrics": {"roc_auc": 0.71, "accuracy": 0.8}, "metric": "roc_auc", "value": 0.71,
    "below": 0.75,
}  # fmt: skip


def drift(**settings: Any) -> TriggerRule:
    return TriggerRule("drift", {"monitor": "churn-prod", **settings})


def performance(**settings: Any) -> TriggerRule:
    return TriggerRule("performance", {"monitor": "churn-prod", "metric": "roc_auc", **settings})


def test_drift_fires_when_the_share_of_drifted_columns_reaches_min_share() -> None:
    fired = judge_alert(drift(columns="any", min_share=0.3), "drift", DRIFT)
    assert fired.fires, fired.why
    assert fired.matched == {"drifted_columns": ["f0", "f2"], "drift_share": 0.5, "min_share": 0.3}
    assert "drift share 0.5 >= min_share 0.3" in fired.why


def test_drift_below_min_share_does_not_fire_and_says_why() -> None:
    held = judge_alert(drift(columns="any", min_share=0.6), "drift", DRIFT)
    assert not held.fires
    assert held.why == "the drift share 0.5 is below min_share 0.6"
    assert held.matched == {}


def test_drift_on_named_columns_fires_only_when_one_of_them_drifted() -> None:
    fired = judge_alert(drift(columns=["f1", "f2"]), "drift", DRIFT)
    assert fired.fires
    assert fired.matched == {"drifted_columns": ["f2"]}
    held = judge_alert(drift(columns=["f1"]), "drift", DRIFT)
    assert not held.fires
    assert held.why == "no column of the watched ones (f1) drifted (drifted: f0, f2)"


def test_drift_with_no_drifted_column_does_not_fire() -> None:
    figures = {**DRIFT, "drifted_columns": [], "drift_share": 0.0}
    assert not judge_alert(drift(columns="any"), "drift", figures).fires


@pytest.mark.parametrize(
    ("rule", "figures", "named"),
    [
        (drift(columns="any"), {"drift_share": 0.9}, "drifted_columns"),
        (drift(min_share=0.1), {"drifted_columns": ["f0"]}, "drift_share"),
        (drift(min_share=0.1), {"drift_share": float("nan")}, "drift_share"),
        (performance(below=0.8), {"label_coverage": 1.0, "metrics": {"accuracy": 0.5}}, "roc_auc"),
        (performance(below=0.8, min_label_coverage=0.5), {"metrics": {"roc_auc": 0.5}},
         "label_coverage"),
    ],
)  # fmt: skip
def test_a_missing_figure_does_not_fire_and_is_named(
    rule: TriggerRule, figures: dict[str, Any], named: str
) -> None:
    held = judge_alert(rule, rule.kind, figures)
    assert not held.fires
    assert f"the alert has no {named} figure" in held.why


def test_drift_without_thresholds_fires_on_every_drift_alert() -> None:
    fired = judge_alert(drift(), "drift", {})
    assert fired.fires
    assert fired.matched == {}


def test_performance_fires_below_the_bar_with_enough_label_coverage() -> None:
    fired = judge_alert(performance(below=0.8, min_label_coverage=0.5), "performance", PERFORMANCE)
    assert fired.fires, fired.why
    assert fired.matched == {
        "roc_auc": 0.71, "below": 0.8, "kind": "realized",
        "label_coverage": 0.6, "min_label_coverage": 0.5,
    }  # fmt: skip


def test_performance_does_not_fire_above_the_bar_or_with_too_few_labels() -> None:
    above = judge_alert(performance(below=0.7), "performance", PERFORMANCE)
    assert not above.fires
    assert above.why == "roc_auc 0.71 is not below 0.7"
    thin = judge_alert(performance(below=0.8, min_label_coverage=0.9), "performance", PERFORMANCE)
    assert not thin.fires
    assert "label coverage 60% is below min_label_coverage 90%" in thin.why


def test_performance_reads_the_checked_metric_and_marks_an_estimate() -> None:
    figures = {"kind": "estimated", "metric": "roc_auc", "value": 0.6, "label_coverage": 0.0}
    fired = judge_alert(performance(below=0.8), "performance", figures)
    assert fired.fires
    assert fired.matched["kind"] == "estimated"
    assert "(estimated)" in fired.why


def test_an_alert_of_another_check_does_not_fire() -> None:
    assert not judge_alert(drift(), "performance", PERFORMANCE).fires
    assert not judge_alert(performance(below=1.0), "drift", DRIFT).fires
    with pytest.raises(InvalidArgumentError, match="new_data trigger does not fire on"):
        judge_alert(TriggerRule("new_data", {"dataset": "customers"}), "drift", DRIFT)


def test_cursor_keys_name_the_dataset_or_the_cron_and_time_zone() -> None:
    assert cursor_key(TriggerRule("new_data", {"dataset": "customers"})) == "new_data:customers"
    utc = cursor_key(TriggerRule("schedule", {"cron": "0 3 * * 0"}))
    berlin = cursor_key(TriggerRule("schedule", {"cron": "0 3 * * 0", "timezone": "Europe/Berlin"}))
    assert utc == "schedule:UTC:0 3 * * 0"
    assert berlin == "schedule:Europe/Berlin:0 3 * * 0"
    with pytest.raises(InvalidArgumentError):
        cursor_key(drift())


def test_a_schedules_time_zone_is_checked_and_named() -> None:
    base = "model: churn\ndeployment: churn\npipeline: {name: p}\ntriggers:\n"
    policy = parse_policy(base + '  - schedule: {cron: "0 3 * * 0", timezone: Europe/Berlin}\n')
    assert policy.triggers[0].settings["timezone"] == "Europe/Berlin"
    with pytest.raises(InvalidArgumentError, match=r"line 5: triggers\[0\]\.schedule\.timezone"):
        parse_policy(base + '  - schedule: {cron: "0 3 * * 0", timezone: Mars/Olympus}\n')


# -- cursors in the store (SQLite and PostgreSQL) ---------------------------------------


def test_a_cursor_moves_once_with_its_trigger(
    shared_db_url: str, open_workspace: Callable[..., Workspace]
) -> None:
    ws = open_workspace(shared_db_url)
    assert ws.database is not None
    store = SqlRetrainingStore(ws.database)
    now = now_ms()
    store.put_policy("churn", {"model": "churn"}, "", actor="t", now=now,
                     cursors={"new_data:customers": 1, "schedule:UTC:@daily": 5})  # fmt: skip
    assert store.cursors("churn") == {"new_data:customers": 1, "schedule:UTC:@daily": 5}

    def fire(expected: int) -> str:
        cause = Trigger("new_data", "customers@2", {"dataset_version": 2})
        move = CursorMove("new_data:customers", expected, 2)
        return store.trigger(
            "churn", cause, cooldown_ms=0, max_per_day=10, actor="t", now=now, cursor=move
        ).outcome

    assert fire(1) == "started"
    assert store.cursors("churn")["new_data:customers"] == 2
    # A second agent that read the old cursor: nothing happens, not even an absorb.
    outcome = store.trigger(
        "churn", Trigger("new_data", "customers@2"), cooldown_ms=0, max_per_day=10,
        actor="t", now=now, cursor=CursorMove("new_data:customers", 1, 2),
    )  # fmt: skip
    assert outcome.outcome == "seen"
    assert "new_data:customers was seen already" in outcome.reason
    (cycle,) = store.cycles("churn")
    assert cycle.absorbed == 0
    assert cycle.cause.payload == {"dataset_version": 2}


def test_reapplying_a_policy_keeps_seen_cursors_and_drops_stale_ones(
    shared_db_url: str, open_workspace: Callable[..., Workspace]
) -> None:
    ws = open_workspace(shared_db_url)
    assert ws.database is not None
    store = SqlRetrainingStore(ws.database)
    now = now_ms()
    store.put_policy("churn", {"model": "churn"}, "", actor="t", now=now,
                     cursors={"new_data:customers": 3, "schedule:UTC:@daily": 5})  # fmt: skip
    store.put_policy("churn", {"model": "churn", "v": 2}, "", actor="t", now=now,
                     cursors={"new_data:customers": 9, "new_data:orders": 4})  # fmt: skip
    assert store.cursors("churn") == {"new_data:customers": 3, "new_data:orders": 4}
    store.put_policy("churn", {"model": "churn", "v": 3}, "", actor="t", now=now)
    assert store.cursors("churn") == {"new_data:customers": 3, "new_data:orders": 4}
    assert store.start_cursor("churn", "new_data:orders", 8, now=now) == 4
    assert store.start_cursor("churn", "schedule:UTC:@hourly", 7, now=now) == 7
    assert store.cursors("churn")["schedule:UTC:@hourly"] == 7


# -- in a real workspace, driven by the agent -------------------------------------------

POLICY = """\
model: churn
deployment: churn
triggers:
{triggers}
pipeline:
  name: retrain_churn
  module: retrain_pipes
  params: {{dataset: "{dataset}", flip: false}}
evaluate: {{data: customers@latest, metric: roc_auc}}
challenger_must_beat: {{metric: roc_auc, by: 0.0, confidence: 0.9}}
rollout: direct
cooldown: 0
max_cycles_per_day: 50
"""


def policy(triggers: str, dataset: str = "customers@latest") -> str:
    return POLICY.format(triggers=triggers, dataset=dataset)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_in(tmp_path_factory, "retrain-triggers", {"retrain_pipes.py": PIPELINES})


def test_a_new_dataset_version_starts_one_cycle_on_that_version(
    ws: Workspace, built: dict[str, Any]
) -> None:
    loop = ws.service("retraining", RetrainingService).cycles
    loop.apply(
        policy("  - new_data: {dataset: customers}", dataset="customers@{trigger.dataset_version}")
    )
    before = len(loop.history("churn"))
    latest = ws.data.find_latest("customers")
    assert latest is not None
    assert loop.store.cursors("churn") == {"new_data:customers": latest.number}

    idle = cli(built, "agent", "--once")  # versions that existed at apply are not new
    assert idle.returncode == 0, idle.stderr
    assert len(loop.history("churn")) == before, idle.stdout

    version = ws.data.commit("customers", customers(7))
    first = cli(built, "agent", "--once")
    assert first.returncode == 0, first.stderr
    history = loop.history("churn")
    assert len(history) == before + 1, first.stdout
    cycle = history[0]
    assert cycle.cause.kind == "new_data"
    assert cycle.cause.ref == version.ref
    assert cycle.cause.payload["dataset_version"] == version.number
    assert cycle.cause.payload["version_id"] == version.id
    assert f"new data {version.ref} started cycle {cycle.id}" in first.stdout
    # The agent drove it: trained on that very version, then judged.
    assert cycle.state in (CycleState.PROMOTED, CycleState.REJECTED), cycle.reason
    assert cycle.run_id is not None
    run = ws.tracking.get_run(cycle.run_id)
    assert run.params["dataset"] == version.ref

    again = cli(built, "agent", "--once")
    assert again.returncode == 0, again.stderr
    assert len(loop.history("churn")) == before + 1, again.stdout
    assert loop.store.cursors("churn") == {"new_data:customers": version.number}

    status = cli(built, "retrain", "status", "churn")
    assert status.returncode == 0, status.stderr
    assert f"trigger: new_data {version.ref}" in status.stdout
    assert f"{version.ref} is new (seen: customers@{latest.number})" in status.stdout
    assert f'"dataset_version": {version.number}' in status.stdout


def test_a_due_schedule_fires_once_per_due_time(ws: Workspace) -> None:
    import driftline.retraining.autopilot  # noqa: F401  (the agent's retraining look)
    from driftline.pipelines import parse_cron
    from driftline.pipelines.agent import Agent
    from driftline.retraining._tables import retraining_cursors

    loop = ws.service("retraining", RetrainingService).cycles
    applied_at = now_ms()
    loop.apply(policy('  - schedule: {cron: "0 3 * * 0", timezone: Europe/Berlin}'))
    cron = parse_cron("0 3 * * 0", "Europe/Berlin")
    key = "schedule:Europe/Berlin:0 3 * * 0"
    assert loop.store.cursors("churn")[key] == cron.next_after(applied_at)  # next Sunday 3:00
    before = len(loop.history("churn"))
    said: list[str] = []
    agent = Agent(ws, interval=0.1, say=said.append)
    agent.tick()  # not due yet
    assert len(loop.history("churn")) == before, said

    # As if the agent had been away for about two weeks: the due times it missed fire
    # one cycle (catch-up once), on the newest of them.
    away = cron.next_after(now_ms() - 15 * 86_400_000)
    c = retraining_cursors.c
    assert ws.database is not None
    ws.database.write(
        lambda conn: conn.execute(
            retraining_cursors.update().where(c.model == "churn", c.key == key).values(value=away)
        )
    )
    due = [away, *cron.due_between(away, now_ms(), 10)]
    agent.tick()
    history = loop.history("churn")
    assert len(history) == before + 1, said
    cycle = history[0]
    assert cycle.cause.kind == "schedule"
    assert cycle.cause.payload["missed"] == len(due) - 1 >= 1
    assert cycle.cause.payload["timezone"] == "Europe/Berlin"
    fired_for = datetime.fromisoformat(cycle.cause.payload["scheduled_for"])
    assert to_ms(fired_for) == due[-1]
    assert loop.store.cursors("churn")[key] == cron.next_after(now_ms())
    assert cycle.ended, cycle.reason  # the same look drove it to its end

    agent.tick()  # the same due times: nothing
    assert len(loop.history("churn")) == before + 1, said


def add_drift_alert(ws: Workspace, figures: dict[str, Any]) -> str:
    from driftline.core.ids import new_id
    from driftline.monitoring import MonitoringService
    from driftline.monitoring.monitor_models import Alert

    monitors = ws.service("monitoring", MonitoringService).monitors
    at = datetime.now(UTC) + timedelta(milliseconds=1)
    alert = Alert(
        id=new_id(), monitor="churn-prod", deployment="churn", check="drift",
        severity="warning", message="drift", figures=figures, evaluation_id=new_id(),
        created_at=at, last_seen_at=at,
    )  # fmt: skip
    monitors.store.add_alert(alert)
    return alert.id


def test_a_drift_alert_below_min_share_starts_nothing_and_one_above_does(ws: Workspace) -> None:
    import driftline.retraining.autopilot  # noqa: F401  (the agent's retraining look)
    from driftline.pipelines.agent import Agent

    loop = ws.service("retraining", RetrainingService).cycles
    loop.apply(policy("  - drift: {monitor: churn-prod, columns: any, min_share: 0.3}"))
    before = len(loop.history("churn"))
    said: list[str] = []
    agent = Agent(ws, interval=0.1, say=said.append)

    low = add_drift_alert(ws, {"drift_share": 0.2, "drifted_columns": ["f0"], "rows": 500})
    agent.tick()
    assert len(loop.history("churn")) == before, said
    assert any(
        low in line and "fires no trigger: the drift share 0.2 is below min_share 0.3" in line
        for line in said
    ), said

    high = add_drift_alert(ws, {"drift_share": 0.67, "drifted_columns": ["f0", "f1"]})
    agent.tick()
    history = loop.history("churn")
    assert len(history) == before + 1, said
    cause = history[0].cause
    assert (cause.kind, cause.ref) == ("alert", high)
    assert cause.payload["trigger"] == "drift"
    assert cause.payload["matched"] == {
        "drifted_columns": ["f0", "f1"], "drift_share": 0.67, "min_share": 0.3,
    }  # fmt: skip
    assert json.dumps(cause.payload)  # stored as JSON, read back as it was
    agent.tick()  # both alerts were seen: nothing more
    assert len(loop.history("churn")) == before + 1


# -- the alert cursor: marks made with the trigger (SQLite and PostgreSQL) ----------------

ALERT_POLICY = """\
model: churn
deployment: churn
triggers:
  - drift: {monitor: churn-prod}
pipeline: {name: retrain_churn}
cooldown: 0
max_cycles_per_day: 50
"""


class Alerts:
    """Monitoring's alerts as a look reads them: those added so far (``on_read`` runs
    after a read, as if the reader were paused there)."""

    def __init__(self) -> None:
        self.added: list[Any] = []
        self.on_read: Callable[[], None] | None = None

    def alerts(self, *, since: datetime | None = None, monitor: str | None = None) -> list[Any]:
        found = [
            a for a in self.added
            if (since is None or a.created_at >= since) and a.monitor == monitor
        ]  # fmt: skip
        if self.on_read is not None:
            hook, self.on_read = self.on_read, None
            hook()
        return found

    def add(self, at_ms: int, alert_id: str) -> str:
        from driftline.core.clock import from_ms
        from driftline.monitoring.monitor_models import Alert

        at = from_ms(at_ms)
        self.added.append(
            Alert(id=alert_id, monitor="churn-prod", deployment="churn", check="drift",
                  severity="warning", message="drift", figures={}, evaluation_id="e",
                  created_at=at, last_seen_at=at)
        )  # fmt: skip
        return alert_id


def alert_loop(store: SqlRetrainingStore, alerts: Alerts) -> Any:
    """A retraining loop that only looks at alerts (nothing else is reached)."""
    from types import SimpleNamespace

    from driftline.retraining.loop import Retrainer

    return Retrainer(
        store, registry=None, data=None, monitoring=SimpleNamespace(monitors=alerts),  # type: ignore[arg-type]
        deployments=None, user="agent",  # type: ignore[arg-type]
    )  # fmt: skip


def alert_store(url: str, open_workspace: Callable[..., Workspace], now: int) -> Any:
    ws = open_workspace(url)
    assert ws.database is not None
    store = SqlRetrainingStore(ws.database)
    store.put_policy("churn", parse_policy(ALERT_POLICY).to_dict(), "", actor="t", now=now)
    return store


def end_open_cycles(store: SqlRetrainingStore) -> None:
    for cycle in store.cycles("churn", open_only=True):
        store.transition(cycle, CycleState.FAILED, actor="t", now=now_ms(), reason="test")


def test_an_alert_committed_after_a_look_in_the_same_millisecond_is_seen(
    shared_db_url: str, open_workspace: Callable[..., Workspace]
) -> None:
    from driftline.retraining.watch import look_alerts

    now = now_ms()
    store = alert_store(shared_db_url, open_workspace, now)
    alerts = Alerts()
    loop = alert_loop(store, alerts)
    said: list[str] = []
    first = alerts.add(now + 1_000, "alert-1")
    look_alerts(loop, loop.policy("churn"), said.append, now + 2_000)
    assert [c.cause.ref for c in store.cycles("churn")] == [first]
    assert store.alerts_seen_at("churn") == now + 1_000
    end_open_cycles(store)
    # Stamped in the same millisecond as the cursor, committed after the look; and one
    # stamped a second earlier, committed later still.
    same = alerts.add(now + 1_000, "alert-0")
    look_alerts(loop, loop.policy("churn"), said.append, now + 3_000)
    assert [c.cause.ref for c in store.cycles("churn")] == [same, first], said
    end_open_cycles(store)
    earlier = alerts.add(now, "alert-9")
    look_alerts(loop, loop.policy("churn"), said.append, now + 4_000)
    assert store.cycles("churn")[0].cause.ref == earlier, said
    end_open_cycles(store)
    before = list(said)
    look_alerts(loop, loop.policy("churn"), said.append, now + 5_000)  # all looked at
    assert len(store.cycles("churn")) == 3
    assert said == before
    assert set(store.alert_marks("churn")) == {first, same, earlier}
    assert store.cursors("churn") == {}  # marks are not trigger cursors


def test_an_alert_before_the_policy_is_not_new_and_old_marks_are_forgotten(
    shared_db_url: str, open_workspace: Callable[..., Workspace]
) -> None:
    from driftline.retraining.triggers import ALERT_GRACE_MS
    from driftline.retraining.watch import look_alerts

    now = now_ms()
    store = alert_store(shared_db_url, open_workspace, now)
    alerts = Alerts()
    loop = alert_loop(store, alerts)
    alerts.add(now - 1, "before-the-policy")
    look_alerts(loop, loop.policy("churn"), print, now + 1)
    assert store.cycles("churn") == []
    alerts.add(now + 10, "fires")
    look_alerts(loop, loop.policy("churn"), print, now + 20)
    assert store.alert_marks("churn") == {"fires": now + 10}
    end_open_cycles(store)
    later = now + ALERT_GRACE_MS + 1_000
    alerts.add(later, "much-later")
    look_alerts(loop, loop.policy("churn"), print, later + 1)
    assert store.alert_marks("churn") == {"much-later": later}  # "fires" is out of reach


def test_two_agents_looking_at_once_start_one_cycle_per_alert(
    shared_db_url: str, open_workspace: Callable[..., Workspace]
) -> None:
    from driftline.retraining.watch import look_alerts

    now = now_ms()
    store = alert_store(shared_db_url, open_workspace, now)
    alerts = Alerts()
    alert_id = alerts.add(now + 1_000, "alert-1")
    other = open_workspace(shared_db_url)
    assert other.database is not None
    first, second = (
        alert_loop(store, alerts),
        alert_loop(SqlRetrainingStore(other.database), alerts),
    )
    said_first: list[str] = []
    said_second: list[str] = []

    def the_other_agent_looks_and_its_cycle_ends() -> None:
        look_alerts(second, second.policy("churn"), said_second.append, now + 2_000)
        end_open_cycles(store)

    # The first agent read the alert; before it triggers, the second one looks, and the
    # cycle it started ends (cooldown 0): the first must not start another.
    alerts.on_read = the_other_agent_looks_and_its_cycle_ends
    look_alerts(first, first.policy("churn"), said_first.append, now + 2_000)
    (cycle,) = store.cycles("churn")
    assert cycle.cause.ref == alert_id
    assert cycle.absorbed == 0
    assert any("started cycle" in line for line in said_second), said_second
    assert said_first == []  # seen by the other agent: nothing to say


def test_two_agents_in_threads_start_one_cycle_and_absorb_the_other_alerts_once(
    shared_db_url: str, open_workspace: Callable[..., Workspace]
) -> None:
    import threading

    from driftline.retraining.watch import look_alerts

    now = now_ms()
    store = alert_store(shared_db_url, open_workspace, now)
    alerts = Alerts()
    for i in range(3):
        alerts.add(now + 1_000 + i, f"alert-{i}")
    agents = []
    for _ in range(4):
        other = open_workspace(shared_db_url)
        assert other.database is not None
        agents.append(alert_loop(SqlRetrainingStore(other.database), alerts))
    start = threading.Barrier(len(agents))
    failed: list[BaseException] = []

    def look(loop: Any) -> None:
        try:
            start.wait(30)
            look_alerts(loop, loop.policy("churn"), lambda _: None, now + 2_000)
        except BaseException as exc:  # reported below, with the thread's error
            failed.append(exc)

    threads = [threading.Thread(target=look, args=(loop,)) for loop in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failed, failed
    (cycle,) = store.cycles("churn")
    # One started it; the other two alerts were absorbed once each, never twice.
    assert cycle.absorbed == 2
    assert set(store.alert_marks("churn")) == {"alert-0", "alert-1", "alert-2"}


class PausedStore(SqlRetrainingStore):
    """A store whose first read of the alert cursor or marks runs ``on_read`` after it, as
    if its agent were paused between its reads; it counts its writes of the cursor."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.on_read: Callable[[], None] | None = None
        self.writes = 0

    def _paused(self) -> None:
        if self.on_read is not None:
            hook, self.on_read = self.on_read, None
            hook()

    def alerts_seen_at(self, model: str) -> int | None:
        found = super().alerts_seen_at(model)
        self._paused()
        return found

    def alert_marks(self, model: str) -> dict[str, int]:
        found = super().alert_marks(model)
        self._paused()
        return found

    def see_alerts(self, model: str, until: int, *, marks: Any = None) -> None:
        self.writes += 1
        super().see_alerts(model, until, marks=marks)


def test_an_agent_paused_while_another_moves_the_cursor_on_starts_no_second_cycle(
    shared_db_url: str, open_workspace: Callable[..., Workspace]
) -> None:
    from driftline.retraining.triggers import ALERT_GRACE_MS
    from driftline.retraining.watch import look_alerts

    now = now_ms()
    store = alert_store(shared_db_url, open_workspace, now)
    alerts = Alerts()
    old = alerts.add(now + 1_000, "old")
    other = open_workspace(shared_db_url)
    assert other.database is not None
    paused = PausedStore(other.database)
    first, second = alert_loop(paused, alerts), alert_loop(store, alerts)
    look_alerts(second, second.policy("churn"), print, now + 2_000)
    end_open_cycles(store)
    new = alerts.add(now + 1_000 + ALERT_GRACE_MS + 5_000, "new")

    def the_other_agent_looks_past_the_grace() -> None:
        # It turns "new" into a cycle, moves the cursor more than the grace past "old"
        # and forgets old's mark.
        look_alerts(second, second.policy("churn"), print, now + ALERT_GRACE_MS + 10_000)
        end_open_cycles(store)
        assert set(store.alert_marks("churn")) == {new}

    paused.on_read = the_other_agent_looks_past_the_grace
    said: list[str] = []
    look_alerts(first, first.policy("churn"), said.append, now + ALERT_GRACE_MS + 10_000)
    assert sorted(c.cause.ref for c in store.cycles("churn")) == [new, old], said
    assert said == []  # both were looked at by the other agent


def test_a_look_with_nothing_new_writes_nothing(
    shared_db_url: str, open_workspace: Callable[..., Workspace]
) -> None:
    from driftline.retraining.watch import look_alerts

    now = now_ms()
    store = alert_store(shared_db_url, open_workspace, now)
    paused = PausedStore(store.db)
    alerts = Alerts()
    loop = alert_loop(paused, alerts)
    look_alerts(loop, loop.policy("churn"), print, now + 1_000)
    assert paused.writes == 0  # no alert yet
    alerts.add(now + 2_000, "fires")
    look_alerts(loop, loop.policy("churn"), print, now + 3_000)
    assert paused.writes == 1
    look_alerts(loop, loop.policy("churn"), print, now + 4_000)  # the same alert, marked
    assert paused.writes == 1
    assert store.alerts_seen_at("churn") == now + 2_000
