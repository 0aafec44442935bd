"""Pipeline records: a pipeline run, its step runs and each step's cache decision.

A pipeline run *is* a tracking run (its id is the tracking run's id); each executed step
is a nested tracking run. These records are what the pipeline stage adds on top: the
DAG, the cache keys and why each step hit or missed. They are stored as one JSON
document per pipeline run (see :mod:`driftline.pipelines.store`), written with
:func:`to_json` and read back with :func:`from_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "CacheDecision",
    "OutputRef",
    "PipelineRun",
    "PipelineStatus",
    "StepRun",
    "StepStatus",
    "from_json",
    "to_json",
]

# Bumped when the document's shape changes; readers refuse newer documents.
DOCUMENT_VERSION = 1


class PipelineStatus(StrEnum):
    """The pipeline run's state; the tracking run carries the same status."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"


class StepStatus(StrEnum):
    """What happened to one step in one pipeline run."""

    PENDING = "PENDING"
    COMPLETED = "COMPLETED"  # executed now
    CACHED = "CACHED"  # outputs reused from an earlier run
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # not run because an upstream step failed


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputRef:
    """A stored step output: its content digest, size, and the serializer that wrote it."""

    digest: str
    size: int
    serializer: str  # "<name>/<version>", e.g. "parquet/1"
    type: str  # the Python type that was returned, for people


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheDecision:
    """Whether a step's outputs were reused, and why not when they were not.

    ``components`` are the parts of the key (``code:features.py:clean``,
    ``param:C``, ``input:df``, ``serializer``) with their hashes; comparing them with
    the previous run of the step gives the ``reason`` of a miss.
    """

    key: str
    hit: bool
    reason: str  # "hit", "no previous run", "code changed: features.py:clean", ...
    source_run_id: str | None = None  # the pipeline run whose outputs were reused
    components: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRun:
    """One step of one pipeline run."""

    name: str  # the node's name in the DAG (``train``, ``train_2`` for a second call)
    function: str  # ``module:qualname`` of the step function
    status: StepStatus
    upstream: tuple[str, ...] = ()
    params: Mapping[str, str] = field(default_factory=dict)  # name -> canonical JSON text
    inputs: Mapping[str, str] = field(default_factory=dict)  # name -> upstream step name
    input_digests: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, OutputRef] = field(default_factory=dict)
    cache: CacheDecision | None = None
    run_id: str | None = None  # the nested tracking run, for executed steps
    started_ms: int | None = None
    duration_ms: float | None = None
    attempts: int = 0
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineRun:
    """A pipeline run: the tracking run's id, the parameters and every step's record.

    ``steps`` are in topological order. Load an output's value with
    :meth:`~driftline.pipelines.service.RunResult.output` on the object ``run()`` returns.
    """

    id: str
    pipeline: str
    module: str  # where the pipeline is defined, so `resume` can import it again
    status: PipelineStatus
    params: Mapping[str, Any]
    steps: tuple[StepRun, ...]
    executor: str = "local"
    resumed_from: str | None = None
    started_ms: int | None = None
    duration_ms: float | None = None
    error: str | None = None

    def step(self, name: str) -> StepRun:
        """The record of step ``name``; ``NotFoundError`` lists the steps."""
        for step in self.steps:
            if step.name == name:
                return step
        from driftline.errors import NotFoundError

        names = ", ".join(s.name for s in self.steps)
        raise NotFoundError(f"Pipeline run {self.id} has no step {name!r}; its steps: {names}")


def to_json(run: PipelineRun) -> dict[str, Any]:
    """The stored document of a pipeline run."""
    return {"version": DOCUMENT_VERSION, **asdict(run)}


def from_json(document: Mapping[str, Any]) -> PipelineRun:
    """Read a document written by :func:`to_json`."""
    from driftline.errors import InvalidArgumentError

    if int(document.get("version", 0)) > DOCUMENT_VERSION:
        raise InvalidArgumentError(
            "This pipeline run was recorded by a newer driftline; upgrade driftline to read it"
        )
    steps = []
    for raw in document["steps"]:
        cache = raw.get("cache")
        steps.append(
            StepRun(
                **{
                    **raw,
                    "status": StepStatus(raw["status"]),
                    "upstream": tuple(raw.get("upstream", ())),
                    "outputs": {k: OutputRef(**v) for k, v in raw.get("outputs", {}).items()},
                    "cache": None if cache is None else CacheDecision(**cache),
                }
            )
        )
    fields = {k: v for k, v in document.items() if k not in ("version", "steps")}
    return PipelineRun(
        **{**fields, "status": PipelineStatus(fields["status"]), "steps": tuple(steps)}
    )
