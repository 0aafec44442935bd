"""The scheduler walks a pipeline's DAG: it decides each ready step's cache, starts the
misses on an executor, collects results, retries with backoff, and skips what follows
a failure. The cache key is defined here (see :mod:`driftline.pipelines.service`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from driftline.core.clock import now_ms
from driftline.errors import DriftlineError
from driftline.pipelines import serializers
from driftline.pipelines.executors import Executor, Task, TaskResult
from driftline.pipelines.graph import OUTPUT, Graph
from driftline.pipelines.hashing import code_components
from driftline.pipelines.models import CacheDecision, PipelineRun, StepRun, StepStatus

if TYPE_CHECKING:
    from driftline.pipelines.service import PipelineService

__all__ = ["Scheduler", "cache_key", "canonical", "miss_reason"]


def canonical(value: Any) -> str:
    """Parameter values as canonical JSON (``repr`` when JSON cannot write them)."""
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


class Scheduler:
    """Walks the DAG: decides each ready step's cache, starts misses, collects results."""

    def __init__(
        self,
        service: PipelineService,
        graph: Graph,
        history: list[PipelineRun],
        run_id: str,
        experiment: str,
        force: bool,
        executor: Executor,
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
        parts.update({f"param:{k}": _hash(canonical(v)) for k, v in node.params.items()})
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
        params = {k: canonical(v)[:8000] for k, v in node.params.items()}
        step_run = self.service.store.start_step(
            self.run_id,
            experiment=self.experiment,
            step=name,
            params=params,
            key=key,
            run_name=node.run_name,
        )
        step_run_id = step_run.id
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
                run=step_run,
                resources=node.step.options.resources,
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
