"""The narrow protocols tracking backends implement (SQL today, HTTP with the server).

Write-path rows are plain tuples rather than records: the background writer moves
hundreds of thousands of them per second and a tuple costs a fraction of an object.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from driftline.tracking.models import (
    ArtifactEntry,
    Experiment,
    LifecycleStage,
    MetricPoint,
    Run,
    RunStatus,
)
from driftline.tracking.search import Node, OrderBy

__all__ = [
    "ChildRuns",
    "ConditionalArtifacts",
    "LogBatch",
    "MetricRow",
    "ParamRow",
    "RunArtifactStore",
    "RunQuery",
    "TagRow",
    "TrackingCapabilities",
    "TrackingStore",
]

MetricRow = tuple[str, str, float, int, int]
"""``(run_id, key, value, step, timestamp_ms)``"""
ParamRow = tuple[str, str, str]
"""``(run_id, key, value)``"""
TagRow = tuple[str, str, str]
"""``(run_id, key, value)``"""


@dataclass(slots=True)
class LogBatch:
    """What the background writer commits in one transaction.

    ``heartbeats`` are ids of runs whose process is alive; the store stamps them.
    ``key`` is an idempotency key (empty: none). A store that sees a key it recorded
    before acknowledges the batch without writing it again, so a batch re-sent after a
    lost answer is written once. The HTTP backend fills it in before the first attempt;
    every retry of the same batch object sends the same key.
    """

    metrics: list[MetricRow] = field(default_factory=list)
    params: list[ParamRow] = field(default_factory=list)
    tags: list[TagRow] = field(default_factory=list)
    heartbeats: list[str] = field(default_factory=list)
    # Flush markers that travelled with these rows (the writer's bookkeeping, not data).
    markers: list[Any] = field(default_factory=list)
    key: str = ""

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunQuery:
    """A validated run search: the service has parsed the filter and resolved experiments."""

    experiment_ids: Sequence[str] | None
    filter: Node | None = None
    order_by: tuple[OrderBy, ...] = ()
    max_results: int = 100
    offset: int = 0
    lifecycle: LifecycleStage | None = LifecycleStage.ACTIVE


@dataclass(frozen=True)
class TrackingCapabilities:
    """What a tracking store can do beyond :class:`TrackingStore` (declared once per
    backend, as byte stores declare theirs).

    Attributes:
        latest_points: The store answers ``latest_points(run_ids)`` (each metric's latest
            point of each run) in one query; without it the service reads histories.
        child_runs: The store is a :class:`ChildRuns`: a nested run starts, or ends, in
            one transaction; without it the service takes the general calls.
    """

    latest_points: bool = False
    child_runs: bool = False


class TrackingStore(Protocol):
    """Experiments, runs and their logged values."""

    capabilities: TrackingCapabilities

    def create_experiment(
        self, *, name: str, description: str | None, tags: dict[str, str]
    ) -> Experiment:
        """Create an experiment; ``AlreadyExistsError`` if the name is taken."""
        ...

    def find_experiment(
        self, *, id: str | None = None, name: str | None = None
    ) -> Experiment | None:
        """The experiment with this id or name, or ``None``."""
        ...

    def list_experiments(
        self, *, include_deleted: bool, max_results: int, offset: int
    ) -> list[Experiment]:
        """Experiments, newest first."""
        ...

    def set_experiment_lifecycle(self, experiment_id: str, stage: LifecycleStage) -> Experiment:
        """Soft-delete or restore an experiment."""
        ...

    def create_run(
        self,
        *,
        experiment_id: str,
        name: str,
        user: str,
        start_time: int,
        parent_id: str | None,
        tags: dict[str, str],
    ) -> Run:
        """Insert a RUNNING run."""
        ...

    def find_run(self, run_id: str) -> Run | None:
        """The run with its params, latest metrics and tags, or ``None``."""
        ...

    def update_run_status(
        self, run_id: str, *, status: RunStatus, end_time: int | None, expected: RunStatus
    ) -> Run:
        """Move a run from ``expected`` to ``status`` atomically; ``ConflictError`` if it moved."""
        ...

    def set_run_lifecycle(self, run_id: str, stage: LifecycleStage) -> Run:
        """Soft-delete or restore a run."""
        ...

    def write_batch(self, batch: LogBatch) -> list[str]:
        """Commit a batch in one transaction; return a message per conflicting param."""
        ...

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every logged point of a metric, by step then time."""
        ...

    def search_runs(self, query: RunQuery) -> list[Run]:
        """Up to ``query.max_results`` runs matching ``query``, from ``query.offset``."""
        ...


class RunArtifactStore(Protocol):
    """The index of files logged to runs (the bytes live in the content store)."""

    def add_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        """Record logged files; a path logged again points to the new content."""
        ...

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        """Files logged to a run under ``prefix``, by path."""
        ...

    def artifact_digests(self) -> set[str]:
        """Every digest any run artifact points to (garbage collection marks these)."""
        ...


@runtime_checkable
class ConditionalArtifacts(Protocol):
    """An optional feature of a :class:`RunArtifactStore`: compare-and-set of one path.

    What a read-modify-write of a logged file needs so that two writers racing on it do
    not lose a change: the database stores have it; a remote client has no use for it
    (such updates run on the server).
    """

    def replace_artifact(self, run_id: str, entry: ArtifactEntry, *, expected: str | None) -> bool:
        """Point ``entry.path`` at ``entry``'s content if it now points at the digest
        ``expected`` (``None``: if the path is not logged yet); whether it did."""
        ...


class LoggedModelStore(Protocol):
    """MLflow 3 logged models of runs, kept by a server for its MLflow routes.

    A record is the model's JSON document; its ``model_id``, ``experiment_id``,
    ``source_run_id``, ``name``, ``status``, ``creation_timestamp_ms`` and
    ``last_updated_timestamp_ms`` are also columns. Only the SQL backend has it: the
    MLflow routes run on the server, next to its database.
    """

    def add(self, record: dict[str, Any]) -> bool:
        """Store a new record unless its id has a row (live or deleted); whether it did."""
        ...

    def find(self, model_id: str) -> dict[str, Any] | None:
        """The live record with this id, or ``None`` (unknown or deleted)."""
        ...

    def update(
        self, model_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Apply ``change`` to the live record atomically (no concurrent change is lost);
        the record written, or ``None`` if there is no live record."""
        ...

    def delete(self, model_id: str, at: int) -> bool:
        """Mark the live record deleted at ``at`` (epoch ms); whether there was one."""
        ...

    def search(self, experiment_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Every live record of these experiments, newest first."""
        ...

    def known(self, model_ids: Collection[str]) -> set[str]:
        """The ids among ``model_ids`` that have a row, live or deleted."""
        ...


@runtime_checkable
class ChildRuns(Protocol):
    """An optional feature of a :class:`TrackingStore` (``capabilities.child_runs``):
    a nested run started, or finished, in one transaction.

    Pipelines start and end a nested run per step; through the general calls that is
    four transactions and three read-backs of the whole run, most of a trivial step's
    cost. The database stores have it; the HTTP client falls back to the general calls.
    """

    def start_child_run(
        self,
        *,
        experiment_id: str,
        name: str,
        user: str,
        start_time: int,
        parent_id: str,
        tags: dict[str, str],
        params: dict[str, str],
    ) -> Run:
        """Insert a RUNNING run with its tags and params; the run as inserted (no read-back)."""
        ...

    def finish_child_run(
        self, run_id: str, *, status: RunStatus, end_time: int, artifacts: Sequence[ArtifactEntry]
    ) -> None:
        """Record ``artifacts`` and move the run from RUNNING to ``status``."""
        ...
