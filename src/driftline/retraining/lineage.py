"""Walking lineage: a request id to its prediction-log rows, a model version to its run.

The prediction log is Parquet in ``deployment=<name>/date=<YYYY-MM-DD>/`` folders (its
layout and schema are the serving stage's, see ``driftline.serving``). Finding one
request reads a bounded number of folders, whatever the id and however old the log
(anyone who may read may trace, so no id may make the server read the whole log):

- a request id that driftline generated (a UUIDv7, which carries its creation time)
  is looked for in the folders of its own day and the days beside it, and nowhere
  else: it was logged when it was made;
- any other id (a client's ``X-Request-ID``) in the folders of the last ``days`` days
  (:data:`~driftline.retraining.TRACE_DAYS` unless the caller widens it, at most
  :data:`~driftline.retraining.MAX_TRACE_DAYS`).

Folders are listed by name (one listing of the log's root for its deployments, one
per deployment and day), never by a glob that walks every day. Within them the
request id's predicate goes down to Parquet's row-group statistics.

From a version down, every link is read through the stages' services (registry,
tracking, data), so the same walk works embedded and against a team server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from driftline.errors import NotFoundError
from driftline.retraining import TRACE_DAYS
from driftline.retraining.models import (
    CodeState,
    DataInput,
    PipelineLink,
    RunLineage,
    ServedPrediction,
    VersionLineage,
)

if TYPE_CHECKING:
    from driftline.data import DataService
    from driftline.registry import ModelVersion
    from driftline.tracking import Run, TrackingService

__all__ = [
    "LogSearch",
    "find_predictions",
    "log_search",
    "version_lineage",
]

#: Tags the pipelines stage records on its runs: the pipeline's name and module on the
#: pipeline run; on each step's run, the step's name and the pipeline run's id.
TAG_PIPELINE = "driftline.pipeline"
TAG_PIPELINE_MODULE = "driftline.pipeline.module"
TAG_STEP = "driftline.pipeline.step"
TAG_STEP_PARENT = "driftline.pipeline.run"
#: Where tracking keeps ``git diff HEAD`` of a run started in a dirty tree.
DIFF_ARTIFACT = "_driftline/git.diff"
# How far up the parent chain code state is looked for (a step, its pipeline, the
# run the pipeline was started in).
_MAX_ANCESTORS = 4


def _uuid7_day(request_id: str) -> date | None:
    """The UTC day a UUIDv7 was made (32 hex digits, or the dashed form), else ``None``."""
    text = request_id.replace("-", "")
    if len(text) != 32 or text[12] != "7":
        return None
    try:
        ms = int(text[:12], 16)
    except ValueError:
        return None
    made = datetime.fromtimestamp(ms / 1000, UTC)
    # A UUIDv7 from far outside the years serving can have run is not one of ours.
    return made.date() if 2020 <= made.year <= 2200 else None


@dataclass(frozen=True, slots=True)
class LogSearch:
    """The days of the prediction log a trace reads (``first`` to ``last``, UTC).

    ``request_day`` is the day a UUIDv7 request id was made (the search is that day and
    the days beside it), ``None`` for an id that carries no day (the search is the last
    ``days`` days).
    """

    first: date
    last: date
    request_day: date | None = None

    @property
    def days(self) -> list[date]:
        """Every day searched, oldest first."""
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def describe(self) -> str:
        """The days in words, for a message."""
        if self.request_day is not None:
            return f"on its day ({self.request_day.isoformat()}, and the day before and after)"
        return f"from {self.first.isoformat()} to {self.last.isoformat()}"


def log_search(
    request_id: str, *, days: int = TRACE_DAYS, now: datetime | None = None
) -> LogSearch:
    """The days to read for ``request_id``: a UUIDv7's own day +-1, else the ``days``
    days up to ``now`` (and the day after, for a serving host's clock a little ahead)."""
    made = _uuid7_day(request_id)
    if made is not None:
        return LogSearch(made - timedelta(days=1), made + timedelta(days=1), made)
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return LogSearch(today - timedelta(days=days), today + timedelta(days=1))


def _names(fs: Any, folder: str) -> list[str]:
    """The names in ``folder`` (none when it does not exist)."""
    try:
        entries = fs.ls(folder, detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries]


def _log_files(fs: Any, base: str, deployment: str | None, days: list[date]) -> list[str]:
    if deployment is not None:
        parts = [f"deployment={deployment}"]
    else:
        parts = [n for n in _names(fs, base) if n.startswith("deployment=")]
    files: list[str] = []
    for part in parts:
        for day in days:
            folder = f"{base}/{part}/date={day.isoformat()}"
            # Hidden files are a writer's temporaries (written whole, then renamed).
            files += [
                f"{folder}/{name}"
                for name in _names(fs, folder)
                if name.endswith(".parquet") and not name.startswith(".")
            ]
    return sorted(files)


def find_predictions(
    root: str, request_id: str, search: LogSearch, *, deployment: str | None = None
) -> list[ServedPrediction]:
    """The prediction-log rows of ``request_id`` under ``root`` on the days of
    ``search`` (see :func:`log_search`): the row of the variant that answered (stable or
    canary) before a shadow's mirrored row."""
    from fsspec.core import url_to_fs

    fs, base = url_to_fs(root.rstrip("/"))
    files = _log_files(fs, str(base).rstrip("/"), deployment, search.days)
    return _read_rows(fs, files, request_id) if files else []


def _read_rows(fs: Any, files: list[str], request_id: str) -> list[ServedPrediction]:
    import pyarrow.dataset as ds

    columns = [
        "request_id", "deployment", "model", "model_version", "variant", "time",
        "endpoint", "n_rows", "latency_ms", "status", "error", "inputs", "outputs",
    ]  # fmt: skip
    dataset = ds.dataset(files, format="parquet", filesystem=fs)
    table = dataset.to_table(columns=columns, filter=ds.field("request_id") == request_id)
    rows = [
        ServedPrediction(
            request_id=r["request_id"],
            deployment=r["deployment"],
            variant=r["variant"],
            model=r["model"],
            model_version=int(r["model_version"]),
            time=r["time"],
            endpoint=r["endpoint"],
            status=int(r["status"]),
            latency_ms=float(r["latency_ms"]),
            n_rows=int(r["n_rows"]),
            error=r["error"],
            inputs=r["inputs"],
            outputs=r["outputs"],
        )
        for r in table.to_pylist()
    ]
    # A mirrored request has a row per variant: the one that answered the client first.
    order = {"stable": 0, "canary": 1, "shadow": 2}
    return sorted(rows, key=lambda p: (order.get(p.variant, 3), p.time))


def version_lineage(
    version: ModelVersion,
    *,
    tracking: TrackingService,
    data: DataService,
) -> VersionLineage:
    """Everything recorded behind ``version``; links not recorded are named in ``missing``."""
    missing: list[str] = []
    run_lineage: RunLineage | None = None
    if version.run_id is None:
        missing.append("run")
    else:
        try:
            run_lineage = run_lineage_of(version.run_id, tracking=tracking, data=data)
        except NotFoundError:  # the run was deleted and purged; the version stays
            missing.append("run")
    if run_lineage is not None:
        if run_lineage.code.commit is None:
            missing.append("code commit")
        if not run_lineage.inputs:
            missing.append("data versions")
    return VersionLineage(
        model=version.name,
        version=version.version,
        flavor=version.flavor,
        source=version.source,
        package_digest=version.package_digest,
        aliases=tuple(version.aliases),
        created_at=version.created_at,
        run=run_lineage,
        missing=tuple(missing),
    )


def run_lineage_of(run_id: str, *, tracking: TrackingService, data: DataService) -> RunLineage:
    """A run's params, metrics, code state, inputs and pipeline."""
    run = tracking.get_run(run_id)
    chain = _ancestors(run, tracking)
    return RunLineage(
        id=run.id,
        name=run.name,
        experiment_id=run.experiment_id,
        status=run.status.value,
        start_time=run.start_time,
        params=dict(run.params),
        metrics=dict(run.metrics),
        code=_code(chain, tracking),
        inputs=_inputs(chain, data),
        pipeline=_pipeline(chain),
    )


def _ancestors(run: Run, tracking: TrackingService) -> list[Run]:
    """The run, then its parent, grandparent, ... (a few at most)."""
    chain = [run]
    while chain[-1].parent_id and len(chain) < _MAX_ANCESTORS:
        chain.append(tracking.get_run(chain[-1].parent_id))
    return chain


def _code(chain: list[Run], tracking: TrackingService) -> CodeState:
    # The nearest run that recorded git state: a pipeline's steps record none of their
    # own, the run the pipeline was started in may have.
    for run in chain:
        code = run.code
        if code.commit is None:
            continue
        diff_path = None
        if code.dirty:
            found = tracking.list_artifacts(run.id, prefix=DIFF_ARTIFACT.rpartition("/")[0])
            diff_path = DIFF_ARTIFACT if any(a.path == DIFF_ARTIFACT for a in found) else None
        return CodeState(
            commit=code.commit,
            branch=code.branch,
            dirty=code.dirty,
            command=code.command,
            from_run=run.id,
            diff_path=diff_path,
        )
    command = next((r.code.command for r in chain if r.code.command), None)
    return CodeState(commit=None, branch=None, dirty=None, command=command)


def _inputs(chain: list[Run], data: DataService) -> tuple[DataInput, ...]:
    # The run's own inputs; a step that logged none inherits its pipeline run's.
    for run in chain:
        versions = data.store.run_inputs(run.id)
        if versions:
            return tuple(
                DataInput(ref=v.ref, dataset=v.dataset, number=v.number, version_id=v.id)
                for v in versions
            )
    return ()


def _pipeline(chain: list[Run]) -> PipelineLink | None:
    run = chain[0]
    if TAG_STEP_PARENT in run.tags and len(chain) > 1 and TAG_PIPELINE in chain[1].tags:
        parent = chain[1]
        return PipelineLink(
            pipeline=parent.tags[TAG_PIPELINE],
            run_id=parent.id,
            module=parent.tags.get(TAG_PIPELINE_MODULE),
            step=run.tags.get(TAG_STEP),
            params=dict(parent.params),
        )
    if TAG_PIPELINE in run.tags:
        return PipelineLink(
            pipeline=run.tags[TAG_PIPELINE],
            run_id=run.id,
            module=run.tags.get(TAG_PIPELINE_MODULE),
            step=None,
            params=dict(run.params),
        )
    return None
