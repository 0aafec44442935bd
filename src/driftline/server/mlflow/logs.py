"""MLflow logging routes: metrics, params, tags, batches, inputs, outputs, metric history.

Metrics, params and tags go through the tracking service, exactly as driftline's own
logging does (validated keys, write-once params, the server's synchronous writes), so
what an MLflow client logs is what ``driftline runs show`` and the SDK read. Dataset
inputs and model outputs are kept as run records (see ``_records``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from driftline.core.clock import now_ms
from driftline.core.paging import decode_token, encode_token
from driftline.errors import InvalidArgumentError
from driftline.server import deps
from driftline.server.mlflow._access import allow, run_by_id, run_id_of
from driftline.server.mlflow._records import RunRecords
from driftline.server.mlflow._wire import (
    JsonBody,
    MlflowRoute,
    body_of,
    double,
    field_int,
    field_list,
    field_ms,
    field_str,
    json_double,
    ms,
    pairs,
    query_of,
)
from driftline.server.mlflow.runs import split_tags
from driftline.tracking import Run
from driftline.workspace import Workspace

__all__ = ["router"]

router = APIRouter(route_class=MlflowRoute)

_MAX_HISTORY = 25_000


def _editable_run(request: Request, fields: Any) -> tuple[Workspace, Run]:
    ws = deps.workspace(request)
    run = run_by_id(ws, run_id_of(fields))
    allow(request, "edit", experiment_id=run.experiment_id)
    return ws, run


Point = tuple[str, float, int, int]
"""``(key, value, step, timestamp ms)``"""


def _metric(item: Any) -> tuple[Point, str]:
    """A metric message as a point, and the logged model it names (``""`` for none)."""
    if not isinstance(item, dict):
        raise InvalidArgumentError("Each metric must be an object with key, value and timestamp")
    key = field_str(item, "key", required=True)
    if "value" not in item:
        raise InvalidArgumentError(f"Missing value for required parameter 'value' of {key!r}")
    timestamp = field_ms(item, "timestamp")
    step = field_int(item, "step", default=0)
    assert step is not None
    point = (
        key,
        double(item["value"], "value"),
        step,
        now_ms() if timestamp is None else timestamp,
    )
    return point, field_str(item, "model_id")


def _log(
    ws: Workspace,
    run: Run,
    *,
    metrics: Sequence[tuple[Point, str]] = (),
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Log to the run; points naming a logged model are also recorded with that model.

    MLflow's ``log_model`` re-sends the run's points of the model's step with the model's
    id, to link them to it. MLflow stores an identical point once; driftline's metric
    history keeps every point logged, so a point the run already has is not logged again.
    """
    stored_tags, _ = split_tags(tags or {}, run)
    points = [point for point, model_id in metrics if not model_id]
    linked: dict[str, list[Point]] = {}
    for point, model_id in metrics:
        if model_id:
            linked.setdefault(model_id, []).append(point)
    if linked:
        points += _new_points(ws, run, [p for group in linked.values() for p in group])
    ws.tracking.log_batch(run.id, metrics=points, params=params or {}, tags=stored_tags)
    if linked:
        from driftline.server.mlflow.logged_models import LoggedModels

        models = LoggedModels(ws)
        for model_id, group in linked.items():
            models.add_metrics(model_id, run.id, group)


def _new_points(ws: Workspace, run: Run, points: list[Point]) -> list[Point]:
    """The points the run's history does not hold yet."""
    held: set[Point] = set()
    for key in {point[0] for point in points}:
        held |= {
            (p.key, p.value, p.step, ms(p.timestamp) or 0)
            for p in ws.tracking.get_metric_history(run.id, key, run_known=True)
        }
    return [point for point in points if point not in held]


@router.post("/runs/log-metric")
def log_metric(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Log one metric point (``key``, ``value``, ``timestamp``, ``step``)."""
    fields = body_of(body)
    ws, run = _editable_run(request, fields)
    _log(ws, run, metrics=[_metric(fields)])
    return {}


@router.post("/runs/log-parameter")
def log_param(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Log one param; a different value for a logged key is refused (write-once)."""
    fields = body_of(body)
    ws, run = _editable_run(request, fields)
    key = field_str(fields, "key", required=True)
    _log(ws, run, params={key: field_str(fields, "value")})
    return {}


@router.post("/runs/set-tag")
def set_tag(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Set one tag (``mlflow.runName`` etc. must match the run's fixed fields)."""
    fields = body_of(body)
    ws, run = _editable_run(request, fields)
    key = field_str(fields, "key", required=True)
    _log(ws, run, tags={key: field_str(fields, "value")})
    return {}


@router.post("/runs/log-batch")
def log_batch(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Log metrics, params and tags in one write."""
    fields = body_of(body)
    ws, run = _editable_run(request, fields)
    _log(
        ws,
        run,
        metrics=[_metric(item) for item in field_list(fields, "metrics")],
        params=pairs(fields, "params"),
        tags=pairs(fields, "tags"),
    )
    return {}


@router.post("/runs/log-inputs")
def log_inputs(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Record dataset inputs (MLflow dataset descriptions) and model inputs of a run."""
    fields = body_of(body)
    ws, run = _editable_run(request, fields)
    records = RunRecords(ws)
    for item in field_list(fields, "datasets"):
        record = _dataset_input(item)
        name = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:32]
        run = records.put(run, "inputs", name, record)
    for item in field_list(fields, "models"):
        model_id = field_str(item if isinstance(item, dict) else {}, "model_id", required=True)
        run = records.put(run, "model-inputs", _safe_name(model_id), {"model_id": model_id})
    return {}


def _dataset_input(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("dataset"), dict):
        raise InvalidArgumentError("Each dataset input must be an object with a 'dataset'")
    source = item["dataset"]
    dataset = {
        name: field_str(source, name, required=True)
        for name in ("name", "digest", "source_type", "source")
    }
    for name in ("schema", "profile"):
        if field_str(source, name):
            dataset[name] = field_str(source, name)
    tags = [{"key": k, "value": v} for k, v in pairs(item, "tags").items()]
    return {"tags": tags, "dataset": dataset} if tags else {"dataset": dataset}


def _safe_name(model_id: str) -> str:
    if not model_id.replace("-", "").replace("_", "").isalnum():
        raise InvalidArgumentError(f"Invalid model id {model_id!r}")
    return model_id


@router.post("/runs/outputs")
def log_outputs(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Record logged models as outputs of a run (``models``: model id and step)."""
    from driftline.server.mlflow.logged_models import LoggedModels

    fields = body_of(body)
    ws, run = _editable_run(request, fields)
    models = LoggedModels(ws)
    records = RunRecords(ws)
    for item in field_list(fields, "models"):
        if not isinstance(item, dict):
            raise InvalidArgumentError("Each model output must be an object with model_id")
        model_id = field_str(item, "model_id", required=True)
        models.get(model_id)  # RESOURCE_DOES_NOT_EXIST for an unknown model
        step = field_int(item, "step", default=0)
        run = records.put(run, "outputs", model_id, {"model_id": model_id, "step": step})
    return {}


@router.get("/metrics/get-history")
def get_metric_history(request: Request) -> dict[str, Any]:
    """Every point of ``metric_key`` of a run, by step, paged by ``max_results``."""
    deps.authorize(request, "read")
    fields = query_of(request)
    ws = deps.workspace(request)
    run = run_by_id(ws, run_id_of(fields))
    key = field_str(fields, "metric_key", required=True)
    max_results = field_int(fields, "max_results", default=_MAX_HISTORY)
    assert max_results is not None
    if max_results < 1:
        raise InvalidArgumentError("max_results must be a positive number")
    fingerprint = {"kind": "mlflow-history", "run": run.id, "key": key, "max": max_results}
    offset = decode_token(field_str(fields, "page_token") or None, fingerprint)
    points = ws.tracking.get_metric_history(run.id, key, run_known=True)
    page = points[offset : offset + max_results]
    result: dict[str, Any] = {
        "metrics": [
            {
                "key": point.key,
                "value": json_double(point.value),
                "timestamp": ms(point.timestamp),
                "step": point.step,
            }
            for point in page
        ]
    }
    if offset + max_results < len(points):
        result["next_page_token"] = encode_token(offset + max_results, fingerprint)
    return result
