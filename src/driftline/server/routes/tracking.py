"""REST routes: tracking (experiments, runs, logging batches, run artifact entries).

These are the operations of :class:`~driftline.tracking.store.TrackingStore` and
:class:`~driftline.tracking.store.RunArtifactStore`, so the HTTP backend
(``tracking/_http.py``) is a thin client of them. Every handler translates the wire
format to a call of the server's :class:`~driftline.tracking.TrackingService`, which
applies the rules (keys, names, value lengths, run states): they are written once, so a
server never stores what an embedded workspace would refuse. Handlers authorize the
caller on the experiment the request touches.

``POST /batches`` is the logging hot path: a columnar JSON body parsed without a
Python object per row (see :mod:`driftline.api.tracking`), written in one transaction
with its idempotency receipt.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from driftline.api.codec import encode, encode_float
from driftline.api.tracking import (
    LOG_BATCH_SCHEMA,
    MAX_LIST_PAGE,
    ArtifactEntriesBody,
    ExperimentCreateBody,
    LifecycleBody,
    RunCreateBody,
    RunSearchBody,
    RunStatusBody,
    decode_log_batch,
)
from driftline.core.clock import from_ms
from driftline.errors import DriftlineError, NotFoundError
from driftline.server.deps import Action, authorize, workspace
from driftline.tracking import ArtifactEntry, Experiment, LifecycleStage, RunStatus
from driftline.tracking.search import parse_filter, parse_order_by
from driftline.tracking.service import TrackingService
from driftline.tracking.store import LogBatch, RunQuery

router = APIRouter(tags=["tracking"])

# Run id -> experiment name, per worker: authorization needs the experiment of every
# run a request names, and a run never changes experiment (nor an experiment its name).
_RUN_CACHE_SIZE = 100_000


# OpenAPI links: what a create answers feeds the operations on the new object (so
# generated tests and clients know where an id goes).
_EXPERIMENT_OPS = ("tracking_get_experiment", "tracking_set_experiment_lifecycle")
_RUN_OPS = (
    "tracking_get_run",
    "tracking_update_run_status",
    "tracking_set_run_lifecycle",
    "tracking_get_metric_history",
    "tracking_add_run_artifacts",
    "tracking_list_run_artifacts",
)


def _links(description: str, parameter: str, operations: tuple[str, ...]) -> dict[str, Any]:
    return {
        "description": description,
        "links": {
            operation: {
                "operationId": operation,
                "parameters": {parameter: "$response.body#/id"},
            }
            for operation in operations
        },
    }


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def _service(request: Request) -> TrackingService:
    return workspace(request).tracking


def _experiment(request: Request, experiment_id: str, action: Action) -> Experiment:
    """The experiment with this id, after checking the caller may ``action`` it."""
    try:
        found = _service(request).experiment_by_id(experiment_id)
    except NotFoundError:
        authorize(request, "read")
        raise
    authorize(request, action, experiment=found.name)
    return found


def _run_experiments(
    request: Request, run_ids: Iterable[str], *, missing_ok: bool = False
) -> dict[str, str]:
    """The experiment name of each run; ``NotFoundError`` for an unknown run."""
    cache: dict[str, str] | None = getattr(request.app.state, "run_experiments", None)
    if cache is None:
        cache = request.app.state.run_experiments = {}
    service = _service(request)
    names = {}
    for run_id in run_ids:
        name = cache.get(run_id)
        if name is None:
            try:
                run = service.get_run(run_id)
                name = service.experiment_by_id(run.experiment_id).name
            except NotFoundError:
                if missing_ok:
                    continue
                authorize(request, "read")
                raise NotFoundError(f"No run with id {run_id!r}") from None
            if len(cache) >= _RUN_CACHE_SIZE:
                cache.clear()
            cache[run_id] = name
        names[run_id] = name
    return names


def _authorize_run(request: Request, run_id: str, action: Action) -> None:
    name = _run_experiments(request, [run_id])[run_id]
    authorize(request, action, experiment=name)


# -- experiments --------------------------------------------------------------------------


@router.post(
    "/experiments",
    status_code=201,
    summary="Create an experiment",
    operation_id="tracking_create_experiment",
    responses={201: _links("The experiment", "experiment_id", _EXPERIMENT_OPS)},
)
def create_experiment(body: ExperimentCreateBody, request: Request) -> Response:
    authorize(request, "edit", experiment=body.name.strip())
    experiment = _service(request).create_experiment(
        body.name, description=body.description, tags=body.tags
    )
    return _json(encode(experiment), 201)


@router.get("/experiments", summary="Experiments, newest first")
def list_experiments(
    request: Request,
    include_deleted: bool = False,
    max_results: int = Query(100, ge=1, le=MAX_LIST_PAGE),
    offset: int = Query(0, ge=0, le=2**62),
) -> Response:
    authorize(request, "read")
    items = _service(request).experiments_from(
        offset, include_deleted=include_deleted, max_results=max_results
    )
    return _json({"experiments": [encode(e) for e in items]})


@router.get("/experiments/by-name", summary="The experiment with this name")
def get_experiment_by_name(request: Request, name: str = Query(max_length=1000)) -> Response:
    authorize(request, "read", experiment=name)
    found = _service(request).experiment_by_name(name)
    if found is None:
        raise NotFoundError(f"No experiment named {name!r}")
    return _json(encode(found))


@router.get(
    "/experiments/{experiment_id}",
    summary="The experiment with this id",
    operation_id="tracking_get_experiment",
)
def get_experiment(experiment_id: str, request: Request) -> Response:
    return _json(encode(_experiment(request, experiment_id, "read")))


@router.put(
    "/experiments/{experiment_id}/lifecycle",
    summary="Soft-delete or restore",
    operation_id="tracking_set_experiment_lifecycle",
)
def set_experiment_lifecycle(experiment_id: str, body: LifecycleBody, request: Request) -> Response:
    # Deleting or restoring a whole experiment is "manage", as on the MLflow routes.
    experiment = _experiment(request, experiment_id, "manage")
    updated = _service(request).set_experiment_lifecycle(experiment.id, LifecycleStage(body.stage))
    return _json(encode(updated))


# -- runs ---------------------------------------------------------------------------------


@router.post(
    "/runs",
    status_code=201,
    summary="Start a RUNNING run",
    operation_id="tracking_create_run",
    responses={201: _links("The run", "run_id", _RUN_OPS)},
)
def create_run(body: RunCreateBody, request: Request) -> Response:
    experiment = _experiment(request, body.experiment_id, "edit")
    # With --auth the run belongs to whoever is authenticated, not to whom the client says.
    user = getattr(request.state, "user", None)
    run = _service(request).start_run(
        experiment,
        name=body.name,
        user=body.user if user is None else str(user.name),
        start_time=body.start_time,
        parent_id=body.parent_id,
        tags=body.tags,
    )
    return _json(encode(run), 201)


@router.post("/runs/search", summary="Search runs with the search language")
def search_runs(body: RunSearchBody, request: Request) -> Response:
    node = parse_filter(body.filter)  # a syntax error is a 400 naming its position
    order = parse_order_by(body.order_by)
    service = _service(request)
    if body.experiment_ids is None:
        authorize(request, "read")
    else:
        for experiment_id in set(body.experiment_ids):
            try:
                found = service.experiment_by_id(experiment_id)
            except NotFoundError:  # an unknown id just matches no run
                continue
            authorize(request, "read", experiment=found.name)
    runs = service.query_runs(
        RunQuery(
            experiment_ids=body.experiment_ids,
            filter=node,
            order_by=order,
            max_results=body.max_results,
            offset=body.offset,
            lifecycle=None if body.lifecycle is None else LifecycleStage(body.lifecycle),
        )
    )
    return _json({"runs": [encode(run) for run in runs]})


@router.get(
    "/runs/{run_id}",
    summary="A run with its params, latest metrics and tags",
    operation_id="tracking_get_run",
)
def get_run(run_id: str, request: Request) -> Response:
    _authorize_run(request, run_id, "read")
    return _json(encode(_service(request).get_run(run_id)))


@router.post(
    "/runs/{run_id}/status",
    summary="Move a run from `expected` to `status`",
    operation_id="tracking_update_run_status",
)
def update_run_status(run_id: str, body: RunStatusBody, request: Request) -> Response:
    _authorize_run(request, run_id, "edit")
    run = _service(request).update_run_status(
        run_id,
        status=RunStatus(body.status),
        end_time=body.end_time,
        expected=RunStatus(body.expected),
    )
    return _json(encode(run))


@router.put(
    "/runs/{run_id}/lifecycle",
    summary="Soft-delete or restore a run",
    operation_id="tracking_set_run_lifecycle",
)
def set_run_lifecycle(run_id: str, body: LifecycleBody, request: Request) -> Response:
    _authorize_run(request, run_id, "edit")
    run = _service(request).set_run_lifecycle(run_id, LifecycleStage(body.stage))
    return _json(encode(run))


@router.get(
    "/runs/{run_id}/metric-history",
    summary="Every point of one metric, by step",
    operation_id="tracking_get_metric_history",
)
def get_metric_history(run_id: str, request: Request, key: str = Query()) -> Response:
    _authorize_run(request, run_id, "read")
    # _authorize_run found the run: no second lookup.
    points = _service(request).get_metric_history(run_id, key, run_known=True)
    # Columnar, like batches: a history can be hundreds of thousands of points.
    return _json(
        {
            "key": key,
            "value": [encode_float(p.value) for p in points],
            "step": [p.step for p in points],
            "timestamp": [encode(p.timestamp) for p in points],
        }
    )


# -- logging ------------------------------------------------------------------------------


@router.post(
    "/batches",
    summary="Log metrics, params, tags and heartbeats in one transaction (idempotent by key)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LOG_BATCH_SCHEMA}},
        }
    },
)
async def write_batch(request: Request) -> Response:
    # Read the raw body here and parse it in a worker thread: no pydantic model per row.
    raw = await request.body()
    return await run_in_threadpool(_write_batch, request, raw)


def _write_batch(request: Request, raw: bytes) -> Response:
    key, metrics, params, tags, heartbeats = decode_log_batch(raw)
    batch = LogBatch(key=key)
    runs: set[str] = set()
    if metrics is not None:
        run_ids, keys, values, steps, stamps = metrics
        runs.update(run_ids)
        batch.metrics = list(zip(run_ids, keys, values, steps, stamps, strict=True))
    for kind, columns in (("params", params), ("tags", tags)):
        if columns is not None:
            runs.update(columns[0])
            setattr(batch, kind, list(zip(*columns, strict=True)))
    # A retry of a batch that was committed (its answer was lost) writes nothing: if one
    # of its runs was purged since, that is no reason to refuse it, and refusing would make
    # the client re-send the other runs' rows under new keys (written twice).
    service = _service(request)
    repeat = service.has_receipt(key)
    experiments = _run_experiments(request, sorted(runs), missing_ok=repeat)
    # A heartbeat for a run that does not exist (any more) stamps nothing: drop it.
    alive = _run_experiments(request, sorted(set(heartbeats) - runs), missing_ok=True)
    batch.heartbeats = sorted(set(heartbeats) & (runs | set(alive)))
    for name in sorted({*experiments.values(), *alive.values()}):
        authorize(request, "edit", experiment=name)
    if not (batch or batch.heartbeats):
        return _json({"conflicts": []})
    try:
        conflicts = service.write_batch(batch)  # checks keys and value lengths
    except Exception as exc:
        if _is_integrity_error(exc):  # a run was purged between the check and the write
            raise NotFoundError(
                f"A run this batch logs to does not exist any more: {_first_line(exc)}"
            ) from None
        raise
    return _json({"conflicts": conflicts})


def _is_integrity_error(exc: Exception) -> bool:
    # SQLAlchemy's IntegrityError, or psycopg's from a COPY: both are named so.
    return not isinstance(exc, DriftlineError) and any(
        cls.__name__ == "IntegrityError" for cls in type(exc).__mro__
    )


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


# -- run artifacts ------------------------------------------------------------------------


@router.post(
    "/runs/{run_id}/artifacts",
    status_code=204,
    summary="Record files logged to a run",
    operation_id="tracking_add_run_artifacts",
)
def add_artifacts(run_id: str, body: ArtifactEntriesBody, request: Request) -> Response:
    _authorize_run(request, run_id, "edit")
    entries = [
        ArtifactEntry(
            path=item.path, digest=item.digest, size=item.size, created_at=from_ms(item.created_at)
        )
        for item in body.artifacts
    ]
    _service(request).add_artifacts(run_id, entries)
    return Response(status_code=204)


@router.get(
    "/runs/{run_id}/artifacts",
    summary="Files logged to a run under a prefix",
    operation_id="tracking_list_run_artifacts",
)
def list_artifacts(run_id: str, request: Request, prefix: str = "") -> Response:
    _authorize_run(request, run_id, "read")
    entries = _service(request).list_artifacts(run_id, prefix)
    return _json({"artifacts": [encode(e) for e in entries]})


@router.get("/run-artifacts/digests", summary="Every digest a run artifact points to")
def artifact_digests(request: Request) -> Response:
    authorize(request, "read")
    return _json({"digests": sorted(_service(request).referenced_digests())})
