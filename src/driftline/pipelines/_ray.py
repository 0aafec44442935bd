"""The Ray executor: each step attempt a Ray task with the step's resources.

Tasks run :func:`~driftline.pipelines.executors.execute_task` like the other executors
(inputs from and outputs to the content store), so results and cache keys are the same.
A Ray worker imports the step by ``module:qualname`` with the driver's ``sys.path`` in
front of its own (as ``spawn`` workers do), opens the workspace once and keeps it. On a
cluster the step's modules must be importable on the nodes (install them, or pass a
``runtime_env`` to ``ray.init``), and the workspace must be one the nodes reach
(PostgreSQL or a server, with a shared artifact root such as S3).

A step past its timeout is cancelled with ``ray.cancel(force=True)``, which kills the
worker process running it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from driftline.core.ray_cluster import connect, parse_executor
from driftline.errors import InvalidArgumentError
from driftline.pipelines.executors import (
    Task,
    TaskResult,
    _timeout_result,
    execute_task,
    import_step,
)

if TYPE_CHECKING:
    from driftline.settings import Settings
    from driftline.workspace import Workspace

__all__ = ["RayExecutor", "ray_options", "worker_workspace"]

# Keys of a step's ``resources`` that are Ray task options; any other key is a custom
# resource (``{"accelerator_type:T4": 1}``, ``{"trainer": 1}``).
_OPTION_KEYS = ("num_cpus", "num_gpus", "memory")

_workspaces: dict[str, Workspace] = {}  # in a Ray worker: settings -> open workspace
_loaded: dict[str, tuple[str, int]] = {}  # in a Ray worker: module -> (file, mtime) run


def worker_workspace(settings: Settings) -> Workspace:
    """In a Ray worker: the workspace of ``settings``, opened once and kept."""
    key = repr(settings)
    workspace = _workspaces.get(key)
    if workspace is None:
        from driftline.workspace import Workspace

        workspace = _workspaces[key] = Workspace.from_settings(settings)
    return workspace


def ray_options(resources: Mapping[str, float]) -> dict[str, Any]:
    """Ray task options from a step's ``resources`` (one CPU when it names none)."""
    options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0}
    custom: dict[str, float] = {}
    for key, value in resources.items():
        if key in _OPTION_KEYS:
            options[key] = value
        else:
            custom[key] = float(value)
    if custom:
        options["resources"] = custom
    return options


def _source_of(ref: str) -> tuple[str, int] | None:
    """The file of a step's module and its modification time, as the driver sees them."""
    module = sys.modules.get(ref.partition(":")[0])
    path = getattr(module, "__file__", None)
    try:
        return (path, os.stat(path).st_mtime_ns) if path else None
    except OSError:
        return None


def _fresh(ref: str, source: tuple[str, int] | None) -> None:
    """Re-import a step's module in this worker if the driver's copy differs.

    Ray's workers outlive one pipeline run: without this, a step edited between two
    runs in one notebook would run its old code under the new code's cache key. A
    bytecode file older than the source is removed first: Python checks them by the
    second, and an edit within the second the old code was compiled would go unseen.
    """
    if source is None:
        return
    path, mtime = source
    try:
        cached = importlib.util.cache_from_source(path)
        if os.stat(cached).st_mtime_ns < mtime:
            os.unlink(cached)
    except (OSError, ValueError, NotImplementedError):
        pass
    name = ref.partition(":")[0]
    module = sys.modules.get(name)
    if module is not None and _loaded.get(name) != source:
        importlib.invalidate_caches()
        if getattr(module, "__file__", None) != path:
            del sys.modules[name]  # another file of the same name: import it afresh
            importlib.import_module(name)
        else:
            importlib.reload(module)
    _loaded[name] = source


def _run_in_worker(
    task: Task, settings: Settings, paths: list[str], source: tuple[str, int] | None
) -> TaskResult:
    """A Ray task: import the step, run it against the (cached) workspace."""
    for path in reversed(paths):
        if path not in sys.path:
            sys.path.insert(0, path)
    workspace = worker_workspace(settings)
    try:
        _fresh(task.ref, source)
        fn = import_step(task.ref)
    except Exception as exc:
        return TaskResult(
            node=task.node,
            ok=False,
            error=f"Cannot import step {task.node!r} as {task.ref} in a Ray worker: {exc}. "
            "On a cluster, the step's module must be installed on the nodes",
            error_type="ImportError",
            traceback=traceback.format_exc(),
        )
    result = execute_task(task, workspace, fn)
    result.values = {}  # values stay in the worker; the driver reads the store
    result.exception = None  # may not pickle; the traceback text travels
    return result


class RayExecutor:
    """Runs ready steps as Ray tasks, as many at once as the cluster has CPUs for."""

    name = "ray"

    def __init__(
        self, workspace: Workspace, executor: str = "ray", max_workers: int | None = None
    ) -> None:
        address = parse_executor(executor)
        if workspace.settings.uri in ("sqlite://", "sqlite:///:memory:"):
            raise InvalidArgumentError(
                "executor='ray' needs a workspace Ray workers can open; this one is an "
                "in-memory SQLite database. Use a SQLite file, PostgreSQL or a server"
            )
        self.ray = connect(address, num_cpus=max_workers)
        # A local Ray never grows: a step asking for more than it has would wait forever.
        self.fixed = address is None and not os.environ.get("RAY_ADDRESS")
        self.settings = workspace.settings
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.size = max(1, max_workers or cpus)
        self._remote = self.ray.remote(_run_in_worker)
        self._paths = [p for p in sys.path if p]
        self.running: dict[Any, tuple[Task, float | None]] = {}  # object ref -> task

    def free(self) -> int:
        """How many tasks can start now."""
        return self.size - len(self.running)

    def check_resources(self, steps: Mapping[str, Mapping[str, float]]) -> None:
        """Refuse, before anything runs, a step that asks a local Ray for more than it has.

        A cluster may autoscale, so there Ray's own scheduler decides (it waits and warns).
        """
        if not self.fixed:
            return
        totals = self.ray.cluster_resources()
        names = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
        for step, resources in steps.items():
            options = ray_options(resources)
            wanted = {names[k]: float(options[k]) for k in names if k in options}
            wanted.update(options.get("resources", {}))
            for key, amount in wanted.items():
                have = float(totals.get(key, 0))
                if amount > have:
                    raise InvalidArgumentError(
                        f"Step {step!r} asks for {key}={amount:g}, and the local Ray has "
                        f"{have:g} in all, so it would wait forever. Lower the step's "
                        "resources, start Ray with more (ray.init(num_cpus=..., "
                        "resources={...})), or run it on a cluster that has them"
                    )

    def start(self, task: Task) -> None:
        """Submit a task with its step's resources."""
        options = ray_options(task.resources)
        source = _source_of(task.ref)
        ref = self._remote.options(**options).remote(task, self.settings, self._paths, source)
        deadline = None if task.timeout is None else time.monotonic() + task.timeout
        self.running[ref] = (task, deadline)

    def wait(self, timeout: float | None) -> list[TaskResult]:
        """Results of tasks that finished, failed or timed out, waiting at most ``timeout``."""
        if not self.running:
            if timeout:
                time.sleep(timeout)
            return []
        now = time.monotonic()
        deadlines = [d - now for _t, d in self.running.values() if d is not None]
        limit = min([t for t in (timeout, *deadlines) if t is not None], default=None)
        ready, _ = self.ray.wait(
            list(self.running),
            num_returns=1,
            timeout=None if limit is None else max(0.0, limit),
        )
        # Collect everything that is done, not only the first.
        if ready:
            more, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
            ready = list(dict.fromkeys([*ready, *more]))
        results = [self._collect(ref) for ref in ready]
        now = time.monotonic()
        for ref, (task, deadline) in list(self.running.items()):
            if deadline is not None and now >= deadline:
                del self.running[ref]
                self.ray.cancel(ref, force=True)
                results.append(_timeout_result(task, "was killed (its Ray task was cancelled)"))
        return results

    def _collect(self, ref: Any) -> TaskResult:
        task, _deadline = self.running.pop(ref)
        try:
            result: TaskResult = self.ray.get(ref)
        except Exception as exc:  # the worker died, or Ray lost the task
            return TaskResult(
                node=task.node,
                ok=False,
                error=f"The Ray task running step {task.node!r} failed: "
                f"{type(exc).__name__}: {exc}",
                error_type=type(exc).__name__,
                traceback=traceback.format_exc(),
            )
        return result

    def close(self) -> None:
        """Cancel tasks still running (a failed pipeline); Ray itself stays up."""
        for ref in list(self.running):
            self.ray.cancel(ref, force=True)
        self.running.clear()
