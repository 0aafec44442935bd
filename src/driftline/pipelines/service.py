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

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from driftline.core.clock import now_ms
from driftline.errors import InvalidArgumentError, UserCodeError
from driftline.pipelines import serializers
from driftline.pipelines._tracking import TrackingPipelineStore
from driftline.pipelines.executors import (
    Executor,
    LocalExecutor,
    ProcessExecutor,
    check_executor,
)
from driftline.pipelines.graph import OUTPUT, Graph, StepOutput
from driftline.pipelines.models import (
    PipelineRun,
    PipelineStatus,
    StepRun,
)
from driftline.pipelines.scheduler import Scheduler, canonical
from driftline.pipelines.store import PipelineRunStore

if TYPE_CHECKING:
    from driftline.pipelines.pipeline import Pipeline
    from driftline.workspace import Workspace

__all__ = ["CACHE_HISTORY", "PipelineService", "RunResult"]

CACHE_HISTORY = 20


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

            workspace = cast("Workspace", default_workspace())
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
        tags: Mapping[str, str] | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Build the DAG, run it, record it (see :meth:`Pipeline.run`).

        ``tags`` go on the pipeline's run; ``on_start(run_id)`` is called once the run
        exists (the agent records the run of a firing before its steps start).
        """
        check_executor(executor)
        graph = pipeline.graph(**params)
        if executor != "local":
            _check_importable(graph, executor)
        experiment = experiment or pipeline.name
        history = self.store.recent(pipeline.name, CACHE_HISTORY)
        started = now_ms()
        clock = time.perf_counter()
        # The executor first: Ray missing or unreachable fails before a run is recorded.
        runner = self._executor(executor, graph, max_workers)
        try:
            run_id = self.store.start_run(
                pipeline=pipeline.name,
                module=pipeline.module,
                experiment=experiment,
                params=params,
                tags={
                    **(tags or {}),
                    **({"driftline.pipeline.resumed_from": resumed_from} if resumed_from else {}),
                },
            )
            if on_start is not None:
                on_start(run_id)
            scheduler = Scheduler(self, graph, history, run_id, experiment, force, runner)
            steps, values, failure = scheduler.run()
        finally:
            runner.close()
        record = PipelineRun(
            id=run_id,
            pipeline=pipeline.name,
            module=pipeline.module,
            status=PipelineStatus.FAILED if failure else PipelineStatus.FINISHED,
            params={
                k: json.loads(canonical(v)) if _is_json(v) else repr(v) for k, v in params.items()
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

    def _executor(self, executor: str, graph: Graph, max_workers: int | None) -> Executor:
        if executor == "processes":
            return ProcessExecutor(self.workspace, max_workers)
        if executor.startswith("ray"):
            from driftline.pipelines._ray import RayExecutor

            runner = RayExecutor(self.workspace, executor, max_workers)
            runner.check_resources(
                {name: node.step.options.resources for name, node in graph.nodes.items()}
            )
            return runner
        functions = {name: node.step.fn for name, node in graph.nodes.items()}
        return LocalExecutor(self.workspace, functions)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _check_importable(graph: Graph, executor: str) -> None:
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
                f"Step {node.name!r} cannot run with executor={executor!r}: {problem}. Worker "
                "processes import step functions by module and name; define the step at the "
                "top level of an importable module, or use executor='local'"
            )
