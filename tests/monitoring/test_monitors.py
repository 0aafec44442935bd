"""Monitors as records: runs on the prediction log, a figure time series, alerts with a
cooldown, webhook retries against a real receiver, and typed errors for bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from monitor_traffic import frame, receiver, write_traffic
from tests.conftest import FlakyNames

import driftline as dl
from driftline.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from driftline.monitoring import MonitoringService
from driftline.monitoring.monitors import MonitorService
from driftline.workspace import Workspace

DAY1 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def local(ws: Workspace) -> MonitorService:
    """The monitors of a workspace on a database (not a server)."""
    monitors = ws.service("monitoring", MonitoringService).monitors
    assert isinstance(monitors, MonitorService)
    return monitors


@pytest.fixture
def ws(configure_default: Callable[..., Workspace], tmp_path: Path) -> Workspace:
    workspace = configure_default(async_logging=False)
    frame(4_000, seed=1).to_parquet(tmp_path / "train.parquet")
    dl.data.commit("customers", tmp_path / "train.parquet")
    write_traffic(workspace, "churn", frame(600, seed=2), at=DAY1)
    write_traffic(workspace, "churn", frame(600, seed=3, shift=1.0), at=DAY1 + timedelta(days=1))
    monitors = local(workspace)
    monitors.delivery = type(monitors.delivery)(attempts=4, backoff=0.01, timeout=5.0)
    return workspace


def test_a_run_stores_an_evaluation_and_its_figures(ws: Workspace) -> None:
    m = dl.monitoring.create_monitor(
        "churn-prod", deployment="churn", window="1d", reference="customers@1"
    )
    assert (m.window, m.cooldown, m.checks) == ("1d", "6h", ("drift",))
    assert dl.monitoring.get_monitor("churn-prod") == m

    calm = dl.monitoring.run_monitor("churn-prod", at=DAY1 + timedelta(minutes=1))
    assert calm.healthy
    assert calm.raised == ()
    (drift,) = calm.evaluation.checks
    assert drift.status == "ok", drift.message
    assert calm.evaluation.rows == 12

    moved = dl.monitoring.run_monitor("churn-prod", at=DAY1 + timedelta(days=1, minutes=1))
    assert not moved.healthy
    (alert,) = moved.raised
    assert alert.check == "drift"
    assert "age" in alert.figures["drifted_columns"]
    assert alert.deliveries == ()  # no channel: recorded, nothing to deliver

    history = dl.monitoring.monitor_history("churn-prod")
    assert [e.status for e in history] == ["healthy", "alert"]
    assert history[1].checks[0].details is not None  # the drift report, for plots
    series = dl.monitoring.monitor_series("churn-prod", check="drift", column="age", metric="score")
    assert [p.window_end for p in series] == [e.window_end for e in history]
    assert series[0].value is not None
    assert series[1].value is not None
    assert series[1].value > 0.5 > series[0].value
    rows = dl.monitoring.monitor_series("churn-prod", column="", metric="rows")
    assert [p.value for p in rows] == [600.0, 600.0]
    assert dl.monitoring.alerts(monitor="churn-prod") == [alert]
    assert dl.monitoring.alerts(since=DAY1 + timedelta(days=2)) == []


def test_alerts_repeat_within_the_cooldown_and_return_after_it(ws: Workspace) -> None:
    dl.monitoring.create_monitor(
        "m", deployment="churn", reference="customers@1", cooldown="6h", alerts=["log"]
    )
    t = DAY1 + timedelta(days=1, minutes=1)
    first = dl.monitoring.run_monitor("m", at=t)
    again = dl.monitoring.run_monitor("m", at=t + timedelta(hours=1))
    assert len(first.raised) == 1
    assert again.raised == ()
    assert not again.healthy  # still in alert: cron sees exit 1, channels are not spammed
    (repeat,) = again.repeated
    assert repeat.id == first.raised[0].id
    assert repeat.repeats == 1
    later = dl.monitoring.run_monitor("m", at=t + timedelta(hours=7))
    assert len(later.raised) == 1
    assert later.raised[0].id != first.raised[0].id
    assert len(dl.monitoring.alerts(monitor="m")) == 2
    assert all(a.delivered for a in dl.monitoring.alerts(monitor="m"))


def test_a_webhook_is_retried_with_backoff_until_it_answers(ws: Workspace) -> None:
    with receiver(fail=2) as hook:
        dl.monitoring.create_monitor(
            "hooked", deployment="churn", reference="customers@1", alerts=[f"webhook:{hook.url}"]
        )
        run = dl.monitoring.run_monitor("hooked", at=DAY1 + timedelta(days=1, minutes=1))
        (alert,) = run.raised
        assert hook.attempts == 3
        assert [b["alert"]["id"] for b in hook.bodies] == [alert.id]
        assert hook.keys == [alert.id]
        (stored,) = dl.monitoring.alerts(monitor="hooked")
        (delivery,) = stored.deliveries
        assert (delivery.state, delivery.attempts, delivery.last_error) == ("delivered", 3, None)


def test_an_alert_is_not_lost_when_the_webhook_is_down(ws: Workspace) -> None:
    with receiver(fail=10_000) as down:
        url = down.url
        dl.monitoring.create_monitor(
            "down", deployment="churn", reference="customers@1", alerts=[f"webhook:{url}"]
        )
        run = dl.monitoring.run_monitor("down", at=DAY1 + timedelta(days=1, minutes=1))
        assert down.attempts == 4
    (stored,) = dl.monitoring.alerts(monitor="down")
    (delivery,) = stored.deliveries
    assert delivery.state == "failed"
    assert delivery.attempts == 4
    assert delivery.last_error is not None
    assert "503" in delivery.last_error

    with receiver() as up:
        # the same address is not guaranteed free again: point the monitor at the new one
        dl.monitoring.create_monitor(
            "down",
            deployment="churn",
            reference="customers@1",
            alerts=[f"webhook:{up.url}"],
            replace=True,
        )
        svc = local(ws)
        store = svc.store
        (pending,) = store.undelivered("down")
        assert pending[0].id == run.raised[0].id
        # an earlier alert's delivery to the old address is retried on the next run
        later = dl.monitoring.run_monitor("down", at=DAY1 + timedelta(days=1, minutes=30))
        assert later.raised == ()  # deduplicated: within the cooldown
        assert [i for i, _ in later.deliveries] == [run.raised[0].id]
    assert later.deliveries[0][1].attempts == 8  # four more, still to the old (dead) URL


def test_insufficient_data_is_a_status_not_an_alert(ws: Workspace) -> None:
    dl.monitoring.create_monitor("quiet", deployment="churn", reference="customers@1", window="1h")
    run = dl.monitoring.run_monitor("quiet", at=DAY1 + timedelta(days=5))
    assert run.healthy
    assert run.evaluation.status == "insufficient_data"
    assert run.evaluation.rows == 0


def test_a_failing_check_is_recorded_as_an_error(ws: Workspace) -> None:
    dl.monitoring.create_monitor("noref", deployment="churn", reference="customers@9")
    run = dl.monitoring.run_monitor("noref", at=DAY1 + timedelta(minutes=1))
    assert run.evaluation.status == "error"
    assert not run.healthy
    assert "NotFoundError" in run.evaluation.checks[0].message


def test_bad_input_is_a_typed_error_naming_the_field(ws: Workspace) -> None:
    create = dl.monitoring.create_monitor
    with pytest.raises(NotFoundError, match=r"Unknown deployment 'nope'.*churn"):
        create("x", deployment="nope")
    with pytest.raises(InvalidArgumentError, match=r"Unknown check 'qualty' in checks.*drift"):
        create("x", deployment="churn", checks=["drift", "qualty"])
    with pytest.raises(InvalidArgumentError, match="Invalid window '1x'"):
        create("x", deployment="churn", window="1x")
    with pytest.raises(InvalidArgumentError, match="Invalid cooldown '-1h'"):
        create("x", deployment="churn", cooldown="-1h")
    with pytest.raises(InvalidArgumentError, match=r"alert channel 'webhook:ftp.*http"):
        create("x", deployment="churn", alerts=["webhook:ftp://127.0.0.1/hook"])
    with pytest.raises(InvalidArgumentError, match=r"169\.254\.169\.254.*metadata.*webhook_allow"):
        create("x", deployment="churn", alerts=["log", "webhook:http://169.254.169.254/x"])
    with pytest.raises(InvalidArgumentError, match="alert channel 'email"):
        create("x", deployment="churn", alerts=["email:a@b.c"])
    with pytest.raises(InvalidArgumentError, match="monitor name"):
        create("bad name", deployment="churn")
    with pytest.raises(InvalidArgumentError, match="Unknown threshold"):
        create("x", deployment="churn", thresholds={"psy": 0.1})
    with pytest.raises(NotFoundError, match="No monitor named 'x'"):
        dl.monitoring.run_monitor("x")
    assert dl.monitoring.list_monitors() == []
    create("x", deployment="churn")
    with pytest.raises(AlreadyExistsError, match="replace"):
        create("x", deployment="churn")
    with pytest.raises(InvalidArgumentError, match="severity"):
        dl.monitoring.alerts(severity="loud")


def test_the_monitors_state_is_exposed_as_prometheus_gauges(ws: Workspace) -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from driftline.monitoring.prometheus import register_monitor_metrics

    monitors = local(ws)
    registry = CollectorRegistry()
    register_monitor_metrics(registry, monitors, deployment="churn")
    dl.monitoring.create_monitor("g", deployment="churn", reference="customers@1")

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = generate_latest(registry).decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    assert samples() == {}  # never run: nothing to report
    dl.monitoring.run_monitor("g", at=DAY1 + timedelta(days=1, minutes=1))
    got = samples()
    key = (("deployment", "churn"), ("monitor", "g"))
    assert got[("driftline_monitor_healthy", key)] == 0.0
    assert got[("driftline_monitor_check_severity", (("check", "drift"), *key))] == 1.0
    assert got[("driftline_monitor_undelivered_alerts", key)] == 0.0
    end = (DAY1 + timedelta(days=1, minutes=1)).timestamp()
    assert got[("driftline_monitor_last_evaluation_timestamp_seconds", key)] == end
    dl.monitoring.run_monitor("g", at=DAY1 + timedelta(minutes=1))
    assert samples()[("driftline_monitor_healthy", key)] == 1.0


def test_the_records_read_back_on_sqlite_and_postgresql(
    shared_db_url: str, open_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = open_workspace(shared_db_url)
    svc = ws.service("monitoring", MonitoringService)
    ref = frame(2_000, seed=1)
    svc.fit_reference(ref, name="train")
    write_traffic(ws, "churn", frame(300, seed=3, shift=1.0), at=DAY1)
    monitors = svc.monitors
    created = monitors.create(
        "pg", deployment="churn", reference="train", alerts=["log"], thresholds={"psi": 0.25}
    )
    assert monitors.get("pg") == created
    with pytest.raises(AlreadyExistsError):
        monitors.create("pg", deployment="churn")
    assert created.thresholds == {"psi": 0.25}
    first = monitors.run("pg", at=DAY1 + timedelta(minutes=1))
    second = monitors.run("pg", at=DAY1 + timedelta(minutes=2))
    (alert,) = first.raised
    assert second.repeated[0].id == alert.id
    history = monitors.history("pg")
    assert [e.id for e in history] == [first.evaluation.id, second.evaluation.id]
    assert history[0] == first.evaluation
    (stored,) = monitors.alerts(monitor="pg")
    assert stored.repeats == 1
    assert stored.deliveries[0].state == "delivered"
    assert stored.figures["drifted_columns"] == ["age"]
    series = monitors.series("pg", column="age", metric="drifted")
    assert [p.value for p in series] == [1.0, 1.0]
    assert monitors.history("pg", limit=1) == [history[1]]
    monitors.delete("pg")
    with pytest.raises(NotFoundError):
        monitors.get("pg")
    assert [a.id for a in monitors.alerts(monitor="pg")] == [alert.id]  # kept


def test_without_a_reference_the_served_versions_training_data_is_used(ws: Workspace) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    train = dl.data.get("customers@1")
    x = frame(200, seed=9)[["age", "income", "visits"]]
    model = LogisticRegression().fit(x, np.arange(200) % 2)
    with dl.start_run(experiment="churn") as run:
        dl.log_input(train)
        dl.models.log_model(model, "model", input_example=x.head(3))
    version = dl.register_model(f"runs:/{run.id}/model", "churn")
    assert version.version == 1  # the traffic says churn/1 served it
    dl.monitoring.create_monitor("lineage", deployment="churn")
    result = dl.monitoring.run_monitor("lineage", at=DAY1 + timedelta(days=1, minutes=1))
    (outcome,) = result.evaluation.checks
    assert outcome.status == "alert", outcome.message
    assert outcome.summary["reference"] == "customers@1"
    assert [r.source for r in dl.monitoring.list_references()] == ["customers@1"]


def test_a_version_without_recorded_training_data_says_how_to_give_one(ws: Workspace) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = frame(100, seed=9)[["age", "income"]]
    model = LogisticRegression().fit(x, np.arange(100) % 2)
    with dl.start_run(experiment="churn") as run:
        dl.models.log_model(model, "model", input_example=x.head(3))
    dl.register_model(f"runs:/{run.id}/model", "churn")
    dl.monitoring.create_monitor("blind", deployment="churn")
    result = dl.monitoring.run_monitor("blind", at=DAY1 + timedelta(minutes=1))
    (outcome,) = result.evaluation.checks
    assert outcome.status == "error"
    assert "churn/1 has no recorded training data" in outcome.message
    assert "--reference" in outcome.message


def test_a_redefined_monitor_checks_only_the_webhooks_it_adds(
    ws: Workspace, flaky_names: FlakyNames
) -> None:
    monitors = local(ws)
    monitors.delivery = flaky_names.delivery
    known = "webhook:https://hooks.example.test/x"
    monitors.create("m", deployment="churn", alerts=[known])
    flaky_names.resolvable.clear()  # the known host briefly fails to resolve
    again = monitors.create("m", deployment="churn", alerts=[known, "log"], replace=True)
    assert again.channels == (known, "log")
    added = "webhook:https://new.example.test/x"
    with pytest.raises(InvalidArgumentError, match=r"alerts\[1\]: .*new\.example\.test"):
        monitors.create("m", deployment="churn", alerts=[known, added], replace=True)
    with pytest.raises(InvalidArgumentError, match=r"alerts\[0\]: .*hooks\.example\.test"):
        monitors.create("other", deployment="churn", alerts=[known])  # new to that monitor
