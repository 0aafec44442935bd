"""MLflow run routes: create, get, update (end), delete, restore, search.

An MLflow run is a driftline run. ``run_name``, ``user_id``, ``start_time`` and the
``mlflow.parentRunId`` tag become the run's name, user, start time and parent (see
``_views`` for the tag mapping). With ``--auth`` the user is the authenticated one, not
what the client claims.

Two MLflow behaviours driftline does not have, refused with a clear 4xx rather than
faked: renaming a run (names are fixed when a run starts) and reopening or re-ending a
run (a driftline run that has ended is final; ``RESOURCE_CONFLICT``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from driftline.core.clock import now_ms
from driftline.core.paging import decode_token, encode_token
from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.server import deps
from driftline.server.mlflow._access import allow, experiment_by_id, run_by_id, run_id_of
from driftline.server.mlflow._filters import run_filter, run_order_by
from driftline.server.mlflow._records import RunRecords
from driftline.server.mlflow._views import (
    INTERNAL_TAG_PREFIX,
    TAG_ALIASES,
    TAG_ATTRIBUTES,
    latest_points,
    run_data,
    run_info,
)
from driftline.server.mlflow._wire import (
    JsonBody,
    MlflowRoute,
    body_of,
    field_enum,
    field_int,
    field_ms,
    field_str,
    field_strings,
    pairs,
    query_of,
)
from driftline.tracking import LifecycleStage, Run, RunStatus
from driftline.tracking.store import RunQuery
from driftline.workspace import Workspace

__all__ = ["router", "run_json", "split_tags"]

router = APIRouter(route_class=MlflowRoute)

_VIEWS = {
    "ACTIVE_ONLY": LifecycleStage.ACTIVE,
    "DELETED_ONLY": LifecycleStage.DELETED,
    "ALL": None,
}
# MLflow's RunStatus enum, in the order of its numbers (SCHEDULED has no driftline twin).
_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
_MAX_RUNS = 10_000  # per page; the client pages on with next_page_token
_MAX_EXPERIMENTS = 1000  # per search, as in driftline's own search route


def run_json(ws: Workspace, runs: Sequence[Run]) -> list[dict[str, Any]]:
    """MLflow ``Run`` messages: info, data, dataset inputs and model outputs."""
    points = latest_points(ws, runs)
    records = RunRecords(ws)
    result = []
    for run in runs:
        inputs: dict[str, Any] = {}
        datasets = records.list(run, "inputs")
        if datasets:
            inputs["dataset_inputs"] = datasets
        model_inputs = records.list(run, "model-inputs")
        if model_inputs:
            inputs["model_inputs"] = model_inputs
        outputs: dict[str, Any] = {}
        model_outputs = records.list(run, "outputs")
        if model_outputs:
            outputs["model_outputs"] = model_outputs
        result.append(
            {
                "info": run_info(run),
                "data": run_data(run, points),
                "inputs": inputs,
                "outputs": outputs,
            }
        )
    return result


def split_tags(
    tags: dict[str, str], run: Run | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """MLflow tags -> (tags to store, run fields they name: ``name``/``user``/``parent_run_id``).

    The tags to store are checked by the tracking service (keys, value lengths), as
    every tag is; this only maps MLflow's names. For an existing ``run``, a tag naming
    one of its fields must agree with it: driftline cannot rename a run or change its
    user or parent.
    """
    stored: dict[str, str] = {}
    fields: dict[str, str] = {}
    for key, value in tags.items():
        if key in TAG_ATTRIBUTES:
            fields[TAG_ATTRIBUTES[key]] = value
            continue
        key = TAG_ALIASES.get(key, key)
        if isinstance(key, str) and key.startswith(INTERNAL_TAG_PREFIX):
            raise InvalidArgumentError(f"Tag {key!r} is reserved for driftline's bookkeeping")
        stored[key] = value
    if run is not None:
        current = {"name": run.name, "user": run.user, "parent_run_id": run.parent_id or ""}
        for field, value in fields.items():
            if value != current[field]:
                raise InvalidArgumentError(
                    f"driftline cannot change the {field} of run {run.id} "
                    f"({current[field]!r} -> {value!r}): it is fixed when the run starts"
                )
    return stored, fields


def _user(request: Request, claimed: str) -> str:
    """The run's user: the authenticated caller, else what the client says, else the server's."""
    if getattr(request.state, "user", None) is not None:
        return deps.actor(request)
    return claimed or deps.actor(request)


@router.post("/runs/create")
def create_run(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Start a RUNNING run: ``{"run"}``."""
    fields = body_of(body)
    ws = deps.workspace(request)
    experiment = experiment_by_id(
        ws, field_str(fields, "experiment_id", default="0"), create_default=True
    )
    allow(request, "edit", experiment_name=experiment.name)
    tags, run_fields = split_tags(pairs(fields, "tags"))
    run = ws.tracking.start_run(
        experiment,
        name=field_str(fields, "run_name") or run_fields.get("name") or None,
        user=_user(request, field_str(fields, "user_id") or run_fields.get("user", "")),
        start_time=field_ms(fields, "start_time"),
        parent_id=run_fields.get("parent_run_id") or None,
        tags=tags,
    )
    return {"run": run_json(ws, [run])[0]}


@router.get("/runs/get")
def get_run(request: Request) -> dict[str, Any]:
    """``{"run"}`` with ``run_id``; ``RESOURCE_DOES_NOT_EXIST`` if there is none."""
    deps.authorize(request, "read")
    ws = deps.workspace(request)
    run = run_by_id(ws, run_id_of(query_of(request)))
    return {"run": run_json(ws, [run])[0]}


@router.post("/runs/update")
def update_run(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """End a run (``status`` FINISHED/FAILED/KILLED, ``end_time``): ``{"run_info"}``."""
    fields = body_of(body)
    ws = deps.workspace(request)
    run = run_by_id(ws, run_id_of(fields))
    allow(request, "edit", experiment_id=run.experiment_id)
    split_tags({"mlflow.runName": field_str(fields, "run_name", default=run.name)}, run)
    status = field_enum(fields, "status", _STATUSES)
    if status:
        if status == "SCHEDULED":
            raise InvalidArgumentError(
                "Invalid run status SCHEDULED; driftline runs are "
                + ", ".join(s.value for s in RunStatus)
            )
        target = RunStatus(status)
        if target is not run.status:  # the same status again is a no-op, as in MLflow
            run = ws.tracking.update_run_status(
                run.id,
                status=target,
                end_time=None
                if target is RunStatus.RUNNING
                else field_ms(fields, "end_time") or now_ms(),
                expected=RunStatus.RUNNING,
            )
    return {"run_info": run_info(run)}


@router.post("/runs/delete")
def delete_run(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Soft-delete a run."""
    return _set_lifecycle(request, body, LifecycleStage.DELETED)


@router.post("/runs/restore")
def restore_run(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Undo a delete."""
    return _set_lifecycle(request, body, LifecycleStage.ACTIVE)


def _set_lifecycle(request: Request, body: Any, stage: LifecycleStage) -> dict[str, Any]:
    ws = deps.workspace(request)
    run = run_by_id(ws, run_id_of(body_of(body)))
    allow(request, "edit", experiment_id=run.experiment_id)
    ws.tracking.set_run_lifecycle(run.id, stage)
    return {}


@router.post("/runs/search")
def search_runs(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Runs of ``experiment_ids`` matching an MLflow ``filter``, ordered and paged."""
    deps.authorize(request, "read")
    fields = body_of(body)
    ws = deps.workspace(request)
    experiment_ids = []
    requested = list(dict.fromkeys(field_strings(fields, "experiment_ids")))
    if len(requested) > _MAX_EXPERIMENTS:
        raise InvalidArgumentError(
            f"A search covers at most {_MAX_EXPERIMENTS} experiments, got {len(requested)}"
        )
    for value in requested:
        try:
            experiment_ids.append(experiment_by_id(ws, value).id)
        except NotFoundError:  # MLflow finds no runs in an unknown experiment
            continue
    view = field_enum(fields, "run_view_type", tuple(_VIEWS), default="ACTIVE_ONLY")
    max_results = field_int(fields, "max_results", default=1000)
    assert max_results is not None
    if max_results < 1:
        raise InvalidArgumentError("max_results must be a positive number")
    max_results = min(max_results, _MAX_RUNS)
    text = field_str(fields, "filter")
    order_by = field_strings(fields, "order_by")
    fingerprint = {
        "kind": "mlflow-runs",
        "experiments": experiment_ids,
        "filter": text,
        "order": order_by,
        "view": view,
        "max": max_results,
    }
    offset = decode_token(field_str(fields, "page_token") or None, fingerprint)
    # Parsed first: a bad filter is a 400 whether or not the experiments exist.
    node, order = run_filter(text), run_order_by(order_by)
    if not experiment_ids:
        return {}
    runs = ws.tracking.query_runs(
        RunQuery(
            experiment_ids=experiment_ids,
            filter=node,
            order_by=order,
            max_results=max_results + 1,
            offset=offset,
            lifecycle=_VIEWS[view],
        )
    )
    result: dict[str, Any] = {"runs": run_json(ws, runs[:max_results])}
    if len(runs) > max_results:
        result["next_page_token"] = encode_token(offset + max_results, fingerprint)
    return result
