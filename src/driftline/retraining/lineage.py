"""Walking lineage: a request id to its prediction-log rows, a model version to its run.

The prediction log is Parquet in ``deployment=<name>/date=<YYYY-MM-DD>/`` folders (its
layout and schema are the serving stage's, see ``driftline.serving``). Finding one
request reads as little as it can: the request id's predicate goes down to Parquet's
row-group statistics, and a request id that driftline generated (a UUIDv7, which
carries its creation time) is first looked for in the folders of its own day and the
days beside it; only a miss there (or a client-chosen id) scans every folder.

From a version down, every link is read through the stages' services (registry,
tracking, data), so the same walk works embedded and against a team server.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from driftline.errors import NotFoundError
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

__all__ = ["find_predictions", "version_lineage"]

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


def _log_files(fs: Any, base: str, deployment: str | None, days: list[date] | None) -> list[str]:
    part = f"deployment={deployment}" if deployment else "deployment=*"
    patterns = (
        [f"{base}/{part}/date={d.isoformat()}/*.parquet" for d in days]
        if days
        else [f"{base}/{part}/date=*/*.parquet"]
    )
    files: list[str] = []
    for pattern in patterns:
        # Hidden files are a writer's temporaries (written whole, then renamed).
        files += [f for f in fs.glob(pattern) if not str(f).rsplit("/", 1)[-1].startswith(".")]
    return sorted(set(files))


def find_predictions(
    root: str, request_id: str, *, deployment: str | None = None
) -> list[ServedPrediction]:
    """The prediction-log rows of ``request_id`` under ``root``: the row of the variant
    that answered (stable or canary) before a shadow's mirrored row."""
    from fsspec.core import url_to_fs

    fs, base = url_to_fs(root.rstrip("/"))
    if not fs.exists(base):
        return []
    day = _uuid7_day(request_id)
    attempts: list[list[date] | None] = []
    if day is not None:
        attempts.append([day - timedelta(days=1), day, day + timedelta(days=1)])
    attempts.append(None)
    for days in attempts:
        files = _log_files(fs, str(base).rstrip("/"), deployment, days)
        if files:
            rows = _read_rows(fs, files, request_id)
            if rows:
                return rows
    return []


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
