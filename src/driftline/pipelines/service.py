"""Running a pipeline: cache decisions, scheduling on an executor, recording.

The cache key of a step is the hash of

- its code: the step's source and, transitively, the project's own functions, classes
  and module constants it uses; libraries by version (:mod:`~driftline.pipelines.hashing`);
- its parameters, as canonical JSON (``repr`` for values JSON cannot write);
- its inputs' content digests (the digest stored with the upstream output, never a
  re-hash of the bytes) and their serializers;
- the serializer format version.

A hit also needs the outputs recorded under that key to still exist and verify. Hits
are looked up in the pipeline's last :data:`CACHE_HISTORY` recorded runs, which include
failed ones: that is what makes resuming a failed run skip the steps that finished.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from driftline.core.clock import now_ms
from driftline.errors import DriftlineError, InvalidArgumentError, UserCodeError
from driftline.pipelines import serializers
from driftline.pipelines._tracking import TrackingPipelineStore
from driftline.pipelines.executors import (
    EXECUTORS,
    LocalExecutor,
    ProcessExecutor,
    Task,
    TaskResult,
)
from driftline.pipelines.graph import OUTPUT, Graph, StepOutput
from driftline.pipelines.hashing import code_components
from driftline.pipelines.models import (
    CacheDecision,
    PipelineRun,
    PipelineStatus,
    StepRun,
    StepStatus,
)
from driftline.pipelines.store import PipelineRunStore

if TYPE_CHECKING:
    from driftline.pipelines.pipeline import Pipeline
    from driftline.workspace import Workspace

__all__ = ["CACHE_HISTORY", "PipelineService", "RunResult", "cache_key"]

CACHE_HISTORY = 20


def _canonical(value: Any) -> str:
    record = getattr(value, "record", None)  # a dataset Version: its content id
    if record is not None and hasattr(record, "id"):
        return json.dumps({"dataset": record.dataset, "id": record.id})
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


def cache_key(components: Mapping[str, str]) -> str:
    """The key from its components (each ``name -> hash``)."""
    return _hash(json.dumps(dict(sorted(components.items())), separators=(",", ":")))


def miss_reason(now: Mapping[str, str], before: Mapping[str, str]) -> str:
    """Why a key differs from the previous run's: the changed components, by kind."""
    changed = sorted(k for k in now.keys() | before.keys() if now.get(k) != before.get(k))
    kinds = (
        ("code:", "code changed"),
        ("const:", "constant changed"),
        ("closure:", "code changed"),
        ("default:", "code changed"),
        ("lib:", "library changed"),
        ("param:", "params changed"),
        ("input:", "input changed"),
        ("serializer", "serializer changed"),
    )
    for prefix, text in kinds:
        names = [k.split(":", 1)[1] if ":" in k else k for k in changed if k.startswith(prefix)]
        if names:
            return f"{text}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
    return "key changed"


@dataclass
class RunResult:
    """What ``pipeline.run()`` returns: the record plus access to output values."""

    record: PipelineRun
    workspace: Workspace
    graph: Graph
    _values: dict[str, Any]

    @property
    def id(self) -> str:
        """The pipeline run's id (a tracking run id)."""
        return self.record.id

    @property
    def status(self) -> PipelineStatus:
        """FINISHED or FAILED."""
        return self.record.status

    @property
    def steps(self) -> dict[str, StepRun]:
        """Step name -> record (status, cache decision, timing, outputs)."""
        return {s.name: s for s in self.record.steps}

    def output(self, step: str) -> Any:
        """The value step ``step`` produced (loaded from the store when not in memory)."""
        ref = self.record.step(step).outputs.get(OUTPUT)
        if ref is None:
            raise InvalidArgumentError(f"Step {step!r} has no output in run {self.id}")
        if ref.digest not in self._values:
            data = self.workspace.content.read_bytes(ref.digest, name=f"output of {step}")
            self._values[ref.digest] = serializers.load(ref.serializer, data, self.workspace)
        return self._values[ref.digest]

    @property
    def outputs(self) -> dict[str, Any]:
        """Every step's output value, by step name."""
        return {s.name: self.output(s.name) for s in self.record.steps if s.outputs}

    @property
    def result(self) -> Any:
        """What the pipeline function returned, with step outputs loaded."""

        def value(item: Any) -> Any:
            if isinstance(item, StepOutput):
                return self.output(item.node)
            if isinstance(item, tuple | list):
                return type(item)(value(v) for v in item)
            if isinstance(item, dict):
                return {k: value(v) for k, v in item.items()}
            return item

        return value(self.graph.result)


class PipelineService:
    """Runs pipelines against one workspace's tracking and content store."""

    def __init__(self, workspace: Workspace, store: PipelineRunStore | None = None) -> None:
        self.workspace = workspace
        self.store = store or TrackingPipelineStore(workspace.tracking, workspace.content)

    @classmethod
    def for_workspace(cls, workspace: Workspace | None) -> PipelineService:
        """The service of ``workspace``, or of the default workspace."""
        if workspace is None:
            from driftline.core.session import default_workspace

            workspace = default_workspace()
        return cls(workspace)

    def get_run(self, run_id: str) -> PipelineRun:
        """A recorded pipeline run."""
        return self.store.get(run_id)

    def list_runs(self, pipeline: str, limit: int = 50) -> list[PipelineRun]:
        """The pipeline's recorded runs, newest first."""
        return self.store.recent(pipeline, limit)

    def resume(self, run_id: str, *, executor: str | None = None) -> RunResult:
        """Run a failed pipeline run again with its parameters; finished steps are hits."""
        from driftline.pipelines.discovery import import_pipeline_module
        from driftline.pipelines.pipeline import get_pipeline

        previous = self.store.get(run_id)
        if previous.status is PipelineStatus.FINISHED:
            raise InvalidArgumentError(
                f"Pipeline run {run_id} finished; only failed runs resume. Run it again with "
                f"`driftline pipelines run {previous.pipeline}`"
            )
        import_pipeline_module(previous.module)
        pipeline = get_pipeline(previous.pipeline)
        return self.run(
            pipeline,
            pipeline.bind(previous.params),
            executor=executor or previous.executor,
            resumed_from=run_id,
        )

    def run(
        self,
        pipeline: Pipeline,
        params: Mapping[str, Any],
        *,
        executor: str = "local",
        force: bool = False,
        experiment: str | None = None,
        max_workers: int | None = None,
        resumed_from: str | None = None,
    ) -> RunResult:
        """Build the DAG, run it, record it (see :meth:`Pipeline.run`)."""
        if executor not in EXECUTORS:
            raise InvalidArgumentError(
                f"Unknown executor {executor!r}; known: {', '.join(EXECUTORS)} "
                "(Ray comes in a later release)"
            )
        graph = pipeline.graph(**params)
        functions = {name: node.step.fn for name, node in graph.nodes.items()}
        if executor == "processes":
            _check_importable(graph)
        experiment = experiment or pipeline.name
        history = self.store.recent(pipeline.name, CACHE_HISTORY)
        started = now_ms()
        clock = time.perf_counter()
        run_id = self.store.start_run(
            pipeline=pipeline.name,
            module=pipeline.module,
            experiment=experiment,
            params=params,
            tags={"driftline.pipeline.resumed_from": resumed_from} if resumed_from else {},
        )
        runner: LocalExecutor | ProcessExecutor = (
            ProcessExecutor(self.workspace, max_workers)
            if executor == "processes"
            else LocalExecutor(self.workspace, functions)
        )
        scheduler = _Scheduler(self, graph, history, run_id, experiment, force, runner)
        try:
            steps, values, failure = scheduler.run()
        finally:
            runner.close()
        record = PipelineRun(
            id=run_id,
            pipeline=pipeline.name,
            module=pipeline.module,
            status=PipelineStatus.FAILED if failure else PipelineStatus.FINISHED,
            params={
                k: json.loads(_canonical(v)) if _is_json(v) else repr(v) for k, v in params.items()
            },
            steps=tuple(steps[name] for name in graph.order),
            executor=executor,
            resumed_from=resumed_from,
            started_ms=started,
            duration_ms=(time.perf_counter() - clock) * 1000,
            error=None if failure is None else failure.error,
        )
        self.store.save(record, final=True)
        if failure is not None:
            error = UserCodeError(
                f"Step {failure.node!r} of pipeline {pipeline.name!r} failed: {failure.error}. "
                f"The traceback is stored on the step's run; after fixing it, resume with "
                f"`driftline pipelines resume {run_id}` (finished steps are reused)"
            )
            error.pipeline_run = record  # type: ignore[attr-defined]
            raise error from failure.exception
        return RunResult(record, self.workspace, graph, values)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _check_importable(graph: Graph) -> None:
    from driftline.pipelines.executors import import_step

    for node in graph.nodes.values():
        ref = node.step.ref
        problem = None
        if "<locals>" in ref:
            problem = "it is defined inside a function"
        elif ref.startswith("__main__:"):
            problem = "it is defined in the __main__ script"
        else:
            try:
                if import_step(ref) is not node.step.fn:
                    problem = f"{ref} names another object"
            except Exception as exc:
                problem = f"importing {ref} fails ({exc})"
        if problem:
            raise InvalidArgumentError(
                f"Step {node.name!r} cannot run with executor='processes': {problem}. Worker "
                "processes import step functions by module and name; define the step at the "
                "top level of an importable module, or use executor='local'"
            )


class _Scheduler:
    """Walks the DAG: decides each ready step's cache, starts misses, collects results."""

    def __init__(
        self,
        service: PipelineService,
        graph: Graph,
        history: list[PipelineRun],
        run_id: str,
        experiment: str,
        force: bool,
        executor: LocalExecutor | ProcessExecutor,
    ) -> None:
        self.service = service
        self.content = service.workspace.content
        self.graph = graph
        self.run_id = run_id
        self.experiment = experiment
        self.force = force
        self.executor = executor
        self.index: dict[str, tuple[StepRun, str]] = {}
        self.previous: dict[str, StepRun] = {}
        for run in reversed(history):  # oldest first: newer records win
            for step in run.steps:
                if step.cache and step.status in (StepStatus.COMPLETED, StepStatus.CACHED):
                    source = step.cache.source_run_id if step.cache.hit else run.id
                    self.index[step.cache.key] = (step, source or run.id)
                if step.cache:
                    self.previous[step.name] = step
        self.code: dict[int, dict[str, str]] = {}
        self.steps: dict[str, StepRun] = {}
        self.values: dict[str, Any] = {}
        self.attempts: dict[str, int] = {}
        self.delayed: list[tuple[float, Task]] = []
        self.running: set[str] = set()
        self.tasks: dict[str, Task] = {}
        self.failure: TaskResult | None = None

    def run(self) -> tuple[dict[str, StepRun], dict[str, Any], TaskResult | None]:
        pending = list(self.graph.order)
        while pending or self.running or self.delayed:
            for name in list(pending):
                states = [
                    self.steps[u].status if u in self.steps else None
                    for u in self.graph.nodes[name].upstream
                ]
                broken = {StepStatus.FAILED, StepStatus.SKIPPED}
                if self.failure is not None or any(s in broken for s in states):
                    self._skip(name)
                    pending.remove(name)
                    continue
                if any(s not in (StepStatus.COMPLETED, StepStatus.CACHED) for s in states):
                    continue  # an input is not ready yet
                if self.executor.free() > 0:
                    pending.remove(name)
                    self._decide(name)
            now = time.monotonic()
            for ready_at, task in list(self.delayed):
                if ready_at <= now and self.executor.free() > 0:
                    self.delayed.remove((ready_at, task))
                    self._start(replace(task, attempt=task.attempt + 1))
            if not self.running:
                if self.delayed:
                    self.executor.wait(max(0.0, min(t for t, _ in self.delayed) - now))
                continue
            wait = min((t for t, _ in self.delayed), default=None)
            for result in self.executor.wait(None if wait is None else max(0.0, wait - now)):
                self._finish(result)
        for name in self.graph.order:
            if name not in self.steps:
                self._skip(name)
        return self.steps, self.values, self.failure

    def _components(self, name: str) -> dict[str, str]:
        node = self.graph.nodes[name]
        fn = node.step.fn
        if id(fn) not in self.code:
            self.code[id(fn)] = code_components(fn)
        parts = dict(self.code[id(fn)])
        parts.update({f"param:{k}": _hash(_canonical(v)) for k, v in node.params.items()})
        for arg, upstream in node.inputs.items():
            ref = self.steps[upstream].outputs[OUTPUT]
            parts[f"input:{arg}"] = _hash(f"{ref.digest} {ref.serializer}")
        parts["serializer"] = serializers.FORMAT_VERSION
        return parts

    def _decide(self, name: str) -> None:
        node = self.graph.nodes[name]
        parts = self._components(name)
        key = cache_key(parts)
        before = self.previous.get(name)
        if self.force:
            reason = "forced"
        elif not node.step.options.cache:
            reason = "cache disabled for this step"
        elif key in self.index:
            found, source = self.index[key]
            problem = self._verify(found)
            if problem is None:
                decision = CacheDecision(
                    key=key, hit=True, reason="hit", source_run_id=source, components=parts
                )
                self.steps[name] = replace(
                    found,
                    name=name,
                    status=StepStatus.CACHED,
                    cache=decision,
                    run_id=found.run_id,
                    started_ms=now_ms(),
                    duration_ms=0.0,
                    attempts=0,
                )
                return
            reason = problem
        elif before is None or before.cache is None:
            reason = "no previous run"
        else:
            reason = miss_reason(parts, before.cache.components)
        decision = CacheDecision(key=key, hit=False, reason=reason, components=parts)
        params = {k: _canonical(v)[:8000] for k, v in node.params.items()}
        step_run_id = self.service.store.start_step(
            self.run_id, experiment=self.experiment, step=name, params=params, key=key
        )
        inputs = {
            arg: (self.steps[up].outputs[OUTPUT].digest, self.steps[up].outputs[OUTPUT].serializer)
            for arg, up in node.inputs.items()
        }
        self.steps[name] = StepRun(
            name=name,
            function=node.step.ref,
            status=StepStatus.PENDING,
            upstream=node.upstream,
            params=params,
            inputs=dict(node.inputs),
            input_digests={arg: d for arg, (d, _s) in inputs.items()},
            cache=decision,
            run_id=step_run_id,
            started_ms=now_ms(),
        )
        self._start(
            Task(
                node=name,
                ref=node.step.ref,
                params=dict(node.params),
                inputs=inputs,
                run_id=step_run_id,
                allow_pickle=node.step.options.pickle,
                timeout=node.step.options.timeout,
            )
        )

    def _verify(self, step: StepRun) -> str | None:
        """``None`` when every output is stored and hashes to its digest."""
        for name, ref in step.outputs.items():
            try:
                self.content.verify(ref.digest, name=f"output {name!r} of step {step.name}")
            except DriftlineError as exc:
                kind = "missing" if "missing" in str(exc) else "corrupted"
                return f"stored output {kind}: {name} ({ref.digest[:19]}...)"
        return None

    def _start(self, task: Task) -> None:
        self.tasks[task.node] = task
        self.running.add(task.node)
        self.attempts[task.node] = task.attempt
        self.executor.start(task)

    def _finish(self, result: TaskResult) -> None:
        name = result.node
        self.running.discard(name)
        step = self.steps[name]
        options = self.graph.nodes[name].step.options
        attempt = self.attempts[name]
        if not result.ok and attempt <= options.retries:
            delay = options.retry_delay * (2 ** (attempt - 1))
            self.delayed.append((time.monotonic() + delay, self.tasks[name]))
            return
        self.service.store.end_step(
            step.run_id or "",
            ok=result.ok,
            outputs=result.outputs,
            traceback=result.traceback or (result.error if not result.ok else None),
        )
        self.steps[name] = replace(
            step,
            status=StepStatus.COMPLETED if result.ok else StepStatus.FAILED,
            outputs=result.outputs,
            duration_ms=result.duration_ms,
            attempts=attempt,
            error=result.error,
            traceback=result.traceback,
        )
        self.values.update(result.values)
        if not result.ok and self.failure is None:
            self.failure = result

    def _skip(self, name: str) -> None:
        node = self.graph.nodes[name]
        self.steps[name] = StepRun(
            name=name,
            function=node.step.ref,
            status=StepStatus.SKIPPED,
            upstream=node.upstream,
            inputs=dict(node.inputs),
        )
