"""Lineage records: what a prediction came from, what a reproduction found.

A :class:`Trace` walks from one request id in the prediction log to everything behind
it: the deployment and variant that answered, the registered version, the run that
produced it, the code (commit, dirtiness, the recorded diff), the parameters and the
dataset versions it read. :class:`VersionLineage` is the part from the model version
down, shared by ``trace`` and ``reproduce``.

A link that is not recorded is named in ``missing`` (``trace`` shows what it has);
``reproduce`` cannot do without some links and raises :class:`MissingLineageError`,
which says which one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from driftline.errors import NotFoundError

__all__ = [
    "CodeState",
    "DataInput",
    "MetricComparison",
    "MissingLineageError",
    "PipelineLink",
    "ReproduceReport",
    "RunLineage",
    "ServedPrediction",
    "Trace",
    "VersionLineage",
]


class MissingLineageError(NotFoundError):
    """A link of a model version's lineage that an operation needs is not recorded.

    ``link`` names it: ``run``, ``entry point``, ``code commit``, ``repository``,
    ``data version``.
    """

    def __init__(self, message: str, *, link: str) -> None:
        super().__init__(message)
        self.link = link


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedPrediction:
    """One row of the prediction log for a request (a mirrored request has two)."""

    request_id: str
    deployment: str
    variant: str
    model: str
    model_version: int
    time: datetime
    endpoint: str
    status: int
    latency_ms: float
    n_rows: int
    error: str | None = None
    inputs: str | None = None  # JSON, as the log holds it
    outputs: str | None = None  # JSON: the predictions answered (None when it failed)


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeState:
    """The code a run executed: commit, branch, uncommitted changes, command line.

    ``from_run`` is the id of the run the state was recorded on: the run itself, or the
    nearest ancestor that recorded it (a pipeline's steps inherit their parent's code).
    ``diff_path`` is the run artifact holding ``git diff HEAD`` when the tree was dirty.
    """

    commit: str | None
    branch: str | None
    dirty: bool | None
    command: str | None
    from_run: str | None = None
    diff_path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DataInput:
    """A dataset version a run read (``dl.log_input``)."""

    ref: str  # customers@3
    dataset: str
    number: int
    version_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineLink:
    """The pipeline run a run belongs to (the run is the pipeline run, or one of its steps)."""

    pipeline: str
    run_id: str  # the pipeline run's id
    module: str | None  # where the pipeline is defined (what `pipelines run --module` takes)
    step: str | None  # the step whose run this is; None for the pipeline run itself
    params: Mapping[str, str] = field(default_factory=dict)  # the pipeline's parameters


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLineage:
    """The run that produced a version: params, metrics, code, inputs, pipeline."""

    id: str
    name: str
    experiment_id: str
    status: str
    start_time: datetime
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    code: CodeState
    inputs: tuple[DataInput, ...]
    pipeline: PipelineLink | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionLineage:
    """A registered model version and everything recorded behind it.

    Attributes:
        model: The registered model's name.
        version: The version number.
        flavor: The package's flavor (``sklearn``, ``pyfunc``, ...).
        source: What was registered (``runs:/<id>/model``).
        package_digest: The package manifest's content address.
        aliases: The aliases pointing at the version now.
        created_at: When it was registered.
        run: The run that produced it, or ``None`` when it was registered from files.
        missing: The lineage links not recorded (``run``, ``code commit``, ``data
            versions``), in the order they are walked.
        retraining_cycle: The retraining cycle that produced the version and what
            triggered it: ``id``, ``state``, ``trigger`` (alert, new_data, schedule,
            manual), ``trigger_ref`` (the alert id, dataset version, schedule or user),
            ``alert`` (the alert id, for an alert) and ``run_id``; ``None`` when no cycle
            made it (or retraining is not visible, a remote workspace).
    """

    model: str
    version: int
    flavor: str
    source: str
    package_digest: str
    aliases: tuple[str, ...]
    created_at: datetime
    run: RunLineage | None
    missing: tuple[str, ...] = ()
    retraining_cycle: Mapping[str, str] | None = None

    @property
    def ref(self) -> str:
        """``churn/4``."""
        return f"{self.model}/{self.version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """One request's lineage: its prediction-log rows and each answering version's lineage."""

    request_id: str
    predictions: tuple[ServedPrediction, ...]
    versions: tuple[VersionLineage, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricComparison:
    """One metric of the original run against the reproduction's."""

    key: str
    original: float
    reproduced: float | None  # None: the reproduction did not log it
    tolerance: float  # the largest absolute difference accepted
    within: bool

    @property
    def difference(self) -> float | None:
        """``reproduced - original``."""
        return None if self.reproduced is None else self.reproduced - self.original


@dataclass(frozen=True, slots=True, kw_only=True)
class ReproduceReport:
    """What re-running a version's run found.

    Attributes:
        model: ``churn/4``.
        original_run: The run that produced the version.
        reproduced_run: The run the re-run recorded (the same step of a re-run pipeline).
        entry_point: ``pipeline`` or ``command``.
        command: What was run, as a shell line.
        code: ``recorded commit`` (a temporary worktree at the commit), ``recorded
            commit + diff`` (the recorded uncommitted changes applied to it) or
            ``current checkout`` (asked for, or nothing else possible).
        commit: The commit the worktree was made at, when one was.
        dirty: Whether the original run had uncommitted changes.
        diff: The recorded diff (text) when it had.
        inputs_recorded: The dataset versions the original run read.
        inputs_reproduced: The dataset versions the re-run read.
        metrics: Each metric of the original run compared within its tolerance.
        model_files_match: Whether the re-run's model files are byte-identical to the
            version's package (``None`` when the re-run logged no model at that path, or
            the flavor's files are not byte-stable).
        differing_files: The package files whose bytes differ (or that are missing).
        predictions_match: Whether both models predict the same on the version's input
            example (``None`` without one).
        param_differences: Parameters the re-run recorded differently: key ->
            (original, re-run), ``None`` for a side that did not record it.
        notes: Plain sentences on anything a reader must know (a dirty tree, inputs
            that differ, a missing repository).
    """

    model: str
    original_run: str
    reproduced_run: str
    entry_point: str
    command: str
    code: str
    commit: str | None
    dirty: bool
    diff: str | None
    inputs_recorded: tuple[str, ...]
    inputs_reproduced: tuple[str, ...]
    metrics: tuple[MetricComparison, ...]
    model_files_match: bool | None
    differing_files: tuple[str, ...] = ()
    predictions_match: bool | None = None
    param_differences: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def reproduced(self) -> bool:
        """The same params and inputs, metrics within tolerance, and matching model bytes
        and predictions (where they could be compared)."""
        return (
            all(m.within for m in self.metrics)
            and set(self.inputs_recorded) == set(self.inputs_reproduced)
            and self.model_files_match is not False
            and self.predictions_match is not False
            and not self.param_differences
        )
