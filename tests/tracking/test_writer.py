"""Logging durability: the background writer, run endings, processes that exit or die.

Nothing here sleeps to wait for something: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import driftline as dl
from driftline.errors import BackendError, ConflictError, NotFoundError
from driftline.tracking import ActiveRun, RunStatus, TrackingService
from driftline.tracking._sql import SqlTrackingStore
from driftline.tracking.store import LogBatch
from driftline.tracking.writer import BatchWriter
from driftline.workspace import Workspace


def count_rows(ws: Workspace, table: str = "metrics") -> int:
    return int(
        ws.database.read(
            lambda conn: conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
        )
    )


def steps_of(ws: Workspace, run_id: str, key: str) -> list[int]:
    return [p.step for p in ws.tracking.get_metric_history(run_id, key)]


class FlakySink:
    """Makes ``SqlTrackingStore.write_batch`` fail with BackendError while ``down`` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.down = False
        self.failures = 0
        self.commits = 0
        real = SqlTrackingStore.write_batch
        sink = self

        def write_batch(store: SqlTrackingStore, batch: LogBatch) -> list[str]:
            if sink.down:
                sink.failures += 1
                raise BackendError("the metadata database is unavailable (test)")
            sink.commits += 1
            return real(store, batch)

        # Patched on the class before a workspace is opened, so its writer binds the fake.
        monkeypatch.setattr(SqlTrackingStore, "write_batch", write_batch)


def flush_succeeds(service: TrackingService) -> Callable[[], bool]:
    def attempt() -> bool:
        try:
            service.flush(timeout=30)
        except BackendError:
            return False
        return True

    return attempt


# -- the background writer with a real database -------------------------------------------


def test_20k_async_metrics_are_all_in_the_database_after_flush(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace(async_logging=True)
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    started = time.perf_counter()
    for i in range(20_000):
        run.log_metric("loss", i / 2)
    enqueue_seconds = time.perf_counter() - started
    run.log_params({"C": 1.0, "layers": 3})
    run.set_tag("phase", "train")
    ws.tracking.flush()
    assert count_rows(ws) == 20_000
    history = ws.tracking.get_metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(20_000))
    assert [p.value for p in history] == [i / 2 for i in range(20_000)]
    stored = ws.tracking.get_run(run.id)
    assert stored.metrics == {"loss": 19_999 / 2}
    assert stored.params == {"C": "1.0", "layers": "3"}
    assert stored.tags == {"phase": "train"}
    # Logging only enqueues: far below one database round trip per call.
    assert enqueue_seconds < 5, f"20k log_metric calls took {enqueue_seconds:.2f} s"


def test_flush_raises_backend_error_while_the_database_is_down_and_loses_nothing(
    make_workspace: Callable[..., Workspace],
    monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., Any],
) -> None:
    sink = FlakySink(monkeypatch)
    ws = make_workspace(async_logging=True)
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    sink.down = True
    for i in range(1_000):
        run.log_metric("m", float(i))
    run.log_param("p", "1")
    run.set_tag("t", "x")
    with pytest.raises(BackendError, match="stay queued") as info:
        ws.tracking.flush(timeout=30)
    assert "1002 logged items" in str(info.value)
    assert isinstance(info.value.__cause__, BackendError)
    assert sink.failures >= 1

    for i in range(1_000, 1_500):  # logging goes on while the database is down
        run.log_metric("m", float(i))
    with pytest.raises(BackendError):
        ws.tracking.flush(timeout=30)

    sink.down = False
    wait_until(flush_succeeds(ws.tracking), message="a flush after the database came back")
    assert steps_of(ws, run.id, "m") == list(range(1_500))  # nothing lost or written twice
    assert count_rows(ws) == 1_500
    stored = ws.tracking.get_run(run.id)
    assert stored.params == {"p": "1"}
    assert stored.tags == {"t": "x"}


def test_the_queue_drains_by_itself_when_the_database_comes_back(
    make_workspace: Callable[..., Workspace],
    monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., Any],
) -> None:
    sink = FlakySink(monkeypatch)
    ws = make_workspace(async_logging=True, flush_interval=0.01)
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    sink.down = True
    for i in range(100):
        run.log_metric("m", float(i))
    wait_until(lambda: sink.failures >= 1, message="a failed write")
    sink.down = False
    wait_until(lambda: count_rows(ws) == 100, timeout=30, message="the retried batch")
    ws.tracking.flush()
    assert steps_of(ws, run.id, "m") == list(range(100))


@pytest.mark.postgres
def test_a_real_postgres_outage_is_reported_then_survived(
    postgres: Any, open_workspace: Callable[..., Workspace], wait_until: Callable[..., Any]
) -> None:
    name = postgres.create_database()
    ws = open_workspace(postgres.url(name), async_logging=True)
    ws.database.retry_delays = (0.01, 0.05)  # give up quickly: the test wants the report
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    run.log_metric("m", 0.0)
    ws.tracking.flush()
    with postgres.connect() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            for i in range(1, 500):
                run.log_metric("m", float(i))
            with pytest.raises(BackendError, match="not written yet"):
                ws.tracking.flush(timeout=60)
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    wait_until(flush_succeeds(ws.tracking), timeout=60, message="a flush after the outage")
    assert steps_of(ws, run.id, "m") == list(range(500))


def test_a_conflict_from_another_process_surfaces_once_at_flush(
    make_workspace: Callable[..., Workspace],
    open_workspace: Callable[..., Workspace],
    shared_db_url: str,
) -> None:
    a = open_workspace(shared_db_url, async_logging=True, flush_interval=600)
    b = open_workspace(shared_db_url)
    run = ActiveRun(a.tracking, a.tracking.create_run("e"))
    run.log_param("seed", "1")
    run.log_metric("m", 1.0)
    b.tracking.log_batch(run.id, params={"seed": "2"})
    with pytest.raises(ConflictError, match="'seed'"):
        a.tracking.flush()
    a.tracking.flush()
    assert b.tracking.get_run(run.id).params == {"seed": "2"}
    assert steps_of(b, run.id, "m") == [0]  # the rest of the batch was written


def test_threads_logging_to_their_own_runs_lose_nothing(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace(async_logging=True)
    runs = [ActiveRun(ws.tracking, ws.tracking.create_run("e")) for _ in range(4)]

    def work(run: ActiveRun) -> None:
        for i in range(2_500):
            run.log_metric("m", float(i))

    threads = [threading.Thread(target=work, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ws.tracking.flush()
    for run in runs:
        assert steps_of(ws, run.id, "m") == list(range(2_500))


# -- run endings through the module-level API ---------------------------------------------


def test_an_exception_inside_the_block_marks_the_run_failed_keeping_what_was_logged(
    configure_default: Callable[..., Workspace],
) -> None:
    configure_default()
    started: list[str] = []

    def train() -> None:
        with dl.start_run(experiment="e") as run:
            started.append(run.id)
            dl.log_params({"C": 0.5})
            for i in range(300):
                dl.log_metric("loss", 1 / (i + 1))
            dl.set_tag("stage", "training")
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        train()
    stored = dl.get_run(started[0])
    assert stored.status is RunStatus.FAILED
    assert stored.end_time is not None
    assert stored.params == {"C": "0.5"}
    assert stored.tags == {"stage": "training"}
    assert len(dl.get_metric_history(started[0], "loss")) == 300
    assert dl.active_run() is None


def test_keyboard_interrupt_marks_the_run_killed(
    configure_default: Callable[..., Workspace],
) -> None:
    configure_default()
    started: list[str] = []

    def train() -> None:
        with dl.start_run(experiment="e") as run:
            started.append(run.id)
            dl.log_metric("loss", 0.5)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train()
    stored = dl.get_run(started[0])
    assert stored.status is RunStatus.KILLED
    assert stored.metrics == {"loss": 0.5}


def test_a_normal_exit_finishes_the_run(configure_default: Callable[..., Workspace]) -> None:
    configure_default()
    with dl.start_run(experiment="e") as run:
        dl.log_metric("loss", 0.5)
    assert dl.get_run(run.id).status is RunStatus.FINISHED
    assert run.ended
    assert run.end().status is RunStatus.FINISHED  # ending an ended run changes nothing


def test_ending_a_run_can_be_retried_after_the_database_comes_back(
    make_workspace: Callable[..., Workspace],
    monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., Any],
) -> None:
    sink = FlakySink(monkeypatch)
    ws = make_workspace(async_logging=True)
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    sink.down = True
    run.log_metric("m", 1.0)
    with pytest.raises(BackendError):
        run.end()
    sink.down = False
    wait_until(flush_succeeds(ws.tracking))
    assert run.end().status is RunStatus.FINISHED
    assert ws.tracking.get_run(run.id).status is RunStatus.FINISHED


def test_a_conflict_reported_at_the_end_still_ends_the_run(
    open_workspace: Callable[..., Workspace], shared_db_url: str
) -> None:
    a = open_workspace(shared_db_url, async_logging=True, flush_interval=600)
    b = open_workspace(shared_db_url)
    run = a.tracking.create_run("e")

    def train() -> None:
        with ActiveRun(a.tracking, run) as active:
            active.log_param("seed", "1")
            b.tracking.log_batch(run.id, params={"seed": "2"})  # another process wins

    with pytest.raises(ConflictError):
        train()
    assert b.tracking.get_run(run.id).status is not RunStatus.RUNNING


def test_flush_returns_while_another_thread_keeps_logging(
    open_workspace: Callable[..., Workspace], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Another thread logs one value during every commit the writer makes (done inside
    # the sink, so the interleaving is the same on every run of the test).
    real = SqlTrackingStore.write_batch
    producing = threading.Event()
    producing.set()
    during: list[ActiveRun] = []

    def write_batch(store: SqlTrackingStore, batch: LogBatch) -> list[str]:
        if producing.is_set() and during:
            during[0].log_metric("during", 1.0)
        return real(store, batch)

    monkeypatch.setattr(SqlTrackingStore, "write_batch", write_batch)
    ws = open_workspace(f"sqlite:///{tmp_path / 'writer.db'}", async_logging=True)
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    during.append(run)
    for i in range(1_000):
        run.log_metric("before", float(i))
    try:
        ws.tracking.flush(timeout=1.5)  # must return once the 1000 values are written
    finally:
        producing.clear()
    assert steps_of(ws, run.id, "before") == list(range(1_000))


def test_one_bad_row_does_not_lose_other_runs_rows(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace(async_logging=True, flush_interval=600)
    good = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    for i in range(10):
        good.log_metric("m", float(i))
    with contextlib.suppress(NotFoundError):  # refusing the bad row up front is a fine fix
        ws.tracking.log_batch("0" * 32, metrics=[("m", 1.0, 0, None)])  # no such run
    with contextlib.suppress(Exception):  # reporting the bad row is fine; losing rows is not
        ws.tracking.flush()
    assert steps_of(ws, good.id, "m") == list(range(10))


# -- the BatchWriter on its own -------------------------------------------------------------


class RecordingSink:
    def __init__(self) -> None:
        self.batches: list[LogBatch] = []
        self.conflicts: list[str] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, batch: LogBatch) -> list[str]:
        self.gate.wait(30)
        self.batches.append(batch)
        return list(self.conflicts)

    def rows(self) -> list[Any]:
        return [row for batch in self.batches for row in batch.metrics]


@pytest.fixture
def writers() -> Iterator[list[BatchWriter]]:
    made: list[BatchWriter] = []
    yield made
    for writer in made:
        with contextlib.suppress(Exception):
            writer.close(timeout=5)


def test_writer_batches_respect_max_batch_and_keep_order(writers: list[BatchWriter]) -> None:
    sink = RecordingSink()
    writer = BatchWriter(sink, interval=60, max_batch=1_000)
    writers.append(writer)
    rows = [("r", "m", float(i), i, 0) for i in range(3_500)]
    writer.metrics.extend(rows)
    writer.flush(timeout=30)
    assert sink.rows() == rows
    assert max(len(b.metrics) for b in sink.batches) <= 1_000
    assert writer.pending == 0


def test_writer_sends_heartbeats_even_when_nothing_is_logged(
    writers: list[BatchWriter], wait_until: Callable[..., Any]
) -> None:
    sink = RecordingSink()
    writer = BatchWriter(sink, interval=0.01, heartbeat=lambda: ["run-1"], heartbeat_interval=0.05)
    writers.append(writer)
    wait_until(lambda: any(b.heartbeats == ["run-1"] and not b for b in sink.batches))


def test_flush_times_out_with_backend_error_while_the_sink_hangs(
    writers: list[BatchWriter],
) -> None:
    sink = RecordingSink()
    sink.gate.clear()
    writer = BatchWriter(sink, interval=60)
    writers.append(writer)
    writer.metrics.append(("r", "m", 1.0, 0, 0))
    with pytest.raises(BackendError, match="Timed out"):
        writer.flush(timeout=0.2)
    sink.gate.set()
    writer.flush(timeout=30)
    assert len(sink.rows()) == 1


def test_flush_reports_store_conflicts_once(writers: list[BatchWriter]) -> None:
    sink = RecordingSink()
    sink.conflicts = ["param 'C' of run r is '1'; cannot change it to '2'"]
    writer = BatchWriter(sink, interval=60)
    writers.append(writer)
    writer.params.append(("r", "C", "2"))
    with pytest.raises(ConflictError, match="param 'C'"):
        writer.flush(timeout=30)
    sink.conflicts = []
    writer.flush(timeout=30)


def test_producers_wait_for_room_when_too_much_is_queued(
    make_workspace: Callable[..., Workspace],
) -> None:
    ws = make_workspace(async_logging=True)
    writer = ws.tracking.writer
    assert writer is not None
    writer.max_pending = 500
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    high_water = 0
    for i in range(5_000):
        run.log_metric("m", float(i))
        high_water = max(high_water, len(writer.metrics))
    assert high_water <= 501
    ws.tracking.flush()
    assert count_rows(ws) == 5_000


def test_close_drains_the_queue_and_stops_the_thread(
    writers: list[BatchWriter], wait_until: Callable[..., Any]
) -> None:
    sink = RecordingSink()
    writer = BatchWriter(sink, interval=60)
    writer.metrics.extend(("r", "m", float(i), i, 0) for i in range(10))
    writer.close(timeout=30)
    assert len(sink.rows()) == 10
    thread = writer._thread
    wait_until(lambda: not thread.is_alive(), message="the writer thread to stop")


# -- processes that exit without ending their runs ----------------------------------------

EXIT_WITHOUT_ENDING = textwrap.dedent(
    """
    import sys
    import driftline as dl

    home, uri, artifacts, how = sys.argv[1:5]
    dl.configure(home=home, uri=uri, artifact_root=artifacts, capture_environment=False)
    run = dl.start_run(experiment="subprocess", name=how)
    print(run.id, flush=True)
    dl.log_params({"C": 0.5, "how": how})
    for i in range(5_000):
        dl.log_metric("loss", i / 10)
    dl.set_tag("phase", "done")
    if how == "crash":
        raise RuntimeError("training blew up")
    # no flush(), no end_run(): interpreter exit must drain and end the run
    """
)


def run_script(tmp_path: Path, script: str, *args: str, timeout: float = 120) -> Any:
    path = tmp_path / "script.py"
    path.write_text(script)
    return subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(
    ("how", "status", "exit_code"),
    [("exit", RunStatus.FINISHED, 0), ("crash", RunStatus.FAILED, 1)],
)
def test_a_process_that_exits_without_ending_its_run_loses_nothing(
    tmp_path: Path,
    shared_db_url: str,
    open_workspace: Callable[..., Workspace],
    how: str,
    status: RunStatus,
    exit_code: int,
) -> None:
    home = tmp_path / "child" / ".driftline"
    done = run_script(
        tmp_path, EXIT_WITHOUT_ENDING, str(home), shared_db_url, str(tmp_path / "child-art"), how
    )
    assert done.returncode == exit_code, done.stderr
    if how == "crash":
        assert "RuntimeError: training blew up" in done.stderr
    assert "could not" not in done.stderr, done.stderr
    assert "may not be saved" not in done.stderr, done.stderr
    run_id = done.stdout.strip()
    ws = open_workspace(shared_db_url)
    stored = ws.tracking.get_run(run_id)
    assert stored.status is status
    assert stored.end_time is not None
    assert stored.params == {"C": "0.5", "how": how}
    assert stored.tags == {"phase": "done"}
    assert steps_of(ws, run_id, "loss") == list(range(5_000))


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait for a child (reading its pipes, so a chatty child cannot block); code, stderr."""
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


TWO_WRITERS = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import driftline as dl

    home, uri, artifacts, meeting, name = sys.argv[1:6]
    dl.configure(home=home, uri=uri, artifact_root=artifacts, capture_environment=False)
    meeting = Path(meeting)
    (meeting / f"ready-{name}").touch()
    deadline = time.monotonic() + 60
    while not (meeting / "go").exists():  # start together, to write at the same time
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.002)
    for r in range(2):
        with dl.start_run(experiment="shared", name=f"{name}-{r}"):
            dl.log_param("writer", name)
            for i in range(5_000):
                dl.log_metric("m", float(i))
                if i % 1_000 == 0:
                    dl.flush()
    """
)


def test_two_processes_logging_to_one_workspace_at_once_lose_nothing(
    tmp_path: Path,
    shared_db_url: str,
    open_workspace: Callable[..., Workspace],
    wait_until: Callable[..., Any],
) -> None:
    ws = open_workspace(shared_db_url)  # the schema exists before the writers start
    ws.tracking.create_experiment("shared")
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    script = tmp_path / "writer.py"
    script.write_text(TWO_WRITERS)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(tmp_path / f"h{name}" / ".driftline"),
                shared_db_url,
                str(tmp_path / f"a{name}"),
                str(meeting),
                name,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for name in ("w1", "w2")
    ]
    try:
        wait_until(
            lambda: len(list(meeting.glob("ready-*"))) == 2,
            timeout=60,
            message="both writers to be ready",
        )
        (meeting / "go").touch()
        outcomes = [finish(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [code for code, _ in outcomes] == [0, 0], [err[-2000:] for _, err in outcomes]
    assert count_rows(ws) == 20_000
    runs = ws.tracking.search_runs(experiments="shared")
    assert sorted(r.name for r in runs) == ["w1-0", "w1-1", "w2-0", "w2-1"]
    for run in runs:
        assert run.status is RunStatus.FINISHED
        assert run.params == {"writer": run.name.split("-")[0]}
        assert steps_of(ws, run.id, "m") == list(range(5_000))


def test_closing_twice_returns_at_once(make_workspace: Callable[..., Workspace]) -> None:
    """A workspace closed twice (a `finally`, then dl.configure) must not wait on a
    writer that has already stopped."""
    ws = make_workspace(async_logging=True)
    run = ActiveRun(ws.tracking, ws.tracking.create_run("e"))
    run.log_metric("m", 1.0)
    ws.close()
    started = time.monotonic()
    ws.close()
    ws.tracking.flush(timeout=5)
    assert time.monotonic() - started < 1.0


def test_a_forked_child_does_not_write_the_parents_queued_rows(
    writers: list[BatchWriter],
) -> None:
    sink = RecordingSink()
    sink.gate.clear()  # the parent's rows stay queued while the child forks
    writer = BatchWriter(sink, interval=60)
    writers.append(writer)
    writer.metrics.append(("parent", "m", 1.0, 0, 0))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it holds, and whether its writer runs
        try:
            child_rows = len(writer.metrics)
            writer.metrics.append(("child", "m", 2.0, 0, 0))
            sink.gate.set()
            writer.flush(timeout=10)
            os.write(write, f"{child_rows} {sink.rows()}".encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    report = os.read(read, 4096).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == "0 [('child', 'm', 2.0, 0, 0)]"
    sink.gate.set()
    writer.flush(timeout=10)
    assert sink.rows() == [("parent", "m", 1.0, 0, 0)]


def test_a_closed_writer_can_be_garbage_collected() -> None:
    writer = BatchWriter(RecordingSink(), interval=60)
    writer.close(timeout=5)
    alive = weakref.ref(writer)
    del writer
    gc.collect()
    assert alive() is None  # nothing (a fork hook, say) keeps it
