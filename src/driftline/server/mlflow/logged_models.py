"""MLflow 3 "logged models": create, finalize, get, search, tags, params.

A logged model is MLflow 3's record of a model: an id, a name, a status (pending until
its files are uploaded, then ready), tags, params, and an artifact location. driftline
has no such table; its nearest concept is "a model package logged as artifacts of the
run that trained it" (``runs:/<run id>/model``). So here a logged model is:

- its files: artifacts of its source run, in the folder named after the model
  (``model/MLmodel`` ...; ``<name>-<suffix>`` if that folder is taken). Its
  ``artifact_uri`` is ``mlflow-artifacts:/<experiment>/<run>/artifacts/<folder>``, so
  the client's uploads land there through the artifact routes and ``driftline artifacts
  list <run>`` shows them as for any run;
- its record: a row of the tracking stage's ``logged_models`` table (its tags, params
  and linked metric points a JSON document), changed in one transaction per update and
  deleted by MLflow's delete. An older server kept records as JSON files
  ``.mlflow/models/<model id>.json`` of the run (see ``_records``): one found there is
  read into the table on first use;
- its id: ``m-<run id>-<8 hex>``, so the run holding it is known from the id alone;
- its metrics: the points the client links to it (``log_model`` re-sends the run's
  points of the model's step with the model's id), kept in its record; the run's history
  keeps each point once.

A logged model therefore needs a source run: MLflow's ``log_model`` outside a run
(which creates a run-less model) is refused with a message saying to start a run.
Registering one (``model-versions/create`` with ``models:/<model id>``) pins its files
in driftline's registry (see ``registry``). Deleting one removes its record; its files
stay with its run (run artifacts are never deleted one by one).
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from driftline.core.artifacts import validate_artifact_path
from driftline.core.clock import now_ms
from driftline.core.paging import decode_token, encode_token
from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.server import deps
from driftline.server.mlflow._access import allow, experiment_by_id, run_by_id
from driftline.server.mlflow._filters import (
    Condition,
    check_order_by,
    evaluate,
    parse_conditions,
)
from driftline.server.mlflow._records import RECORDS_FOLDER, RunRecords
from driftline.server.mlflow._wire import (
    JsonBody,
    MlflowRoute,
    body_of,
    field_enum,
    field_int,
    field_list,
    field_str,
    field_strings,
    json_double,
    pairs,
)
from driftline.tracking import Run
from driftline.tracking.store import LoggedModelStore
from driftline.workspace import Workspace

__all__ = ["LoggedModels", "router"]

router = APIRouter(route_class=MlflowRoute)

_ID = re.compile(r"m-([0-9a-f]{32})-[0-9a-f]{8}")
_STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")
_KIND = "models"


class LoggedModels:
    """Logged models of one workspace, in the tracking stage's table (see the module
    docstring); records an older server kept with their runs are read into it on first
    use."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        store = ws.tracking.logged_models
        if store is None:  # pragma: no cover - the MLflow routes run on a server's database
            raise InvalidArgumentError("MLflow logged models need the server's database")
        self.store: LoggedModelStore = store
        self.records = RunRecords(ws)

    def create(
        self,
        run: Run,
        *,
        name: str,
        model_type: str,
        params: dict[str, str],
        tags: dict[str, str],
    ) -> dict[str, Any]:
        """A new PENDING logged model of ``run``."""
        clean = validate_artifact_path(name)
        if clean.split("/")[0] == RECORDS_FOLDER:
            raise InvalidArgumentError(f"Model name {name!r} is reserved; choose another name")
        suffix = secrets.token_hex(4)
        model_id = f"m-{run.id}-{suffix}"
        taken = {record.get("folder") for record in self._of_run(run)}
        folder = clean
        if clean in taken or self.ws.tracking.list_artifacts(run.id, clean):
            folder = f"{clean}-{suffix}"
        now = now_ms()
        record = {
            "model_id": model_id,
            "experiment_id": run.experiment_id,
            "name": name,
            "source_run_id": run.id,
            "folder": folder,
            "status": "LOGGED_MODEL_PENDING",
            "model_type": model_type,
            "creation_timestamp_ms": now,
            "last_updated_timestamp_ms": now,
            "tags": tags,
            "params": params,
        }
        self.store.add(record)
        return record

    def _of_run(self, run: Run) -> list[dict[str, Any]]:
        self._adopt([run])
        return [
            record
            for record in self.store.search([run.experiment_id])
            if record.get("source_run_id") == run.id
        ]

    def _adopt(self, runs: Iterable[Run]) -> None:
        """Read the records an older server kept with these runs into the table, once
        (a record deleted since keeps its row, so it never comes back)."""
        for run in runs:
            legacy = self.records.list(run, _KIND)
            ids = {str(record.get("model_id")) for record in legacy}
            known = self.store.known(ids)
            for record in legacy:
                if record.get("model_id") not in known:
                    self.store.add(record)

    def get(self, model_id: str) -> tuple[Run, dict[str, Any]]:
        """The run holding a logged model, and its record; ``NotFoundError`` otherwise."""
        record = self.store.find(model_id)
        match = _ID.fullmatch(model_id)
        run = None
        if match:
            with contextlib.suppress(NotFoundError):
                run = self.ws.tracking.get_run(match.group(1))
        if record is None and run is not None and not self.store.known([model_id]):
            self._adopt([run])
            record = self.store.find(model_id)
        if run is None or record is None:
            raise NotFoundError(f"Logged model with ID '{model_id}' not found")
        return run, record

    def update(
        self, run: Run, model_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        """Apply ``change`` to a record (stamped with the time of the change) in one
        transaction, so concurrent changes to one model never undo each other."""
        del run  # the id names the model; the run was looked up to authorize the caller

        def stamped(record: dict[str, Any]) -> dict[str, Any]:
            return {**change(record), "last_updated_timestamp_ms": now_ms()}

        written = self.store.update(model_id, stamped)
        if written is None:
            raise NotFoundError(f"Logged model with ID '{model_id}' not found")
        return written

    def delete(self, model_id: str) -> None:
        """Delete a logged model (its files stay with its run, as run artifacts do)."""
        if not self.store.delete(model_id, now_ms()):
            raise NotFoundError(f"Logged model with ID '{model_id}' not found")

    def add_metrics(
        self, model_id: str, run_id: str, points: list[tuple[str, float, int, int]]
    ) -> None:
        """Link metric points (``key, value, step, timestamp``) of ``run_id`` to a model."""

        def linked(record: dict[str, Any]) -> dict[str, Any]:
            metrics = list(record.get("metrics", []))
            for key, value, step, timestamp in points:
                point = {"key": key, "value": value, "step": step, "timestamp": timestamp}
                if {**point, "run_id": run_id} not in metrics:
                    metrics.append({**point, "run_id": run_id})
            return {**record, "metrics": metrics}

        run, _record = self.get(model_id)
        self.update(run, model_id, linked)

    def search(self, experiment_ids: list[str]) -> list[dict[str, Any]]:
        """Every logged model of these experiments."""
        self._adopt(self.records.runs_with(_KIND, experiment_ids))
        return self.store.search(experiment_ids)

    def files(self, record: dict[str, Any]) -> tuple[str, str]:
        """``(run id, folder)`` where a logged model's files are."""
        return str(record["source_run_id"]), str(record["folder"])


def artifact_uri(record: dict[str, Any]) -> str:
    """Where the client uploads and downloads a logged model's files."""
    return (
        f"mlflow-artifacts:/{record['experiment_id']}/{record['source_run_id']}"
        f"/artifacts/{record['folder']}"
    )


def model_json(record: dict[str, Any]) -> dict[str, Any]:
    """An MLflow ``LoggedModel`` message."""
    info = {
        key: record[key]
        for key in (
            "model_id",
            "experiment_id",
            "name",
            "creation_timestamp_ms",
            "last_updated_timestamp_ms",
            "status",
            "model_type",
            "source_run_id",
        )
    }
    info["artifact_uri"] = artifact_uri(record)
    if record.get("status_message"):
        info["status_message"] = record["status_message"]
    info["tags"] = [{"key": k, "value": v} for k, v in sorted(record["tags"].items())]
    params = [{"key": k, "value": v} for k, v in sorted(record["params"].items())]
    metrics = [
        {**m, "value": json_double(m["value"]), "model_id": record["model_id"]}
        for m in record.get("metrics", [])
    ]
    return {"info": info, "data": {"params": params, "metrics": metrics}}


@router.post("/logged-models")
def create_logged_model(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Create a PENDING logged model of ``source_run_id``: ``{"model"}``."""
    fields = body_of(body)
    ws = deps.workspace(request)
    run_id = field_str(fields, "source_run_id")
    if not run_id:
        raise InvalidArgumentError(
            "driftline keeps a logged model with the run that logs it: call log_model "
            "inside mlflow.start_run() (source_run_id is required)"
        )
    run = run_by_id(ws, run_id)
    experiment = experiment_by_id(ws, field_str(fields, "experiment_id", required=True))
    if experiment.id != run.experiment_id:
        raise InvalidArgumentError(
            f"Run {run.id} belongs to experiment {run.experiment_id}, not {experiment.id}"
        )
    allow(request, "edit", experiment_name=experiment.name)
    record = LoggedModels(ws).create(
        run,
        name=field_str(fields, "name", default="model"),
        model_type=field_str(fields, "model_type"),
        params=pairs(fields, "params"),
        tags=pairs(fields, "tags"),
    )
    return {"model": model_json(record)}


@router.get("/logged-models/{model_id}")
def get_logged_model(request: Request, model_id: str) -> dict[str, Any]:
    """``{"model"}``; ``RESOURCE_DOES_NOT_EXIST`` for an unknown id."""
    deps.authorize(request, "read")
    _, record = LoggedModels(deps.workspace(request)).get(model_id)
    return {"model": model_json(record)}


@router.delete("/logged-models/{model_id}")
def delete_logged_model(request: Request, model_id: str) -> dict[str, Any]:
    """Delete a logged model; ``RESOURCE_DOES_NOT_EXIST`` for an unknown id."""
    models, _run, _record = _editable(request, model_id)
    models.delete(model_id)
    return {}


def _editable(request: Request, model_id: str) -> tuple[LoggedModels, Run, dict[str, Any]]:
    models = LoggedModels(deps.workspace(request))
    run, record = models.get(model_id)
    allow(request, "edit", experiment_id=run.experiment_id)
    return models, run, record


@router.patch("/logged-models/{model_id}")
def finalize_logged_model(request: Request, model_id: str, body: JsonBody = None) -> dict[str, Any]:
    """Set the status (READY once the files are uploaded, or UPLOAD_FAILED)."""
    fields = body_of(body)
    status = field_enum(fields, "status", _STATUSES)
    if not status:
        raise InvalidArgumentError("Missing value for required parameter 'status'")
    models, run, _record = _editable(request, model_id)
    record = models.update(run, model_id, lambda record: {**record, "status": status})
    return {"model": model_json(record)}


@router.patch("/logged-models/{model_id}/tags")
def set_logged_model_tags(request: Request, model_id: str, body: JsonBody = None) -> dict[str, Any]:
    """Set tags of a logged model (existing keys are replaced)."""
    tags = pairs(body_of(body), "tags")
    models, run, _record = _editable(request, model_id)
    record = models.update(
        run, model_id, lambda record: {**record, "tags": {**record["tags"], **tags}}
    )
    return {"model": model_json(record)}


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}")
def delete_logged_model_tag(request: Request, model_id: str, tag_key: str) -> dict[str, Any]:
    """Remove a tag of a logged model."""
    models, run, _record = _editable(request, model_id)

    def without(record: dict[str, Any]) -> dict[str, Any]:
        if tag_key not in record["tags"]:
            raise NotFoundError(f"Logged model {model_id} has no tag {tag_key!r}")
        return {**record, "tags": {k: v for k, v in record["tags"].items() if k != tag_key}}

    models.update(run, model_id, without)
    return {}


@router.post("/logged-models/{model_id}/params")
def log_logged_model_params(
    request: Request, model_id: str, body: JsonBody = None
) -> dict[str, Any]:
    """Add params to a logged model."""
    params = pairs(body_of(body), "params")
    models, run, _record = _editable(request, model_id)
    models.update(
        run, model_id, lambda record: {**record, "params": {**record["params"], **params}}
    )
    return {}


@router.post("/logged-models/search")
def search_logged_models(request: Request, body: JsonBody = None) -> dict[str, Any]:
    """Logged models of ``experiment_ids`` matching ``filter``, ordered and paged."""
    deps.authorize(request, "read")
    fields = body_of(body)
    ws = deps.workspace(request)
    experiment_ids = []
    for value in field_strings(fields, "experiment_ids"):
        try:
            experiment_ids.append(experiment_by_id(ws, value).id)
        except NotFoundError:
            continue
    text = field_str(fields, "filter")
    conditions = parse_conditions(text)
    if field_list(fields, "datasets"):
        raise InvalidArgumentError(
            "driftline does not link metrics of logged models to datasets; filter without datasets"
        )
    max_results = field_int(fields, "max_results", default=100)
    assert max_results is not None
    if max_results < 1:
        raise InvalidArgumentError("max_results must be a positive number")
    order_by = check_order_by(field_list(fields, "order_by"))
    models = LoggedModels(ws).search(experiment_ids) if experiment_ids else []
    matched = [m for m in models if evaluate(conditions, partial(_field, m))]
    matched = _ordered(matched, order_by)
    fingerprint = {"kind": "mlflow-logged-models", "e": experiment_ids, "f": text, "o": order_by}
    offset = decode_token(field_str(fields, "page_token") or None, fingerprint)
    result: dict[str, Any] = {
        "models": [model_json(m) for m in matched[offset : offset + max_results]]
    }
    if offset + max_results < len(matched):
        result["next_page_token"] = encode_token(offset + max_results, fingerprint)
    return result


_ATTRIBUTES = {
    "name": "name",
    "model_id": "model_id",
    "model_type": "model_type",
    "status": "status",
    "source_run_id": "source_run_id",
    "experiment_id": "experiment_id",
    "creation_timestamp": "creation_timestamp_ms",
    "creation_time": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
}


def _field(record: dict[str, Any], condition: Condition) -> Any:
    prefix = condition.prefix
    if prefix in ("tag", "tags"):
        return record["tags"].get(condition.key)
    if prefix in ("param", "params"):
        return record["params"].get(condition.key)
    if prefix in ("metric", "metrics"):
        # The latest linked value: highest step, then latest time.
        points = [m for m in record.get("metrics", []) if m["key"] == condition.key]
        latest = max(points, key=lambda m: (m["step"], m["timestamp"]), default=None)
        return None if latest is None else latest["value"]
    if prefix not in (None, "attribute", "attributes"):
        raise InvalidArgumentError(f"Unknown field prefix {prefix!r} in a logged-model filter")
    key = _ATTRIBUTES.get(condition.key.removesuffix("_ms"))
    if key is None:
        raise InvalidArgumentError(
            f"Unknown logged-model attribute {condition.key!r}; known: {', '.join(_ATTRIBUTES)}"
        )
    return record.get(key)


def _ordered(models: list[dict[str, Any]], order_by: list[Any]) -> list[dict[str, Any]]:
    """Sort by the terms, last term first (stable sorts compose); newest first by default."""
    result = sorted(models, key=lambda m: (m["creation_timestamp_ms"], m["model_id"]), reverse=True)
    for term in reversed(order_by):
        if not isinstance(term, dict):
            raise InvalidArgumentError("Each order_by must be an object with field_name")
        name = field_str(term, "field_name", required=True)
        key = _ATTRIBUTES.get(name.removeprefix("attributes.").removesuffix("_ms"))
        if key is None:
            raise InvalidArgumentError(f"Cannot order logged models by {name!r}")
        result.sort(key=partial(_sort_value, key), reverse=term.get("ascending", True) is False)
    return result


def _sort_value(key: str, model: dict[str, Any]) -> Any:
    """A logged model's value of ``key`` for ordering (times numeric, the rest as text)."""
    if key.endswith("_ms"):
        return model.get(key) or 0
    return str(model.get(key))
