"""MLflow experiment routes: get by name or id, create, search, delete, restore.

An MLflow experiment is a driftline experiment (ids are driftline's 32-hex ids; MLflow's
default experiment ``"0"`` is driftline's ``default``). Every experiment's artifacts live
in the server's one artifact store, so ``artifact_location`` cannot be chosen per
experiment and is refused when given.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from driftline.core.paging import decode_token, encode_token
from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.server import deps
from driftline.server.mlflow._access import allow, experiment_by_id
from driftline.server.mlflow._filters import (
    Condition,
    check_order_by,
    evaluate,
    parse_conditions,
)
from driftline.server.mlflow._views import experiment_json
from driftline.server.mlflow._wire import (
    JsonBody,
    MlflowRoute,
    body_of,
    field_enum,
    field_int,
    field_str,
    field_strings,
    ms,
    pairs,
    query_of,
)
from driftline.tracking import Experiment, LifecycleStage

__all__ = ["router"]

router = APIRouter(route_class=MlflowRoute)

_VIEW_TYPES = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
_MAX_EXPERIMENTS = 100_000  # read at most this many to filter
_MAX_PAGE = 10_000  # per page; the client pages on with next_page_token


@router.get("/experiments/get-by-name")
def get_experiment_by_name(request: Request) -> dict[str, Any]:
    """``{"experiment"}`` named ``experiment_name`` (deleted ones too, as MLflow does)."""
    deps.authorize(request, "read")
    name = field_str(query_of(request), "experiment_name", required=True)
    found = deps.workspace(request).tracking.experiment_by_name(name)
    if found is None:
        raise NotFoundError(f"Could not find experiment with name {name!r}")
    return {"experiment": experiment_json(found)}


@router.get("/experiments/get")
def get_experiment(request: Request) -> dict[str, Any]:
    """``{"experiment"}`` with ``experiment_id``."""
    deps.authorize(request, "read")
    experiment_id = field_str(query_of(request), "experiment_id", required=True)
    return {"experiment": experiment_json(experiment_by_id(deps.workspace(request), experiment_id))}


@router.post("/experiments/create")
def create_experiment(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Create an experiment; ``RESOURCE_ALREADY_EXISTS`` if the name is taken."""
    fields = body_of(body)
    name = field_str(fields, "name", required=True)
    deps.authorize(request, "edit", experiment=name)
    if field_str(fields, "artifact_location"):
        raise InvalidArgumentError(
            "driftline keeps every experiment's artifacts in the server's artifact store; "
            "create the experiment without artifact_location"
        )
    tags = pairs(fields, "tags")
    description = tags.pop("mlflow.note.content", None)
    experiment = deps.workspace(request).tracking.create_experiment(
        name, description=description, tags=tags
    )
    return {"experiment_id": experiment.id}


@router.post("/experiments/search")
def search_experiments(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Experiments matching ``filter`` (name and tags), ordered and paged."""
    return _search(request, body_of(body))


@router.get("/experiments/search")
def search_experiments_get(request: Request) -> dict[str, Any]:
    """The GET form of :func:`search_experiments`."""
    return _search(request, query_of(request))


def _search(request: Request, fields: dict[str, Any] | Any) -> dict[str, Any]:
    deps.authorize(request, "read")
    view = field_enum(fields, "view_type", _VIEW_TYPES, default="ACTIVE_ONLY")
    max_results = field_int(fields, "max_results", default=1000)
    assert max_results is not None
    if max_results < 1:
        raise InvalidArgumentError("max_results must be a positive number")
    max_results = min(max_results, _MAX_PAGE)
    text = field_str(fields, "filter")
    conditions = parse_conditions(text)
    order_by = check_order_by(field_strings(fields, "order_by"))
    experiments = deps.workspace(request).tracking.experiments_from(
        0, include_deleted=view != "ACTIVE_ONLY", max_results=_MAX_EXPERIMENTS
    )
    if view == "DELETED_ONLY":
        experiments = [e for e in experiments if e.lifecycle_stage is LifecycleStage.DELETED]
    matched = [e for e in experiments if evaluate(conditions, partial(_field, e))]
    matched = _ordered(matched, order_by)
    fingerprint = {
        "kind": "mlflow-experiments",
        "filter": text,
        "view": view,
        "order": order_by,
        "max": max_results,
    }
    offset = decode_token(field_str(fields, "page_token") or None, fingerprint)
    page = matched[offset : offset + max_results]
    result: dict[str, Any] = {"experiments": [experiment_json(e) for e in page]}
    if offset + max_results < len(matched):
        result["next_page_token"] = encode_token(offset + max_results, fingerprint)
    return result


def _field(experiment: Experiment, condition: Condition) -> Any:
    if condition.prefix in ("tag", "tags"):
        return experiment.tags.get(condition.key)
    if condition.prefix not in (None, "attribute", "attributes"):
        raise InvalidArgumentError(
            f"Experiments are searched by attributes and tags, not {condition.prefix!r}"
        )
    key = condition.key.lower()
    values = {
        "name": experiment.name,
        "experiment_id": experiment.id,
        "creation_time": ms(experiment.created_at),
        "last_update_time": ms(experiment.updated_at),
        "lifecycle_stage": experiment.lifecycle_stage.value,
    }
    if key not in values:
        raise InvalidArgumentError(
            f"Unknown experiment attribute {condition.key!r}; known: {', '.join(values)}"
        )
    return values[key]


def _ordered(experiments: list[Experiment], order_by: list[str]) -> list[Experiment]:
    """Sort by the terms, last term first (stable sorts compose); newest first by default."""
    result = sorted(experiments, key=lambda e: (ms(e.created_at), e.id), reverse=True)
    for term in reversed(order_by):
        words = term.split()
        if (
            not words
            or len(words) > 2
            or (len(words) == 2 and words[1].lower() not in ("asc", "desc"))
        ):
            raise InvalidArgumentError(f"Invalid order_by term {term!r}")
        field = words[0].removeprefix("attributes.").removeprefix("attribute.").lower()
        keys = {
            "name": lambda e: e.name,
            "experiment_id": lambda e: e.id,
            "creation_time": lambda e: ms(e.created_at),
            "last_update_time": lambda e: ms(e.updated_at),
        }
        if field not in keys:
            raise InvalidArgumentError(
                f"Cannot order experiments by {words[0]!r}; use one of {', '.join(keys)}"
            )
        descending = len(words) == 2 and words[1].lower() == "desc"
        result.sort(key=keys[field], reverse=descending)
    return result


@router.post("/experiments/delete")
def delete_experiment(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Soft-delete an experiment (its runs are hidden with it)."""
    return _set_lifecycle(request, body, LifecycleStage.DELETED)


@router.post("/experiments/restore")
def restore_experiment(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Undo a delete."""
    return _set_lifecycle(request, body, LifecycleStage.ACTIVE)


def _set_lifecycle(request: Request, body: Any, stage: LifecycleStage) -> dict[str, Any]:
    experiment_id = field_str(body_of(body), "experiment_id", required=True)
    ws = deps.workspace(request)
    experiment = experiment_by_id(ws, experiment_id)
    allow(request, "manage", experiment_name=experiment.name)
    ws.tracking.set_experiment_lifecycle(experiment.id, stage)
    return {}
