"""The tracking contract: what every backend must do, written once and run on each.

Every test here takes the parametrized ``workspace`` (or ``make_workspace``) fixture, so
it runs against SQLite in memory, SQLite on file, PostgreSQL and the HTTP backend (a
real server process). The tests go through the service (the rules) and its store (the
I/O) exactly as the SDK does.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from driftline.core.clock import now_ms, to_ms
from driftline.core.hashing import digest_key
from driftline.errors import (
    AlreadyExistsError,
    ConflictError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
)
from driftline.tracking import (
    ActiveRun,
    LifecycleStage,
    Run,
    RunStatus,
    TrackingService,
)
from driftline.tracking.store import LogBatch
from driftline.workspace import Workspace

try:  # `python -m pytest` from the repository root, as CI runs it
    from tests.conftest import ALL_BACKENDS
except ImportError:  # pragma: no cover - only tests/ on sys.path
    from conftest import ALL_BACKENDS

pytestmark = pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)

NAME_PATTERN = re.compile(r"^[a-z]+-[a-z]+-\d{1,3}$")


@pytest.fixture
def tracking(workspace: Workspace) -> TrackingService:
    return workspace.tracking


def second_client(
    workspace: Workspace, make_workspace: Callable[..., Workspace], backend: str, **overrides: Any
) -> TrackingService:
    """Another client of the same database: its own engine when the backend allows it."""
    if backend == "sqlite-memory":  # one in-memory database per engine: share the store
        return TrackingService(
            workspace.tracking.store,
            workspace.tracking.artifacts,
            workspace.content,
            writer=None,
            user="someone-else",
        )
    return make_workspace(**overrides).tracking


# -- experiments --------------------------------------------------------------------------


def test_create_and_get_an_experiment_by_id_and_by_name(tracking: TrackingService) -> None:
    created = tracking.create_experiment(
        "churn",
        description="who leaves",
        tags={"team": "risk", "n": 3},  # type: ignore[dict-item]
    )
    assert re.fullmatch(r"[0-9a-f]{32}", created.id)
    assert created.name == "churn"
    assert created.description == "who leaves"
    assert created.tags == {"team": "risk", "n": "3"}
    assert created.lifecycle_stage is LifecycleStage.ACTIVE
    assert created.created_at.tzinfo is not None
    assert abs(created.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert tracking.get_experiment(created.id) == created
    assert tracking.get_experiment("churn") == created


def test_a_duplicate_experiment_name_already_exists(tracking: TrackingService) -> None:
    tracking.create_experiment("churn")
    with pytest.raises(AlreadyExistsError, match="churn"):
        tracking.create_experiment("churn")
    with pytest.raises(AlreadyExistsError):
        tracking.create_experiment("  churn  ")  # names are trimmed
    assert len(tracking.list_experiments().items) == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 257])
def test_invalid_experiment_names_are_refused(tracking: TrackingService, name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        tracking.create_experiment(name)


def test_an_unknown_experiment_is_not_found_with_near_names(tracking: TrackingService) -> None:
    tracking.create_experiment("churn")
    tracking.create_experiment("fraud")
    with pytest.raises(NotFoundError) as info:
        tracking.get_experiment("chrun")
    assert "'chrun'" in str(info.value)
    assert "did you mean 'churn'" in str(info.value)
    with pytest.raises(NotFoundError) as info:
        tracking.get_experiment("completely-different")
    assert "did you mean" not in str(info.value)


def test_experiments_page_newest_first_without_gaps_or_duplicates(
    tracking: TrackingService,
) -> None:
    created = [tracking.create_experiment(f"exp-{i}").id for i in range(7)]
    seen: list[str] = []
    token = None
    sizes = []
    while True:
        page = tracking.list_experiments(max_results=3, page_token=token)
        sizes.append(len(page))
        seen += [e.id for e in page]
        token = page.next_token
        if token is None:
            break
    assert sizes == [3, 3, 1]
    assert seen == list(reversed(created))


def test_an_experiment_page_token_belongs_to_its_query(tracking: TrackingService) -> None:
    for i in range(3):
        tracking.create_experiment(f"exp-{i}")
    token = tracking.list_experiments(max_results=2).next_token
    assert token is not None
    with pytest.raises(InvalidArgumentError, match="different query"):
        tracking.list_experiments(max_results=2, page_token=token, include_deleted=True)
    with pytest.raises(InvalidArgumentError):
        tracking.list_experiments(max_results=0)


def test_delete_and_restore_an_experiment(tracking: TrackingService) -> None:
    tracking.create_experiment("keep")
    gone = tracking.create_experiment("gone")
    deleted = tracking.delete_experiment("gone")
    assert deleted.lifecycle_stage is LifecycleStage.DELETED
    assert [e.name for e in tracking.list_experiments()] == ["keep"]
    assert {e.name for e in tracking.list_experiments(include_deleted=True)} == {"keep", "gone"}
    assert tracking.get_experiment(gone.id).lifecycle_stage is LifecycleStage.DELETED

    with pytest.raises(AlreadyExistsError, match="restore"):
        tracking.create_experiment("gone")
    with pytest.raises(ConflictError, match="deleted"):
        tracking.create_run("gone")

    restored = tracking.restore_experiment("gone")
    assert restored.lifecycle_stage is LifecycleStage.ACTIVE
    assert {e.name for e in tracking.list_experiments()} == {"keep", "gone"}
    assert tracking.create_run("gone").experiment_id == gone.id


def test_deleting_an_unknown_experiment_is_not_found(tracking: TrackingService) -> None:
    with pytest.raises(NotFoundError):
        tracking.delete_experiment("nothing")
    with pytest.raises(NotFoundError):
        tracking.store.set_experiment_lifecycle("0" * 32, LifecycleStage.DELETED)


def test_deleting_an_experiment_hides_its_runs(tracking: TrackingService) -> None:
    kept = tracking.create_run("keep")
    tracking.create_run("gone")
    tracking.delete_experiment("gone")
    assert [r.id for r in tracking.search_runs()] == [kept.id]


# -- runs ---------------------------------------------------------------------------------


def test_a_new_run_is_running_in_its_experiment(tracking: TrackingService) -> None:
    run = tracking.create_run("churn", tags={"team": "risk"})
    assert run.status is RunStatus.RUNNING
    assert run.lifecycle_stage is LifecycleStage.ACTIVE
    assert NAME_PATTERN.match(run.name), run.name
    assert run.experiment_id == tracking.get_experiment("churn").id  # created on demand
    assert run.user == tracking.user
    assert run.end_time is None
    assert run.duration is None
    assert run.start_time.tzinfo is not None
    assert abs(run.start_time - datetime.now(UTC)) < timedelta(minutes=1)
    assert run.tags == {"team": "risk"}
    assert run.parent_id is None
    assert tracking.get_run(run.id) == run


def test_a_run_without_experiment_goes_to_the_default_one(tracking: TrackingService) -> None:
    run = tracking.create_run(None, default_experiment="sandbox", name="named")
    assert run.name == "named"
    assert tracking.get_experiment("sandbox").id == run.experiment_id


def test_an_unknown_run_is_not_found(tracking: TrackingService) -> None:
    with pytest.raises(NotFoundError, match="f" * 32):
        tracking.get_run("f" * 32)
    assert tracking.store.find_run("f" * 32) is None
    with pytest.raises(NotFoundError):
        tracking.end_run("f" * 32)


@pytest.mark.parametrize("status", [RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED])
def test_ending_a_run_sets_its_final_status_and_end_time(
    tracking: TrackingService, status: RunStatus
) -> None:
    run = tracking.create_run("e")
    ended = tracking.end_run(run.id, status)
    assert ended.status is status
    assert ended.status.is_final
    assert ended.end_time is not None
    assert ended.end_time >= run.start_time
    assert ended.duration is not None
    assert ended.duration >= timedelta(0)
    assert tracking.get_run(run.id) == ended


def test_ending_a_run_twice_is_a_conflict_and_keeps_the_first_status(
    tracking: TrackingService,
) -> None:
    run = tracking.create_run("e")
    first = tracking.end_run(run.id, RunStatus.FAILED)
    with pytest.raises(ConflictError, match="FAILED"):
        tracking.end_run(run.id, RunStatus.FINISHED)
    with pytest.raises(ConflictError):
        tracking.store.update_run_status(
            run.id, status=RunStatus.KILLED, end_time=1, expected=RunStatus.RUNNING
        )
    assert tracking.get_run(run.id) == first


def test_a_run_cannot_end_as_running(tracking: TrackingService) -> None:
    run = tracking.create_run("e")
    with pytest.raises(InvalidArgumentError):
        tracking.end_run(run.id, RunStatus.RUNNING)
    with pytest.raises(ValueError, match="DONE"):
        tracking.end_run(run.id, "DONE")  # type: ignore[arg-type]
    assert tracking.get_run(run.id).status is RunStatus.RUNNING


def test_only_one_of_many_concurrent_ends_wins(
    workspace: Workspace, make_workspace: Callable[..., Workspace], backend: str
) -> None:
    clients = [workspace.tracking] + [
        second_client(workspace, make_workspace, backend) for _ in range(3)
    ]
    run = workspace.tracking.create_run("e")
    statuses = [RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED, RunStatus.FINISHED]
    winners: list[RunStatus] = []
    conflicts: list[ConflictError] = []
    start = threading.Barrier(len(clients))

    def end(client: TrackingService, status: RunStatus) -> None:
        start.wait()
        try:
            winners.append(client.end_run(run.id, status).status)
        except ConflictError as exc:
            conflicts.append(exc)

    threads = [
        threading.Thread(target=end, args=pair) for pair in zip(clients, statuses, strict=False)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert len(conflicts) == len(clients) - 1
    assert workspace.tracking.get_run(run.id).status is winners[0]


def test_nested_runs_record_their_parent(tracking: TrackingService) -> None:
    parent = tracking.create_run("e", name="sweep")
    children = [tracking.create_run("e", parent_id=parent.id, name=f"t{i}") for i in range(2)]
    assert [c.parent_id for c in children] == [parent.id, parent.id]
    assert tracking.get_run(children[0].id).parent_id == parent.id
    found = tracking.search_runs(filter=f"attributes.parent_run_id = '{parent.id}'")
    assert {r.name for r in found} == {"t0", "t1"}
    with pytest.raises(NotFoundError):
        tracking.create_run("e", parent_id="0" * 32)


def test_deleted_runs_are_hidden_and_can_be_restored(tracking: TrackingService) -> None:
    keep = tracking.create_run("e", name="keep")
    gone = tracking.create_run("e", name="gone")
    assert tracking.delete_run(gone.id).lifecycle_stage is LifecycleStage.DELETED
    assert [r.name for r in tracking.search_runs(experiments="e")] == ["keep"]
    everything = tracking.search_runs(experiments="e", include_deleted=True)
    assert {r.name for r in everything} == {"keep", "gone"}
    assert tracking.get_run(gone.id).lifecycle_stage is LifecycleStage.DELETED
    tracking.restore_run(gone.id)
    assert {r.name for r in tracking.search_runs(experiments="e")} == {"keep", "gone"}
    assert keep.id in {r.id for r in tracking.search_runs()}
    with pytest.raises(NotFoundError):
        tracking.delete_run("0" * 32)


# -- params: write-once -------------------------------------------------------------------


def test_params_are_rendered_as_text(tracking: TrackingService) -> None:
    run = tracking.create_run("e")
    tracking.log_batch(run.id, params={"C": 1.0, "n": 3, "flag": True, "name": "lr", "x": 1e-5})
    assert tracking.get_run(run.id).params == {
        "C": "1.0",
        "n": "3",
        "flag": "True",
        "name": "lr",
        "x": "1e-05",
    }


def test_sync_params_are_write_once(tracking: TrackingService) -> None:
    run = tracking.create_run("e")
    tracking.log_batch(run.id, params={"C": 0.5, "penalty": "l2"})
    tracking.log_batch(run.id, params={"C": 0.5})  # the same value again: a no-op
    tracking.log_batch(run.id, params={"penalty": "l2"})
    with pytest.raises(ConflictError) as info:
        tracking.log_batch(run.id, params={"C": 0.7})
    assert "'C'" in str(info.value)
    assert "0.5" in str(info.value)
    assert "0.7" in str(info.value)
    assert tracking.get_run(run.id).params == {"C": "0.5", "penalty": "l2"}


def test_async_active_run_params_are_write_once(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace(async_logging=True)
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    run.log_params({"C": 0.5, "layers": 3})
    run.log_param("C", 0.5)  # no-op
    with pytest.raises(ConflictError, match="write-once"):
        run.log_param("C", 0.7)
    with pytest.raises(ConflictError):
        run.log_params({"new": 1, "layers": 4})  # checked before anything is queued
    run.log_param("new", "later")  # so "new" is still free
    ws.tracking.flush()
    assert ws.tracking.get_run(run.id).params == {"C": "0.5", "layers": "3", "new": "later"}


def test_a_resumed_active_run_knows_its_stored_params(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace(async_logging=True)
    created = ws.tracking.create_run("e")
    ws.tracking.log_batch(created.id, params={"C": "1"})
    ws.tracking.flush()
    resumed = ActiveRun(ws.tracking, ws.tracking.get_run(created.id))
    resumed.log_param("C", "1")
    with pytest.raises(ConflictError):
        resumed.log_param("C", "2")


def test_async_service_params_are_write_once_within_one_batch(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace(async_logging=True, flush_interval=600)  # writes only on flush
    run = ws.tracking.create_run("e")
    ws.tracking.log_batch(run.id, params={"C": "1"})
    ws.tracking.log_batch(run.id, params={"C": "2"})  # queued into the same batch
    with pytest.raises(ConflictError):
        ws.tracking.flush()
    assert ws.tracking.get_run(run.id).params == {"C": "1"}


def test_a_param_conflict_between_two_clients_comes_from_the_store(
    workspace: Workspace, make_workspace: Callable[..., Workspace], backend: str
) -> None:
    # Client A logs asynchronously and has not flushed yet; client B (another process in
    # real life) stores a different value first. A's flush must report the conflict.
    # A's writer wakes only on flush, so A's value surely reaches the store second.
    if backend == "sqlite-memory":  # one database per engine: give A a writer on this one
        from driftline.tracking.writer import BatchWriter

        writer: BatchWriter | None = BatchWriter(workspace.tracking.store.write_batch, interval=600)
        service_a = TrackingService(
            workspace.tracking.store,
            workspace.tracking.artifacts,
            workspace.content,
            writer=writer,
            user="a",
        )
    else:
        writer = None
        service_a = make_workspace(async_logging=True, flush_interval=600).tracking
    service_b = second_client(workspace, make_workspace, backend)
    try:
        run = service_a.create_run("e")
        active = ActiveRun(service_a, run)
        active.log_param("C", "1")  # queued, not yet written
        service_b.log_batch(run.id, params={"C": "2"})
        with pytest.raises(ConflictError, match="'C'"):
            service_a.flush()
        assert service_b.get_run(run.id).params == {"C": "2"}
        service_a.flush()  # the conflict is reported once
    finally:
        if writer is not None:
            writer.close()


def test_sync_writes_of_two_clients_conflict_in_the_store(
    workspace: Workspace, make_workspace: Callable[..., Workspace], backend: str
) -> None:
    other = second_client(workspace, make_workspace, backend)
    run = workspace.tracking.create_run("e")
    workspace.tracking.log_batch(run.id, params={"lr": "0.1"})
    other.log_batch(run.id, params={"lr": "0.1"})  # same value from another client: fine
    with pytest.raises(ConflictError):
        other.log_batch(run.id, params={"lr": "0.2"})
    assert other.get_run(run.id).params == {"lr": "0.1"}


def test_params_race_between_many_threads_keeps_one_value(
    workspace: Workspace, make_workspace: Callable[..., Workspace], backend: str
) -> None:
    clients = [second_client(workspace, make_workspace, backend) for _ in range(4)]
    run = workspace.tracking.create_run("e")
    ok: list[str] = []
    conflicts: list[str] = []
    start = threading.Barrier(len(clients))

    def write(client: TrackingService, value: str) -> None:
        start.wait()
        try:
            client.log_batch(run.id, params={"seed": value})
            ok.append(value)
        except ConflictError:
            conflicts.append(value)

    threads = [threading.Thread(target=write, args=(c, str(i))) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ok) == 1
    assert len(conflicts) == 3
    assert workspace.tracking.get_run(run.id).params == {"seed": ok[0]}


@pytest.mark.parametrize("key", ["", "/abs", "a..b", "bad$key", "x" * 251, "tab\tkey"])
def test_invalid_keys_are_refused(tracking: TrackingService, key: str) -> None:
    run = tracking.create_run("e")
    with pytest.raises(InvalidArgumentError, match="Invalid"):
        tracking.log_batch(run.id, params={key: 1})
    with pytest.raises(InvalidArgumentError):
        tracking.log_batch(run.id, metrics=[(key, 1.0, 0, None)])
    with pytest.raises(InvalidArgumentError):
        tracking.log_batch(run.id, tags={key: "v"})


def test_over_long_values_are_refused(tracking: TrackingService) -> None:
    run = tracking.create_run("e")
    with pytest.raises(InvalidArgumentError, match="longer than"):
        tracking.log_batch(run.id, params={"p": "x" * 8001})
    tracking.log_batch(run.id, params={"p": "x" * 8000})
    assert len(tracking.get_run(run.id).params["p"]) == 8000


def test_logging_to_an_unknown_run_is_not_found(tracking: TrackingService) -> None:
    with pytest.raises(NotFoundError):
        tracking.log_batch("0" * 32, metrics=[("loss", 1.0, 0, None)], params={"C": "1"})


# -- metrics ------------------------------------------------------------------------------


def test_metric_history_keeps_every_point_including_nan_and_infinities(
    tracking: TrackingService,
) -> None:
    run = tracking.create_run("e")
    values = [0.5, math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]
    tracking.log_batch(
        run.id,
        metrics=[("loss", v, step, 1_700_000_000_000 + step) for step, v in enumerate(values)],
    )
    tracking.log_batch(run.id, metrics=[("loss", 0.25, 2, 1_700_000_000_100)])  # same step again
    history = tracking.get_metric_history(run.id, "loss")
    assert [(p.step, p.key) for p in history] == [
        (0, "loss"),
        (1, "loss"),
        (2, "loss"),
        (2, "loss"),
        (3, "loss"),
        (4, "loss"),
        (5, "loss"),
        (6, "loss"),
    ]
    got = [p.value for p in history]
    assert got[0] == 0.5
    assert math.isnan(got[1])
    assert got[2] == math.inf
    assert got[3] == 0.25
    assert got[4] == -math.inf
    assert got[5] == 0.0
    assert got[6] == 1e308
    assert got[7] == 5e-324
    assert history[0].timestamp == datetime.fromtimestamp(1_700_000_000, UTC)
    assert all(p.timestamp.tzinfo is not None for p in history)
    assert tracking.get_metric_history(run.id, "never-logged") == []
    with pytest.raises(NotFoundError):
        tracking.get_metric_history("0" * 32, "loss")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_latest_value_is_shown_as_such(
    tracking: TrackingService, value: float
) -> None:
    run = tracking.create_run("e")
    tracking.log_batch(run.id, metrics=[("m", 1.0, 0, 1), ("m", value, 1, 2)])
    latest = tracking.get_run(run.id).metrics["m"]
    assert math.isnan(latest) if math.isnan(value) else latest == value


def test_latest_metric_is_the_highest_step_then_the_latest_time(
    tracking: TrackingService,
) -> None:
    run = tracking.create_run("e")

    def latest() -> float:
        return tracking.get_run(run.id).metrics["m"]

    tracking.log_batch(run.id, metrics=[("m", 5.0, 5, 1_000)])
    tracking.log_batch(run.id, metrics=[("m", 3.0, 3, 9_000)])  # lower step, later: ignored
    assert latest() == 5.0
    tracking.log_batch(run.id, metrics=[("m", 6.0, 5, 2_000)])  # same step, later: wins
    assert latest() == 6.0
    tracking.log_batch(run.id, metrics=[("m", 7.0, 5, 1_500)])  # same step, earlier: ignored
    assert latest() == 6.0
    tracking.log_batch(run.id, metrics=[("m", 8.0, 6, 0)])  # higher step, whatever the time
    assert latest() == 8.0


def test_latest_metric_within_one_batch(tracking: TrackingService) -> None:
    run = tracking.create_run("e")
    tracking.log_batch(
        run.id,
        metrics=[
            ("a", 9.0, 9, 1),
            ("a", 1.0, 1, 99),
            ("b", 1.0, 0, 5),
            ("b", 2.0, 0, 7),
            ("b", 3.0, 0, 6),
        ],
    )
    assert tracking.get_run(run.id).metrics == {"a": 9.0, "b": 2.0}


def test_async_logging_keeps_history_and_latest(make_workspace: Callable[..., Workspace]) -> None:
    ws = make_workspace(async_logging=True)
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    for i in range(100):
        run.log_metric("loss", 1 / (i + 1))  # steps count up from 0 per key
    run.log_metrics({"acc": 0.9, "f1": math.nan}, step=7)
    run.log_metric("loss", 123.0, step=50)  # an old step later on: not the latest
    stored = run.to_run()
    assert stored.metrics["loss"] == 1 / 100
    assert stored.metrics["acc"] == 0.9
    assert math.isnan(stored.metrics["f1"])
    history = ws.tracking.get_metric_history(run.id, "loss")
    assert len(history) == 101
    assert [p.step for p in history[:3]] == [0, 1, 2]
    assert sorted(p.value for p in history if p.step == 50) == [1 / 51, 123.0]


def test_naive_metric_timestamps_are_utc(make_workspace: Callable[..., Workspace]) -> None:
    ws = make_workspace()
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    run.log_metric("m", 1.0, timestamp=datetime(2024, 5, 1, 12, 0, 0))
    run.log_metric("m", 2.0, timestamp=datetime(2024, 5, 1, 14, 0, 0, tzinfo=UTC))
    stamps = [p.timestamp for p in ws.tracking.get_metric_history(run.id, "m")]
    assert stamps == [datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 14, tzinfo=UTC)]


def test_a_non_integer_step_is_refused_when_logged(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace(async_logging=True, flush_interval=600)
    other = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    other.log_metric("ok", 1.0)
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    for step in (1.5, "3"):
        with pytest.raises(InvalidArgumentError, match="step"):
            run.log_metric("m", 1.0, step=step)  # type: ignore[arg-type]
    ws.tracking.flush()
    assert ws.tracking.get_metric_history(run.id, "m") == []
    assert [p.step for p in ws.tracking.get_metric_history(other.id, "ok")] == [0]


@pytest.mark.parametrize("value", ["abc", None, object(), [1.0]])
def test_non_numeric_metric_values_are_refused(tracking: TrackingService, value: Any) -> None:
    run = tracking.create_run("e")
    active = ActiveRun(tracking, run)
    with pytest.raises(InvalidArgumentError, match="must be a number"):
        active.log_metric("m", value)
    with pytest.raises(InvalidArgumentError):
        tracking.log_batch(run.id, metrics=[("m", value, 0, None)])
    assert tracking.get_metric_history(run.id, "m") == []


# -- tags ---------------------------------------------------------------------------------


def test_tags_last_write_wins(tracking: TrackingService) -> None:
    run = tracking.create_run("e", tags={"stage": "dev", "driftline.python": "3.11"})
    tracking.log_batch(run.id, tags={"stage": "staging", "owner": "ana"})
    tracking.log_batch(run.id, tags={"stage": "prod", "n": 3})
    stored = tracking.get_run(run.id)
    assert stored.tags == {
        "driftline.python": "3.11",
        "n": "3",
        "owner": "ana",
        "stage": "prod",
    }
    assert stored.user_tags == {"n": "3", "owner": "ana", "stage": "prod"}


def test_async_tags_last_write_wins_within_one_batch(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace(async_logging=True)
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    for value in ("a", "b", "c"):
        run.set_tag("t", value)
    run.set_tags({"u": 1, "t": "d"})
    assert run.to_run().tags == {"t": "d", "u": "1"}


# -- search -------------------------------------------------------------------------------


@pytest.fixture
def corpus(tracking: TrackingService) -> dict[str, Run]:
    """Five runs in experiment 'search' covering every kind of field, one run elsewhere."""
    spec: list[tuple[str, dict[str, Any], dict[str, float], dict[str, str], RunStatus]] = [
        (
            "alpha",
            {"model": "lr", "C": "0.1"},
            {"auc": 0.91, "loss": 0.3, "val loss": 0.5},
            {"team": "risk-a"},
            RunStatus.FINISHED,
        ),
        ("beta", {"model": "rf", "C": "1.0"}, {"auc": 0.85}, {"team": "Risk-b"}, RunStatus.FAILED),
        (
            "gamma",
            {"model": "lr", "C": "10"},
            {"auc": 0.70, "loss": math.nan},
            {},
            RunStatus.RUNNING,
        ),
        (
            "delta",
            {"model": "xgb", "C": "auto"},
            {"auc": math.inf},
            {"team": "ops"},
            RunStatus.KILLED,
        ),
        ("epsilon", {}, {}, {"team": "risk_c"}, RunStatus.FINISHED),
    ]
    runs = {}
    last_start = 0
    for name, params, metrics, tags, status in spec:
        while now_ms() <= last_start:
            pass  # a new millisecond for each run, so start_time alone orders them
        run = tracking.create_run("search", name=name, tags=tags)
        last_start = to_ms(run.start_time)
        tracking.log_batch(
            run.id, params=params, metrics=[(k, v, 0, None) for k, v in metrics.items()]
        )
        if status is not RunStatus.RUNNING:
            tracking.end_run(run.id, status)
        runs[name] = tracking.get_run(run.id)
    zeta = tracking.create_run("elsewhere", name="zeta")
    tracking.log_batch(zeta.id, metrics=[("auc", 0.99, 0, None)], params={"model": "lr"})
    runs["zeta"] = tracking.get_run(zeta.id)
    return runs


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


FILTERS: list[tuple[str, set[str]]] = [
    ("metrics.auc > 0.8", {"alpha", "beta", "delta"}),
    ("metrics.auc >= 0.85", {"alpha", "beta", "delta"}),
    ("metrics.auc < 0.85", {"gamma"}),
    ("metrics.auc <= 0.85", {"beta", "gamma"}),
    ("metrics.auc = 0.85", {"beta"}),
    ("metrics.auc != 0.85", {"alpha", "gamma", "delta"}),
    ("metrics.auc > 1e300", {"delta"}),
    ("metrics.auc in (0.85, 0.7)", {"beta", "gamma"}),
    ("metrics.auc not in (0.85, 0.7)", {"alpha", "delta", "epsilon"}),
    ("metrics.loss is null", {"beta", "delta", "epsilon"}),  # NaN was logged: not null
    ("metrics.loss is not null", {"alpha", "gamma"}),
    ("metrics.loss > 0", {"alpha"}),  # NaN satisfies no comparison
    ("not metrics.loss > 0", {"beta", "gamma", "delta", "epsilon"}),
    ("metrics.`val loss` < 1", {"alpha"}),
    ('metrics."val loss" = 0.5', {"alpha"}),
    ("params.model = 'lr'", {"alpha", "gamma"}),
    ('params.model = "lr"', {"alpha", "gamma"}),
    ("params.model != 'lr'", {"beta", "delta"}),
    ("params.model <> 'lr'", {"beta", "delta"}),
    ("params.model in ('rf', 'xgb')", {"beta", "delta"}),
    ("params.model not in ('rf', 'xgb')", {"alpha", "gamma", "epsilon"}),
    ("params.model like 'l%'", {"alpha", "gamma"}),
    ("params.model not like 'l%'", {"beta", "delta", "epsilon"}),
    ("params.model ilike 'LR'", {"alpha", "gamma"}),
    ("params.model like 'LR'", set()),
    ("params.model is null", {"epsilon"}),
    ("params.C > 2", {"gamma"}),  # numerically; as text '10' < '2'
    ("params.C > 0.5", {"beta", "gamma"}),
    ("params.C < 2", {"alpha", "beta"}),  # 'auto' is not a number
    ("params.C <= 1", {"alpha", "beta"}),
    ("params.C >= 10", {"gamma"}),
    ("params.C = 1", {"beta"}),  # '1.0' equals 1 as a number
    ("params.C = '1'", set()),  # ... but not as text
    ("params.C = '1.0'", {"beta"}),
    ("params.C != 1", {"alpha", "gamma"}),
    ("params.C in (0.1, 10)", {"alpha", "gamma"}),
    ("params.C = 'auto'", {"delta"}),
    ("tags.team = 'ops'", {"delta"}),
    ("tags.team like 'risk%'", {"alpha", "epsilon"}),  # LIKE is case-sensitive everywhere
    ("tags.team ilike 'risk%'", {"alpha", "beta", "epsilon"}),
    ("tags.team not ilike 'risk%'", {"gamma", "delta"}),
    ("tags.team like 'risk_a'", {"alpha"}),
    ("tags.team in ('ops', 'risk_c')", {"delta", "epsilon"}),
    ("tags.team is null", {"gamma"}),
    ("tags.team is not null", {"alpha", "beta", "delta", "epsilon"}),
    ("attributes.status = 'FINISHED'", {"alpha", "epsilon"}),
    ("attributes.status = 'finished'", {"alpha", "epsilon"}),
    ("attributes.status != 'FINISHED'", {"beta", "gamma", "delta"}),
    ("attributes.status in ('failed', 'KILLED')", {"beta", "delta"}),
    ("attributes.status not in ('FINISHED', 'RUNNING')", {"beta", "delta"}),
    ("attributes.status like 'FIN%'", {"alpha", "epsilon"}),
    ("attributes.name = 'alpha'", {"alpha"}),
    ("attributes.run_name = 'alpha'", {"alpha"}),
    ("attributes.name like '%a'", {"alpha", "beta", "gamma", "delta"}),
    ("attributes.name ilike 'ALPHA'", {"alpha"}),
    ("attributes.name < 'c'", {"alpha", "beta"}),
    ("attributes.end_time is null", {"gamma"}),
    ("attributes.end_time is not null", {"alpha", "beta", "delta", "epsilon"}),
    (
        "attributes.start_time > '2000-01-01T00:00:00'",
        {"alpha", "beta", "gamma", "delta", "epsilon"},
    ),
    (
        "attributes.start_time > '2000-01-01T00:00:00+00:00'",
        {"alpha", "beta", "gamma", "delta", "epsilon"},
    ),
    ("attributes.start_time < '2000-01-01'", set()),
    ("attributes.start_time > 946684800000", {"alpha", "beta", "gamma", "delta", "epsilon"}),
    ("attributes.user = 'nobody'", set()),
    (
        "metrics.auc > 0.8 and (params.model = 'lr' or tags.team like 'ri%')",
        {"alpha"},
    ),
    ("params.model = 'lr' or params.model = 'rf' and metrics.auc > 0.9", {"alpha", "gamma"}),
    ("(params.model = 'lr' or params.model = 'rf') and metrics.auc > 0.9", {"alpha"}),
    ("not (params.model = 'lr')", {"beta", "delta", "epsilon"}),
    ("not not params.model = 'lr'", {"alpha", "gamma"}),
    ("not params.model = 'lr' and not params.model = 'rf'", {"delta", "epsilon"}),
    ("METRICS.auc > 0.8 AND Params.model = 'lr' OR tags.team = 'ops'", {"alpha", "delta"}),
    ("metric.auc > 0.9 and param.model = 'lr' and tag.team is not null", {"alpha"}),
    ("((metrics.auc > 0.9))", {"alpha", "delta"}),
    ("  ", {"alpha", "beta", "gamma", "delta", "epsilon"}),
]


def test_every_operator_of_the_search_language(
    tracking: TrackingService, corpus: dict[str, Run]
) -> None:
    wrong = []
    for text, expected in FILTERS:
        got = {r.name for r in tracking.search_runs(experiments="search", filter=text)}
        if got != expected:
            wrong.append(f"{text!r}: expected {sorted(expected)}, got {sorted(got)}")
    assert wrong == []


def test_searching_by_ids_and_precise_times(
    tracking: TrackingService, corpus: dict[str, Run]
) -> None:
    alpha, beta = corpus["alpha"], corpus["beta"]

    def names(text: str) -> set[str]:
        return {r.name for r in tracking.search_runs(experiments="search", filter=text)}

    assert names(f"attributes.run_id = '{alpha.id}'") == {"alpha"}
    assert names(f"attributes.id in ('{alpha.id}', '{beta.id}')") == {"alpha", "beta"}
    assert names(f"attributes.experiment_id = '{alpha.experiment_id}'") == set(corpus) - {"zeta"}
    assert "alpha" in names(f"attributes.start_time <= '{iso(alpha.start_time)}'")
    assert "alpha" in names(f"attributes.start_time >= '{iso(alpha.start_time)}'")
    later = alpha.start_time + timedelta(milliseconds=1)
    assert "alpha" not in names(f"attributes.start_time >= '{iso(later)}'")
    assert "alpha" in names(f"attributes.start_time = '{iso(alpha.start_time)}Z'")


def test_search_across_experiments(tracking: TrackingService, corpus: dict[str, Run]) -> None:
    everywhere = tracking.search_runs(filter="metrics.auc > 0.95")
    assert {r.name for r in everywhere} == {"delta", "zeta"}
    both = tracking.search_runs(experiments=["search", "elsewhere"], filter="params.model = 'lr'")
    assert {r.name for r in both} == {"alpha", "gamma", "zeta"}
    by_id = tracking.search_runs(experiments=[corpus["zeta"].experiment_id])
    assert [r.name for r in by_id] == ["zeta"]
    with pytest.raises(NotFoundError):
        tracking.search_runs(experiments="no-such-experiment")


def test_search_results_carry_params_metrics_and_tags(
    tracking: TrackingService, corpus: dict[str, Run]
) -> None:
    (alpha,) = tracking.search_runs(experiments="search", filter="attributes.name = 'alpha'")
    assert alpha == corpus["alpha"]
    assert alpha.params == {"C": "0.1", "model": "lr"}
    assert alpha.metrics == {"auc": 0.91, "loss": 0.3, "val loss": 0.5}
    assert alpha.tags == {"team": "risk-a"}


ORDERS: list[tuple[list[str], list[str]]] = [
    (["metrics.auc desc"], ["delta", "alpha", "beta", "gamma", "epsilon"]),
    (["metrics.auc asc"], ["gamma", "beta", "alpha", "delta", "epsilon"]),
    (["metrics.auc"], ["gamma", "beta", "alpha", "delta", "epsilon"]),
    (["params.C asc"], ["alpha", "beta", "gamma", "delta", "epsilon"]),  # numbers, text, none
    (["params.C desc"], ["gamma", "beta", "alpha", "delta", "epsilon"]),
    (["params.model asc", "metrics.auc desc"], ["alpha", "gamma", "beta", "delta", "epsilon"]),
    (["params.model desc", "metrics.auc asc"], ["delta", "beta", "gamma", "alpha", "epsilon"]),
    (["attributes.name"], ["alpha", "beta", "delta", "epsilon", "gamma"]),
    (["attributes.name DESC"], ["gamma", "epsilon", "delta", "beta", "alpha"]),
    (["attributes.start_time asc"], ["alpha", "beta", "gamma", "delta", "epsilon"]),
    (["attributes.start_time desc"], ["epsilon", "delta", "gamma", "beta", "alpha"]),
    ([], ["epsilon", "delta", "gamma", "beta", "alpha"]),  # newest first by default
]


def test_order_by_with_missing_values_last(
    tracking: TrackingService, corpus: dict[str, Run]
) -> None:
    wrong = []
    for order_by, expected in ORDERS:
        got = [r.name for r in tracking.search_runs(experiments="search", order_by=order_by)]
        if got != expected:
            wrong.append(f"{order_by}: expected {expected}, got {got}")
    assert wrong == []


def test_ordering_by_start_time_keeps_creation_order_within_a_millisecond(
    tracking: TrackingService,
) -> None:
    experiment = tracking.create_experiment("same-ms")
    ids = [
        tracking.store.create_run(
            experiment_id=experiment.id,
            name=f"r{i}",
            user="u",
            start_time=1_700_000_000_000,
            parent_id=None,
            tags={},
        ).id
        for i in range(3)
    ]

    def order(term: str) -> list[str]:
        return [r.id for r in tracking.search_runs(experiments="same-ms", order_by=term)]

    assert order("attributes.start_time desc") == ids[::-1]
    assert order("attributes.start_time asc") == ids


def test_order_by_metric_puts_nan_and_missing_last(
    tracking: TrackingService, corpus: dict[str, Run]
) -> None:
    for direction in ("asc", "desc"):
        got = [
            r.name
            for r in tracking.search_runs(
                experiments="search", order_by=f"metrics.loss {direction}"
            )
        ]
        assert got[0] == "alpha"
        assert set(got[1:]) == {"beta", "gamma", "delta", "epsilon"}
    got = [r.name for r in tracking.search_runs(experiments="search", order_by="tags.team desc")]
    assert got[-1] == "gamma"


def test_paging_through_search_results_has_no_gaps_or_duplicates(
    tracking: TrackingService,
) -> None:
    ids = []
    for i in range(23):
        run = tracking.create_run("paging", name=f"run-{i:02d}")
        tracking.log_batch(run.id, metrics=[("i", float(i), 0, None)])
        ids.append(run.id)
    for order_by, expected in (
        (["metrics.i asc"], ids),
        (["metrics.i desc"], ids[::-1]),
        ([], ids[::-1]),  # many runs share a millisecond: the tie-break keeps pages stable
    ):
        seen: list[str] = []
        sizes = []
        token = None
        while True:
            page = tracking.search_runs(
                experiments="paging", order_by=order_by, max_results=5, page_token=token
            )
            sizes.append(len(page))
            seen += [r.id for r in page]
            token = page.next_token
            if token is None:
                break
        assert sizes == [5, 5, 5, 5, 3]
        assert seen == expected


def test_an_exactly_full_last_page_has_no_next_token(tracking: TrackingService) -> None:
    for i in range(4):
        tracking.create_run("paging", name=f"r{i}")
    first = tracking.search_runs(experiments="paging", max_results=2)
    second = tracking.search_runs(experiments="paging", max_results=2, page_token=first.next_token)
    assert len(second) == 2
    assert second.next_token is None


def test_a_search_page_token_belongs_to_its_query(tracking: TrackingService) -> None:
    for i in range(3):
        tracking.create_run("paging", name=f"r{i}")
    token = tracking.search_runs(experiments="paging", max_results=2).next_token
    assert token is not None
    assert len(tracking.search_runs(experiments="paging", max_results=2, page_token=token)) == 1
    for changed in (
        {"filter": "attributes.name = 'r1'"},
        {"order_by": ["attributes.name"]},
        {"max_results": 3},
        {"experiments": None},
        {"include_deleted": True},
    ):
        query: dict[str, Any] = {"experiments": "paging", "max_results": 2, **changed}
        with pytest.raises(InvalidArgumentError, match="different query"):
            tracking.search_runs(page_token=token, **query)
    with pytest.raises(InvalidArgumentError):
        tracking.search_runs(page_token="garbage")


@pytest.mark.parametrize("size", [0, -1, 5001])
def test_page_sizes_are_bounded(tracking: TrackingService, size: int) -> None:
    with pytest.raises(InvalidArgumentError, match="max_results"):
        tracking.search_runs(max_results=size)


def test_a_bad_filter_is_an_invalid_argument_naming_the_position(
    tracking: TrackingService,
) -> None:
    with pytest.raises(InvalidArgumentError, match="position 14"):
        tracking.search_runs(filter="metrics.auc >")
    with pytest.raises(InvalidArgumentError):
        tracking.search_runs(order_by=["metrics.auc sideways"])


def test_user_values_cannot_inject_sql(tracking: TrackingService, corpus: dict[str, Run]) -> None:
    for text in (
        "params.model = 'x'' OR 1=1 --'",
        "params.model = 'lr'' OR ''1''=''1'",
        "tags.team like '%'' OR 1=1 --'",
        "params.`model' OR '1'='1` = 'lr'",
        "attributes.name = 'alpha''; DROP TABLE runs; --'",
    ):
        assert list(tracking.search_runs(filter=text)) == [], text
    assert len(tracking.search_runs(experiments="search")) == 5  # the tables are intact


def test_search_sees_everything_logged_asynchronously(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace(async_logging=True)
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    run.log_metric("auc", 0.9)
    ws.tracking.flush()
    assert [r.id for r in ws.tracking.search_runs(filter="metrics.auc > 0.5")] == [run.id]


# -- run artifacts ------------------------------------------------------------------------


def make_files(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_log_list_and_download_one_file(tracking: TrackingService, tmp_path: Path) -> None:
    run = tracking.create_run("e")
    source = tmp_path / "model.pkl"
    source.write_bytes(b"weights")
    entry = tracking.log_artifact(run.id, source)
    assert entry.path == "model.pkl"
    assert entry.size == 7
    assert entry.digest.startswith("blake3:")
    nested = tracking.log_artifact(run.id, source, artifact_path="models/v1/")
    assert nested.path == "models/v1/model.pkl"
    assert [e.path for e in tracking.list_artifacts(run.id)] == ["model.pkl", "models/v1/model.pkl"]
    listed = tracking.list_artifacts(run.id)[0]
    assert (listed.path, listed.digest, listed.size) == (entry.path, entry.digest, entry.size)
    assert listed.created_at.tzinfo is not None

    written = tracking.download_artifacts(run.id, "models/v1/model.pkl", tmp_path / "out")
    assert written == [tmp_path / "out" / "model.pkl"]
    assert written[0].read_bytes() == b"weights"


def test_log_and_download_a_folder(tracking: TrackingService, tmp_path: Path) -> None:
    run = tracking.create_run("e")
    files = {"a.txt": b"A", "sub/b.txt": b"B", "sub/deeper/c.bin": b"\x00\x01"}
    folder = make_files(tmp_path / "folder", files)
    entries = tracking.log_artifacts(run.id, folder, artifact_path="data")
    assert sorted(e.path for e in entries) == [
        "data/a.txt",
        "data/sub/b.txt",
        "data/sub/deeper/c.bin",
    ]
    assert [e.path for e in tracking.list_artifacts(run.id, "data/sub")] == [
        "data/sub/b.txt",
        "data/sub/deeper/c.bin",
    ]
    assert tracking.list_artifacts(run.id, "data/s") == []  # a prefix is a folder, not a string

    out = tmp_path / "out"
    written = tracking.download_artifacts(run.id, "data", out)
    assert sorted(p.relative_to(out).as_posix() for p in written) == sorted(files)
    for relative, data in files.items():
        assert (out / relative).read_bytes() == data

    at_root = tracking.log_artifacts(tracking.create_run("e").id, folder, artifact_path="")
    assert sorted(e.path for e in at_root) == sorted(files)


def test_a_folder_keeps_its_name_unless_told_otherwise(
    tracking: TrackingService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"summary.html": b"<p>", "plots/roc.png": b"png"}
    make_files(tmp_path / "reports", files)
    monkeypatch.chdir(tmp_path)
    run = tracking.create_run("e")
    # As the README writes it: a relative folder with a trailing slash.
    entries = tracking.log_artifacts(run.id, "reports/")
    assert sorted(e.path for e in entries) == ["reports/plots/roc.png", "reports/summary.html"]
    tracking.log_artifacts(run.id, tmp_path / "reports" / "plots" / "..", artifact_path=None)
    assert len(tracking.list_artifacts(run.id)) == 2  # ".." names the folder it points to

    written = tracking.download_artifacts(run.id, "reports", tmp_path / "one")
    assert sorted(p.relative_to(tmp_path / "one").as_posix() for p in written) == sorted(files)

    tracking.log_artifact_bytes(run.id, b"top", "notes.txt")
    for everything in ("", None):
        out = tmp_path / f"all-{everything}"
        written = tracking.download_artifacts(run.id, everything, out)
        assert sorted(p.relative_to(out).as_posix() for p in written) == [
            "notes.txt",
            "reports/plots/roc.png",
            "reports/summary.html",
        ]
        assert (out / "reports" / "plots" / "roc.png").read_bytes() == b"png"

    empty = tracking.create_run("e")
    with pytest.raises(NotFoundError, match="has no artifacts"):
        tracking.download_artifacts(empty.id, None, tmp_path / "none")


def test_listing_a_prefix_treats_like_wildcards_literally(
    tracking: TrackingService, tmp_path: Path
) -> None:
    run = tracking.create_run("e")
    make_files(tmp_path / "f", {"a_b/one.txt": b"1", "axb/two.txt": b"2", "a%/three.txt": b"3"})
    tracking.log_artifacts(run.id, tmp_path / "f", artifact_path="")
    assert [e.path for e in tracking.list_artifacts(run.id, "a_b")] == ["a_b/one.txt"]
    assert [e.path for e in tracking.list_artifacts(run.id, "a%")] == ["a%/three.txt"]


def test_logging_a_path_again_points_it_to_the_new_content(
    tracking: TrackingService, tmp_path: Path
) -> None:
    run = tracking.create_run("e")
    source = tmp_path / "report.txt"
    source.write_bytes(b"first")
    first = tracking.log_artifact(run.id, source)
    source.write_bytes(b"second version")
    second = tracking.log_artifact(run.id, source)
    assert first.digest != second.digest
    (entry,) = tracking.list_artifacts(run.id)
    assert (entry.digest, entry.size) == (second.digest, 14)
    tracking.download_artifacts(run.id, "report.txt", tmp_path / "out")
    assert (tmp_path / "out" / "report.txt").read_bytes() == b"second version"


def test_identical_files_of_two_runs_are_stored_once(
    workspace: Workspace, tmp_path: Path, backend: str
) -> None:
    if backend == "http":
        pytest.skip("counts the objects of the local byte store (the server has its own)")
    tracking = workspace.tracking
    data = b"the same model" * 1000
    one = make_files(tmp_path / "one", {"model.bin": data})
    two = make_files(tmp_path / "two", {"renamed.bin": data, "other.bin": b"different"})
    a = tracking.log_artifact(tracking.create_run("e").id, one / "model.bin")
    b = tracking.log_artifact(tracking.create_run("e").id, two / "renamed.bin")
    tracking.log_artifact(tracking.create_run("e").id, two / "other.bin")
    assert a.digest == b.digest
    keys = list(workspace.content.backend.iter_keys())
    assert len(keys) == 2
    assert digest_key(a.digest) in keys


@pytest.mark.parametrize(
    "artifact_path", ["../escape", "/absolute", "a\\b", "a\x00b", "a/../../b", "C:/x"]
)
def test_unsafe_artifact_paths_are_refused(
    tracking: TrackingService, tmp_path: Path, artifact_path: str
) -> None:
    run = tracking.create_run("e")
    source = tmp_path / "f.txt"
    source.write_bytes(b"x")
    folder = make_files(tmp_path / "folder", {"g.txt": b"y"})
    with pytest.raises(InvalidArgumentError):
        tracking.log_artifact(run.id, source, artifact_path=artifact_path)
    with pytest.raises(InvalidArgumentError):
        tracking.log_artifacts(run.id, folder, artifact_path=artifact_path)
    with pytest.raises(InvalidArgumentError):
        tracking.log_artifact_bytes(run.id, b"z", artifact_path)
    with pytest.raises(InvalidArgumentError):
        tracking.download_artifacts(run.id, artifact_path, tmp_path / "out")
    assert tracking.list_artifacts(run.id) == []


def test_artifact_argument_errors(tracking: TrackingService, tmp_path: Path) -> None:
    run = tracking.create_run("e")
    (tmp_path / "file.txt").write_bytes(b"x")
    with pytest.raises(InvalidArgumentError, match="no such file"):
        tracking.log_artifact(run.id, tmp_path / "missing.txt")
    with pytest.raises(InvalidArgumentError, match="log_artifacts"):
        tracking.log_artifact(run.id, tmp_path)
    with pytest.raises(InvalidArgumentError, match="log_artifact"):
        tracking.log_artifacts(run.id, tmp_path / "file.txt")
    with pytest.raises(NotFoundError):
        tracking.log_artifact("0" * 32, tmp_path / "file.txt")
    with pytest.raises(NotFoundError, match=r"nothing\.txt"):
        tracking.download_artifacts(run.id, "nothing.txt", tmp_path / "out")


def test_in_memory_artifacts(tracking: TrackingService, tmp_path: Path) -> None:
    run = tracking.create_run("e")
    entry = tracking.log_artifact_bytes(run.id, b"report", "reports/summary.txt")
    assert entry.size == 6
    tracking.download_artifacts(run.id, "reports", tmp_path / "out")
    assert (tmp_path / "out" / "summary.txt").read_bytes() == b"report"


def test_a_corrupt_artifact_is_never_downloaded(
    workspace: Workspace, tmp_path: Path, backend: str
) -> None:
    if backend == "http":
        pytest.skip("tampers with a file of the local byte store (the server has its own)")
    tracking = workspace.tracking
    run = tracking.create_run("e")
    entry = tracking.log_artifact_bytes(run.id, b"important bytes", "model/weights.bin")
    stored = workspace.content.backend.local_path(digest_key(entry.digest))
    assert stored is not None
    stored.chmod(0o644)
    stored.write_bytes(b"tampered bytes!")
    with pytest.raises(IntegrityError, match=f"run {run.id}/model/weights.bin"):
        tracking.download_artifacts(run.id, "model", tmp_path / "out")
    assert not (tmp_path / "out" / "weights.bin").exists()


# -- the batch write path ------------------------------------------------------------------


def test_write_batch_commits_everything_or_reports_conflicts(tracking: TrackingService) -> None:
    store = tracking.store
    run = tracking.create_run("e")
    other = tracking.create_run("e")
    conflicts = store.write_batch(
        LogBatch(
            metrics=[(run.id, "m", 1.0, 0, 10), (other.id, "m", 2.0, 0, 10)],
            params=[(run.id, "p", "1"), (other.id, "p", "2")],
            tags=[(run.id, "t", "a")],
            heartbeats=[run.id],
        )
    )
    assert conflicts == []
    conflicts = store.write_batch(LogBatch(params=[(run.id, "p", "9"), (other.id, "p", "2")]))
    assert len(conflicts) == 1
    assert run.id in conflicts[0]
    assert "'p'" in conflicts[0]
    assert store.find_run(run.id).params == {"p": "1"}  # type: ignore[union-attr]
    assert store.find_run(other.id).metrics == {"m": 2.0}  # type: ignore[union-attr]
    assert store.write_batch(LogBatch()) == []


def test_heartbeats_only_touch_running_runs(tracking: TrackingService) -> None:
    store = tracking.store
    running = tracking.create_run("e")
    ended = tracking.end_run(tracking.create_run("e").id)
    store.write_batch(LogBatch(heartbeats=[running.id, ended.id]))
    assert store.find_run(running.id).heartbeat_at >= running.start_time  # type: ignore[union-attr, operator]
    assert store.find_run(ended.id).heartbeat_at == ended.heartbeat_at  # type: ignore[union-attr]
