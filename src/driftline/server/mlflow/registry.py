"""MLflow model-registry routes on driftline's registry.

Registered models, versions and aliases are driftline's own: the same rows ``driftline
models list`` shows, the same alias compare-and-set, approval policies and audit log
(the actor is the authenticated caller). What differs is the package format.

driftline's ``register_model`` takes a driftline model package (with
``driftline-model.json``, loadable by ``dl.models.load``). An MLflow model is a folder
with an ``MLmodel`` file instead, loadable by ``mlflow.pyfunc.load_model``. Rewriting it
into a driftline package would need MLflow's loaders on the server and is not the same
model. So a version created here keeps the MLflow folder as it is:

- its files (those of the logged model, or of ``runs:/<run>/<path>`` /
  ``mlflow-artifacts:/...`` sources) are pinned in the content store exactly as
  driftline pins package files (``package_digest``), so the version is immutable and
  garbage collection keeps it;
- its ``flavor`` is ``mlflow`` and its ``source`` is the MLflow source string, so
  driftline users see what it is; ``dl.models.load`` refuses it (no
  ``driftline-model.json``), ``mlflow.pyfunc.load_model("models:/name@alias")`` loads it;
- ``get-download-uri`` points into the read-only ``_registry/<name>/<version>`` artifact
  namespace, which serves the pinned files, not the run's current ones.

Not offered (no driftline equivalent, so the routes answer "not implemented"): deleting
and renaming registered models, deleting versions, version tags and descriptions set
after creation, and stage transitions (MLflow's deprecated stages; use aliases).
Version tags given at creation are refused for the same reason.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from driftline.api.text import INT32_MAX
from driftline.core.artifacts import validate_artifact_path
from driftline.core.paging import decode_token, encode_token
from driftline.data import ManifestEntry
from driftline.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from driftline.registry import ModelVersion, RegisteredModel, RegistryService
from driftline.registry.service import check_model_name
from driftline.server import deps
from driftline.server.mlflow._access import allow, run_by_id
from driftline.server.mlflow._filters import (
    Condition,
    check_order_by,
    evaluate,
    parse_conditions,
)
from driftline.server.mlflow._records import RECORDS_FOLDER
from driftline.server.mlflow._wire import (
    JsonBody,
    MlflowRoute,
    body_of,
    field_int,
    field_str,
    field_strings,
    ms,
    pairs,
    query_of,
)
from driftline.server.mlflow.artifacts import REGISTRY_ROOT
from driftline.server.mlflow.logged_models import LoggedModels
from driftline.workspace import Workspace

__all__ = ["router"]

router = APIRouter(route_class=MlflowRoute)

FLAVOR = "mlflow"
RECORDS = RECORDS_FOLDER + "/"
_MAX_RESULTS = 10_000  # per page


def _registry(request: Request) -> RegistryService:
    """The registry service acting as the caller (audit entries name who did it)."""
    service = copy.copy(deps.workspace(request).registry)
    service.user = deps.actor(request)
    return service


def _version_number(fields: Any) -> int:
    number = field_int(fields, "version", required=True)
    assert number is not None
    if not 1 <= number <= INT32_MAX:
        raise InvalidArgumentError(
            f"Invalid version {number}: versions count from 1 (at most {INT32_MAX})"
        )
    return number


def version_json(version: ModelVersion) -> dict[str, Any]:
    """An MLflow ``ModelVersion`` message."""
    created = ms(version.created_at)
    result: dict[str, Any] = {
        "name": version.name,
        "version": str(version.version),
        "creation_timestamp": created,
        "last_updated_timestamp": created,
        "user_id": version.created_by,
        "current_stage": "None",
        "description": version.description or "",
        "source": version.source,
        "run_id": version.run_id or "",
        "status": "READY",
        "run_link": "",
        "aliases": list(version.aliases),
    }
    if version.source.startswith("models:/m-"):
        result["model_id"] = version.source.removeprefix("models:/")
    return result


def model_json(ws: Workspace, model: RegisteredModel) -> dict[str, Any]:
    """An MLflow ``RegisteredModel`` message (with its latest version)."""
    result: dict[str, Any] = {
        "name": model.name,
        "creation_timestamp": ms(model.created_at),
        "last_updated_timestamp": ms(model.updated_at),
        "description": model.description or "",
        "tags": [{"key": k, "value": v} for k, v in model.tags.items()],
        "aliases": [{"alias": a, "version": str(v)} for a, v in model.aliases.items()],
    }
    if model.latest_version is not None:
        latest = ws.registry.find_version(model.name, model.latest_version)
        if latest is not None:
            result["latest_versions"] = [version_json(latest)]
    return result


# -- registered models -------------------------------------------------------------------


@router.post("/registered-models/create")
def create_registered_model(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Create a registered model; ``RESOURCE_ALREADY_EXISTS`` if there is one."""
    fields = body_of(body)
    name = check_model_name(field_str(fields, "name", required=True))
    allow(request, "edit", model=name)
    registry = _registry(request)
    if any(m.name == name for m in registry.list_models()):
        raise AlreadyExistsError(f"Registered Model (name={name}) already exists.")
    # ensure_model is idempotent: two concurrent creators both succeed, as both asked.
    registry.ensure_model(name, description=field_str(fields, "description") or None)
    tags = pairs(fields, "tags")
    model = registry.update_model(name, tags=tags) if tags else registry.get_model(name)
    return {"registered_model": model_json(deps.workspace(request), model)}


@router.get("/registered-models/get")
def get_registered_model(request: Request) -> dict[str, Any]:
    """``{"registered_model"}`` named ``name``."""
    deps.authorize(request, "read")
    name = field_str(query_of(request), "name", required=True)
    ws = deps.workspace(request)
    return {"registered_model": model_json(ws, ws.registry.get_model(name))}


@router.patch("/registered-models/update")
def update_registered_model(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Set a registered model's description."""
    fields = body_of(body)
    name = field_str(fields, "name", required=True)
    allow(request, "edit", model=name)
    registry = _registry(request)
    registry.get_model(name)
    model = registry.update_model(name, description=field_str(fields, "description"))
    return {"registered_model": model_json(deps.workspace(request), model)}


@router.post("/registered-models/set-tag")
def set_registered_model_tag(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Set one tag of a registered model."""
    fields = body_of(body)
    name = field_str(fields, "name", required=True)
    allow(request, "edit", model=name)
    registry = _registry(request)
    registry.get_model(name)
    registry.update_model(
        name, tags={field_str(fields, "key", required=True): field_str(fields, "value")}
    )
    return {}


@router.get("/registered-models/search")
def search_registered_models(request: Request) -> dict[str, Any]:
    """Registered models matching ``filter`` (name, tags), ordered and paged."""
    deps.authorize(request, "read")
    fields = query_of(request)
    ws = deps.workspace(request)
    text = field_str(fields, "filter")
    conditions = parse_conditions(text)
    order_by = check_order_by(field_strings(fields, "order_by"))
    models = [
        m for m in ws.registry.list_models() if evaluate(conditions, partial(_model_field, m))
    ]
    for term in reversed(order_by or ["name ASC"]):
        field, descending = _order_term(term, {"name", "timestamp", "last_updated_timestamp"})
        key = {
            "name": lambda m: m.name,
            "timestamp": lambda m: ms(m.created_at),
            "last_updated_timestamp": lambda m: ms(m.updated_at),
        }[field]
        models.sort(key=key, reverse=descending)
    page, token = _page(models, fields, {"kind": "mlflow-models", "f": text, "o": order_by})
    result: dict[str, Any] = {"registered_models": [model_json(ws, m) for m in page]}
    if token:
        result["next_page_token"] = token
    return result


def _model_field(model: RegisteredModel, condition: Condition) -> Any:
    if condition.prefix in ("tag", "tags"):
        return model.tags.get(condition.key)
    if condition.prefix in (None, "attribute", "attributes") and condition.key == "name":
        return model.name
    raise InvalidArgumentError(
        f"Registered models are searched by name and tags, not {condition.key!r}"
    )


def _order_term(term: str, known: set[str]) -> tuple[str, bool]:
    words = term.split()
    if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
        raise InvalidArgumentError(f"Invalid order_by term {term!r}")
    field = words[0].removeprefix("attributes.")
    if field not in known:
        raise InvalidArgumentError(
            f"Cannot order by {field!r}; use one of {', '.join(sorted(known))}"
        )
    return field, len(words) == 2 and words[1].lower() == "desc"


def _page(
    items: list[Any], fields: Any, fingerprint: dict[str, Any]
) -> tuple[list[Any], str | None]:
    """One page of ``items`` and the token of the next (larger asks get several pages)."""
    max_results = field_int(fields, "max_results", default=100)
    assert max_results is not None
    if max_results < 1:
        raise InvalidArgumentError("max_results must be a positive number")
    max_results = min(max_results, _MAX_RESULTS)
    fingerprint = {**fingerprint, "max": max_results}
    offset = decode_token(field_str(fields, "page_token") or None, fingerprint)
    page = items[offset : offset + max_results]
    more = offset + max_results < len(items)
    return page, encode_token(offset + max_results, fingerprint) if more else None


@router.post("/registered-models/get-latest-versions")
def get_latest_versions(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """The latest version (MLflow stages are all ``None`` in driftline; use aliases)."""
    return _latest(request, body_of(body))


@router.get("/registered-models/get-latest-versions")
def get_latest_versions_get(request: Request) -> dict[str, Any]:
    """The GET form of :func:`get_latest_versions`."""
    return _latest(request, query_of(request))


def _latest(request: Request, fields: Any) -> dict[str, Any]:
    deps.authorize(request, "read")
    ws = deps.workspace(request)
    model = ws.registry.get_model(field_str(fields, "name", required=True))
    stages = field_strings(fields, "stages")
    if model.latest_version is None or (stages and "none" not in {s.lower() for s in stages}):
        return {}
    latest = ws.registry.find_version(model.name, model.latest_version)
    return {"model_versions": [version_json(latest)]} if latest else {}


# -- versions ----------------------------------------------------------------------------


def _source_files(ws: Workspace, source: str) -> tuple[str, list[ManifestEntry]]:
    """The run and files an MLflow version ``source`` names (see the module docstring)."""
    experiment_id = None
    if source.startswith("models:/"):
        model_id = source.removeprefix("models:/")
        if not model_id.startswith("m-"):
            raise InvalidArgumentError(
                f"Source {source!r} is a registered version; register the logged model "
                "(models:/<model id>) or its run's files (runs:/<run id>/<path>) instead"
            )
        run_id, folder = LoggedModels(ws).files(LoggedModels(ws).get(model_id)[1])
    elif source.startswith("runs:/"):
        run_id, _, folder = source.removeprefix("runs:/").partition("/")
    elif source.startswith("mlflow-artifacts:/"):
        parts = source.removeprefix("mlflow-artifacts:").lstrip("/").split("/", 3)
        if len(parts) < 4 or parts[2] != "artifacts":
            raise InvalidArgumentError(
                f"Source {source!r}: use mlflow-artifacts:/<experiment>/<run>/artifacts/<path>"
            )
        run_id, folder, experiment_id = parts[1], parts[3], parts[0]
    else:
        raise InvalidArgumentError(
            f"driftline registers files it stores; source {source!r} is not one: use "
            "models:/<logged model id>, runs:/<run id>/<path> or mlflow-artifacts:/... "
            "(log the model with the MLflow client first)"
        )
    folder = validate_artifact_path(folder.strip("/")) if folder.strip("/") else ""
    run = run_by_id(ws, run_id)
    if experiment_id is not None and experiment_id != run.experiment_id:
        raise InvalidArgumentError(f"Source {source!r}: run {run.id} is in another experiment")
    entries = [
        ManifestEntry(
            path=a.path[len(folder) + 1 :] if folder else a.path, digest=a.digest, size=a.size
        )
        for a in ws.tracking.list_artifacts(run.id, folder)
        if (a.path.startswith(folder + "/") if folder else not a.path.startswith(RECORDS))
    ]
    if not entries:
        raise InvalidArgumentError(f"Source {source!r} holds no files to register")
    return run.id, entries


@router.post("/model-versions/create")
def create_model_version(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Register the files of ``source`` as the next version of ``name`` (pinned)."""
    fields = body_of(body)
    name = field_str(fields, "name", required=True)
    source = field_str(fields, "source", required=True)
    allow(request, "edit", model=name)
    if pairs(fields, "tags"):
        raise InvalidArgumentError(
            "driftline model versions have no tags; tag the registered model instead"
        )
    ws = deps.workspace(request)
    registry = _registry(request)
    registry.get_model(name)  # RESOURCE_DOES_NOT_EXIST for an unknown model
    run_id, entries = _source_files(ws, source)
    version = registry.record_version(
        name,
        {
            "source": source,
            "run_id": run_id,
            "package_digest": ws.data.pin(entries),
            "flavor": FLAVOR,
            "signature": None,
            "description": field_str(fields, "description") or None,
        },
        model_package=False,  # an MLflow model's files, registered as they are
    )
    return {"model_version": version_json(version)}


@router.get("/model-versions/get")
def get_model_version(request: Request) -> dict[str, Any]:
    """``{"model_version"}`` ``version`` of ``name``."""
    deps.authorize(request, "read")
    fields = query_of(request)
    name = field_str(fields, "name", required=True)
    version = deps.workspace(request).registry.get_version(f"{name}/{_version_number(fields)}")
    return {"model_version": version_json(version)}


@router.get("/model-versions/get-download-uri")
def get_model_version_download_uri(request: Request) -> dict[str, Any]:
    """Where the client downloads a version: the pinned files (``_registry/...``)."""
    deps.authorize(request, "read")
    fields = query_of(request)
    name = field_str(fields, "name", required=True)
    version = deps.workspace(request).registry.get_version(f"{name}/{_version_number(fields)}")
    return {"artifact_uri": f"mlflow-artifacts:/{REGISTRY_ROOT}/{version.name}/{version.version}"}


@router.get("/model-versions/search")
def search_model_versions(request: Request) -> dict[str, Any]:
    """Versions matching ``filter`` (name, version_number, run_id, source), newest first."""
    deps.authorize(request, "read")
    fields = query_of(request)
    ws = deps.workspace(request)
    text = field_str(fields, "filter")
    conditions = parse_conditions(text)
    names = [c.value for c in conditions if c.key == "name" and c.op == "=" and c.prefix is None]
    models = names[:1] if names else [m.name for m in ws.registry.list_models()]
    versions = [
        v
        for name in models
        for v in (ws.registry.list_versions(name) if _exists(ws, name) else [])
        if evaluate(conditions, partial(_version_field, v))
    ]
    order_by = check_order_by(field_strings(fields, "order_by"))
    for term in reversed(order_by):
        field, descending = _order_term(term, {"name", "version_number", "creation_timestamp"})
        key = {
            "name": lambda v: v.name,
            "version_number": lambda v: v.version,
            "creation_timestamp": lambda v: ms(v.created_at),
        }[field]
        versions.sort(key=key, reverse=descending)
    page, token = _page(versions, fields, {"kind": "mlflow-versions", "f": text, "o": order_by})
    result: dict[str, Any] = {"model_versions": [version_json(v) for v in page]}
    if token:
        result["next_page_token"] = token
    return result


def _exists(ws: Workspace, name: str) -> bool:
    try:
        ws.registry.get_model(name)
    except NotFoundError:
        return False
    return True


def _version_field(version: ModelVersion, condition: Condition) -> Any:
    if condition.prefix in ("tag", "tags"):
        return None  # versions have no tags: only negations ("!= 'x'") match
    if condition.prefix not in (None, "attribute", "attributes"):
        raise InvalidArgumentError(f"Unknown field prefix {condition.prefix!r} for versions")
    values = {
        "name": version.name,
        "version_number": version.version,
        "run_id": version.run_id,
        "source": version.source,
        "source_path": version.source,
    }
    if condition.key not in values:
        raise InvalidArgumentError(
            f"Unknown model-version field {condition.key!r}; known: {', '.join(values)}"
        )
    return values[condition.key]


# -- aliases -----------------------------------------------------------------------------


@router.post("/registered-models/alias")
def set_registered_model_alias(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Point ``alias`` at ``version`` (audited; approval policies apply)."""
    fields = body_of(body)
    name = field_str(fields, "name", required=True)
    alias = field_str(fields, "alias", required=True)
    allow(request, "manage", model=name)
    _registry(request).set_alias(name, alias, _version_number(fields))
    return {}


@router.delete("/registered-models/alias")
def delete_registered_model_alias(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Remove an alias (fields in the JSON body, or in the query string)."""
    fields = {**query_of(request), **body_of(body)}
    name = field_str(fields, "name", required=True)
    allow(request, "manage", model=name)
    _registry(request).delete_alias(name, field_str(fields, "alias", required=True))
    return {}


@router.get("/registered-models/alias")
def get_model_version_by_alias(request: Request) -> dict[str, Any]:
    """``{"model_version"}`` the alias points at."""
    deps.authorize(request, "read")
    fields = query_of(request)
    name = field_str(fields, "name", required=True)
    alias = field_str(fields, "alias", required=True)
    version = deps.workspace(request).registry.get_version(f"{name}@{alias}")
    return {"model_version": version_json(version)}
