"""Executors run step tasks: in this process, or in a pool of worker processes.

The service decides what runs (the DAG order, the cache); an executor only runs a
:class:`Task` and hands back a :class:`TaskResult`. Both executors run the same
:func:`execute_task`, read inputs from and write outputs to the content store the same
way, so results and cache keys are the same whichever runs a pipeline.

``processes`` starts ``spawn`` workers (safe with threads and on every OS). Workers
import step functions by ``module:qualname``, so steps must live at the top level of an
importable module; each worker opens the workspace itself, so the workspace must be one
other processes can open (a SQLite file, PostgreSQL or a server, not ``sqlite://``).
A step that runs past its timeout has its worker killed and replaced.
"""

from __future__ import annotations

import contextvars
import importlib
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, Protocol

from driftline.errors import InvalidArgumentError
from driftline.pipelines import serializers
from driftline.pipelines.graph import OUTPUT
from driftline.pipelines.models import OutputRef

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from driftline.settings import Settings
    from driftline.tracking import Run
    from driftline.workspace import Workspace

__all__ = [
    "EXECUTORS",
    "Executor",
    "LocalExecutor",
    "ProcessExecutor",
    "Task",
    "TaskResult",
    "check_executor",
    "execute_task",
]

EXECUTORS = ("local", "processes", "ray")
"""Executor names; ``"ray://HOST:PORT"`` also names the Ray executor, on that cluster."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One attempt at one step."""

    node: str
    ref: str  # module:qualname of the step function
    params: Mapping[str, Any]
    inputs: Mapping[str, tuple[str, str]]  # argument -> (digest, serializer id)
    run_id: str
    allow_pickle: bool
    timeout: float | None
    attempt: int = 1
    run: Run | None = None  # the step's run as started (saves reading it back)
    resources: Mapping[str, float] = field(default_factory=dict)  # for Ray


@dataclass(slots=True, kw_only=True)
class TaskResult:
    """What an attempt produced: outputs, or an error with its traceback."""

    node: str
    ok: bool
    outputs: dict[str, OutputRef] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    duration_ms: float = 0.0
    timed_out: bool = False
    exception: BaseException | None = None  # in process only: the original
    values: dict[str, Any] = field(default_factory=dict)  # in process only


class Executor(Protocol):
    """What the scheduler needs of an executor."""

    name: str

    def free(self) -> int:
        """How many tasks can start now."""
        ...

    def start(self, task: Task) -> None:
        """Start (or queue) a task."""
        ...

    def wait(self, timeout: float | None) -> list[TaskResult]:
        """Results that are ready, waiting at most ``timeout`` seconds."""
        ...

    def close(self) -> None:
        """Release workers; cancel what still runs."""
        ...


def check_executor(executor: str) -> str:
    """``executor`` if it names one; else ``InvalidArgumentError`` listing the known ones."""
    if not isinstance(executor, str) or not (
        executor in EXECUTORS or (executor.startswith("ray://") and len(executor) > 6)
    ):
        raise InvalidArgumentError(
            f"Unknown executor {executor!r}; known: {', '.join(map(repr, EXECUTORS))}, "
            "or 'ray://HOST:PORT' for a Ray cluster"
        )
    return executor


def import_step(ref: str) -> Callable[..., Any]:
    """The step function named ``module:qualname``."""
    module_name, _, qualname = ref.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    found: Callable[..., Any] = getattr(target, "fn", target)  # a Step -> its function
    return found


def execute_task(
    task: Task,
    workspace: Workspace,
    fn: Callable[..., Any],
    values: Mapping[str, Any] | None = None,
) -> TaskResult:
    """Load inputs, call the step with its run active, store its output."""
    from driftline.tracking import ActiveRun

    values = values or {}
    started = time.perf_counter()
    try:
        kwargs = dict(task.params)
        for arg, (digest, serializer) in task.inputs.items():
            if digest in values:
                kwargs[arg] = values[digest]
            else:
                data = workspace.content.read_bytes(digest, name=f"input {arg!r} of {task.node}")
                kwargs[arg] = serializers.load(serializer, data, workspace)
        run = task.run if task.run is not None else workspace.tracking.get_run(task.run_id)

        def call() -> Any:
            ActiveRun(workspace.tracking, run).activate()
            return fn(**kwargs)

        # A copy of the context: the step's run is active in the call only.
        value = contextvars.copy_context().run(call)
    except BaseException as exc:  # user code: report, never crash the pipeline
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        return TaskResult(
            node=task.node,
            ok=False,
            error=f"{type(exc).__name__}: {exc}",
            error_type=type(exc).__name__,
            traceback=traceback.format_exc(),
            duration_ms=(time.perf_counter() - started) * 1000,
            exception=exc,
        )
    duration = (time.perf_counter() - started) * 1000
    try:
        serializer, data = serializers.dump(
            value, step=task.node, output=OUTPUT, allow_pickle=task.allow_pickle
        )
        # No fsync: a torn object is caught by verification before any cache hit uses it.
        blob = workspace.content.put_bytes(data, sync=False)
        workspace.tracking.flush()  # what the step logged is durable before it "ends"
    except Exception as exc:
        return TaskResult(
            node=task.node,
            ok=False,
            error=str(exc),
            error_type=type(exc).__name__,
            traceback=traceback.format_exc(),
            duration_ms=duration,
            exception=exc,
        )
    ref = OutputRef(digest=blob.digest, size=blob.size, serializer=serializer, type=_type(value))
    return TaskResult(
        node=task.node,
        ok=True,
        outputs={OUTPUT: ref},
        duration_ms=duration,
        values={blob.digest: value},
    )


def _type(value: Any) -> str:
    cls = type(value)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _timeout_result(task: Task, how: str) -> TaskResult:
    return TaskResult(
        node=task.node,
        ok=False,
        error=f"TimeoutError: step {task.node!r} ran longer than its timeout of "
        f"{task.timeout:g} s and {how}",
        error_type="TimeoutError",
        duration_ms=(task.timeout or 0) * 1000,
        timed_out=True,
    )


class LocalExecutor:
    """Runs one task at a time in this process (in a thread when it has a timeout)."""

    name = "local"

    def __init__(self, workspace: Workspace, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.workspace = workspace
        self.functions = functions
        self.values: dict[str, Any] = {}  # outputs kept in memory: digest -> value
        self._queue: list[Task] = []

    def free(self) -> int:
        """How many tasks can start now."""
        return 0 if self._queue else 1

    def start(self, task: Task) -> None:
        """Queue a task; :meth:`wait` runs it."""
        self._queue.append(task)

    def wait(self, timeout: float | None) -> list[TaskResult]:
        """Run the queued task and return its result (nothing queued: wait ``timeout``)."""
        if not self._queue:
            if timeout:
                time.sleep(timeout)  # only a retry's backoff is pending
            return []
        task = self._queue.pop(0)
        fn = self.functions[task.node]
        if task.timeout is None:
            result = execute_task(task, self.workspace, fn, self.values)
        else:
            result = self._with_timeout(task, fn)
        self.values.update(result.values)
        return [result]

    def _with_timeout(self, task: Task, fn: Callable[..., Any]) -> TaskResult:
        box: list[TaskResult] = []
        thread = threading.Thread(
            target=lambda: box.append(execute_task(task, self.workspace, fn, self.values)),
            name=f"driftline-step-{task.node}",
            daemon=True,
        )
        thread.start()
        thread.join(task.timeout)
        if box:
            return box[0]
        return _timeout_result(
            task,
            "was abandoned: a thread cannot be killed, so it may still be running in "
            "this process; use executor='processes' to have timed-out steps killed",
        )

    def close(self) -> None:
        """Nothing to release."""


class _Worker:
    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=_worker_main, args=(child, settings), name="driftline-step-worker", daemon=True
        )
        self.process.start()
        child.close()
        self.task: Task | None = None
        self.deadline: float | None = None

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.process.kill()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(10)
        self.conn.close()


class ProcessExecutor:
    """Runs independent steps in parallel in ``spawn`` worker processes."""

    name = "processes"

    def __init__(self, workspace: Workspace, max_workers: int | None = None) -> None:
        if workspace.settings.uri in ("sqlite://", "sqlite:///:memory:"):
            raise InvalidArgumentError(
                "executor='processes' needs a workspace other processes can open; this one "
                "is an in-memory SQLite database. Use a SQLite file, PostgreSQL or a server"
            )
        self.settings = workspace.settings
        self.size = max(1, max_workers or os.cpu_count() or 1)
        self.workers: list[_Worker] = []
        self.idle: list[_Worker] = []

    def free(self) -> int:
        """How many tasks can start now (workers start on demand)."""
        return len(self.idle) + self.size - len(self.workers)

    def start(self, task: Task) -> None:
        """Send a task to an idle worker (starting one if the pool is not full)."""
        if self.idle:
            worker = self.idle.pop()
        else:
            worker = _Worker(self.settings)
            self.workers.append(worker)
        worker.task = task
        worker.deadline = None if task.timeout is None else time.monotonic() + task.timeout
        worker.conn.send(task)

    def wait(self, timeout: float | None) -> list[TaskResult]:
        """Results of tasks that finished, died or timed out, waiting at most ``timeout``."""
        busy = [w for w in self.workers if w.task is not None]
        now = time.monotonic()
        deadlines = [w.deadline - now for w in busy if w.deadline is not None]
        limit = min([t for t in (timeout, *deadlines) if t is not None], default=None)
        if not busy:
            if limit:
                time.sleep(max(0.0, limit))
            return []
        by_handle: dict[Any, _Worker] = {w.conn: w for w in busy}
        by_handle.update({w.process.sentinel: w for w in busy})
        ready = wait(list(by_handle), None if limit is None else max(0.0, limit))
        results: list[TaskResult] = []
        done: set[int] = set()
        for handle in ready:
            worker = by_handle[handle]
            if id(worker) in done or worker.task is None:
                continue
            done.add(id(worker))
            task = worker.task
            try:
                result: TaskResult = worker.conn.recv()
            except (EOFError, OSError):
                code = worker.process.exitcode
                result = TaskResult(
                    node=task.node,
                    ok=False,
                    error=f"The worker process running step {task.node!r} died "
                    f"(exit code {code}); the step may have run out of memory or crashed",
                    error_type="WorkerDied",
                )
                self._replace(worker)
            else:
                worker.task = None
                self.idle.append(worker)
            results.append(result)
        now = time.monotonic()
        for worker in busy:
            if worker.task is not None and worker.deadline is not None and now >= worker.deadline:
                results.append(_timeout_result(worker.task, "was killed"))
                self._replace(worker)
        return results

    def _replace(self, worker: _Worker) -> None:
        worker.task = None
        worker.stop(kill=True)
        self.workers.remove(worker)
        if worker in self.idle:
            self.idle.remove(worker)

    def close(self) -> None:
        """Stop every worker."""
        for worker in self.workers:
            worker.stop(kill=worker.task is not None)
        self.workers.clear()
        self.idle.clear()


def _worker_main(conn: Connection, settings: Settings) -> None:
    """A worker: open the workspace once, then run tasks until told to stop."""
    from driftline.workspace import Workspace

    workspace: Workspace | None = None
    try:
        while True:
            task = conn.recv()
            if task is None:
                return
            if workspace is None:
                workspace = Workspace.from_settings(settings)
            try:
                fn = import_step(task.ref)
            except Exception as exc:
                result = TaskResult(
                    node=task.node,
                    ok=False,
                    error=f"Cannot import step {task.node!r} as {task.ref} in a worker "
                    f"process: {exc}",
                    error_type="ImportError",
                    traceback=traceback.format_exc(),
                )
            else:
                result = execute_task(task, workspace, fn)
            result.values = {}  # values stay in the worker; the parent reads the store
            result.exception = None  # may not pickle; the traceback text travels
            conn.send(result)
    except (EOFError, KeyboardInterrupt):
        return
    finally:
        if workspace is not None:
            workspace.close()
