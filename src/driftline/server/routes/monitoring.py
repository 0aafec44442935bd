"""REST routes: monitors and alerts (``/api/v1/monitoring/...``).

A monitor is authorized as its deployment's model (a deployment is named after the model
it serves unless told otherwise): reading monitors, their history and alerts needs
``read`` on that model, creating, running and deleting them ``edit``. Lists show only
what the caller may read. Runs happen on the server, next to the prediction log.

A deployment's labels are ingested with ``edit`` on its model, in bulk: a JSON body
(``{"labels": [{"request_id": ..., "label": ...}, ...]}``), an Arrow IPC stream or a
Parquet file, at most the server's body limit (413 beyond). Its performance and checks
are computed on the server with ``read``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse

from driftline.api.monitoring import (
    LABEL_TYPES,
    CheckBody,
    MonitorBody,
    PerformanceBody,
    RunBody,
)
from driftline.core.clock import from_ms
from driftline.core.values import MAX_MS, MIN_MS
from driftline.errors import InvalidArgumentError
from driftline.monitoring.monitor_models import Monitor, check_name
from driftline.server.deps import Action, allows, authorize, workspace

router = APIRouter(prefix="/monitoring", tags=["monitoring"])

Since = Annotated[
    int | None, Query(ge=MIN_MS, le=MAX_MS, description="Epoch ms: only from this time on")
]
Limit = Annotated[int | None, Query(ge=1, le=1_000_000, description="At most this many")]
Filter = Annotated[str | None, Query(max_length=512)]


def _monitors(request: Request) -> Any:
    from driftline.monitoring import service_for

    return service_for(workspace(request)).monitors


def _monitor(request: Request, name: str, action: Action) -> Monitor:
    check_name(name)
    monitor: Monitor = _monitors(request).get(name)
    authorize(request, action, model=monitor.deployment)
    return monitor


def _time(ms: int | None) -> Any:
    return None if ms is None else from_ms(ms)


def _service(request: Request) -> Any:
    from driftline.monitoring import service_for

    return service_for(workspace(request))


def _since(value: str | int) -> Any:
    return from_ms(value) if isinstance(value, int) else value


def _options(kind: type[Any], body: PerformanceBody | CheckBody, **converted: Any) -> Any:
    """The options object ``kind`` of a request body: the body's fields are the options'
    (the wire names them alike), times as epoch milliseconds become datetimes and
    ``converted`` gives the fields whose wire form differs."""
    fields = body.model_dump()
    fields.update(since=_since(body.since), until=_time(body.until), **converted)
    return kind(**fields)


_LABEL_RECORD = {
    "type": "object",
    "required": ["request_id", "label"],
    "properties": {
        "request_id": {"type": "string", "maxLength": 128},
        "label": {"type": ["number", "boolean", "string"]},
        "row": {"type": "integer", "minimum": 0},
        "time": {"type": "string", "format": "date-time"},
    },
}
_LABEL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["labels"],
                    "properties": {"labels": {"type": "array", "items": _LABEL_RECORD}},
                }
            },
            "application/vnd.apache.arrow.stream": {
                "schema": {"type": "string", "format": "binary"}
            },
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/labels/{deployment}",
    summary="Ingest labels of a deployment's requests",
    openapi_extra=_LABEL_BODY,
)
async def ingest_labels(request: Request, deployment: str) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    from driftline.monitoring.labels import read_label_body

    check_name(deployment, "deployment")
    authorize(request, "edit", model=deployment)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in LABEL_TYPES:
        raise InvalidArgumentError(
            f"Send labels as {', '.join(LABEL_TYPES)}, not {kind or 'no content type'!r}"
        )
    body = await request.body()
    table = await run_in_threadpool(read_label_body, body, LABEL_TYPES[kind])
    result = await run_in_threadpool(_service(request).log_labels, deployment, table)
    out: dict[str, Any] = result.to_dict()
    return out


@router.post("/performance/{deployment}", summary="Realized and estimated performance")
def performance(request: Request, deployment: str, body: PerformanceBody) -> dict[str, Any]:
    from driftline.monitoring.options import PerformanceOptions

    check_name(deployment, "deployment")
    authorize(request, "read", model=deployment)
    options = _options(PerformanceOptions, body)
    report = _service(request).performance(deployment, options)
    out: dict[str, Any] = report.to_dict()
    return out


@router.post("/check/{deployment}", summary="Drift, quality and performance per window")
def check(request: Request, deployment: str, body: CheckBody) -> dict[str, Any]:
    from driftline.monitoring.options import CheckOptions, drift_thresholds
    from driftline.monitoring.quality import QualityThresholds

    check_name(deployment, "deployment")
    authorize(request, "read", model=deployment)
    quality = None
    if body.quality is not None:
        try:
            quality = QualityThresholds(**body.quality)
        except TypeError as exc:
            raise InvalidArgumentError(f"Unknown threshold in quality: {exc}") from None
    options = _options(
        CheckOptions, body,
        checks=tuple(body.checks), thresholds=drift_thresholds(body.thresholds), quality=quality,
    )  # fmt: skip
    result = _service(request).check(deployment, options)
    out: dict[str, Any] = result.to_dict()
    return out


@router.get("/monitors", summary="Every monitor the caller may read")
def list_monitors(request: Request) -> dict[str, Any]:
    found = _monitors(request).list_monitors()
    return {"monitors": [m.to_dict() for m in found if allows(request, "read", model=m.deployment)]}


@router.post("/monitors", summary="Create (or replace) a monitor", status_code=201)
def create_monitor(request: Request, body: MonitorBody) -> dict[str, Any]:
    check_name(body.deployment, "deployment")
    authorize(request, "edit", model=body.deployment)
    monitor = _monitors(request).create(
        body.name,
        deployment=body.deployment,
        window=body.window,
        checks=body.checks,
        alerts=body.alerts,
        cooldown=body.cooldown,
        reference=body.reference,
        thresholds=body.thresholds,
        replace=body.replace,
    )
    return {"monitor": monitor.to_dict()}


@router.get("/monitors/{name}", summary="One monitor")
def get_monitor(request: Request, name: str) -> dict[str, Any]:
    return {"monitor": _monitor(request, name, "read").to_dict()}


@router.delete("/monitors/{name}", summary="Remove a monitor (history and alerts stay)")
def delete_monitor(request: Request, name: str) -> dict[str, Any]:
    _monitor(request, name, "edit")
    _monitors(request).delete(name)
    return {"deleted": name}


@router.post("/monitors/{name}/run", summary="Evaluate a window now; raise and deliver alerts")
def run_monitor(request: Request, name: str, body: RunBody | None = None) -> dict[str, Any]:
    _monitor(request, name, "edit")
    result = _monitors(request).run(name, at=_time(body.at if body else None))
    out: dict[str, Any] = result.to_dict()
    return out


@router.get("/monitors/{name}/history", summary="A monitor's evaluations, oldest first")
def history(request: Request, name: str, since: Since = None, limit: Limit = None) -> Any:
    _monitor(request, name, "read")
    found = _monitors(request).history(name, since=_time(since), limit=limit)
    return {"evaluations": [e.to_dict() for e in found]}


@router.get("/monitors/{name}/series", summary="A monitor's figures as a time series")
def series(
    request: Request,
    name: str,
    check: Filter = None,
    column: Filter = None,
    metric: Filter = None,
    since: Since = None,
) -> dict[str, Any]:
    _monitor(request, name, "read")
    found = _monitors(request).series(
        name, check=check, column=column, metric=metric, since=_time(since)
    )
    return {"figures": [f.to_dict() for f in found]}


@router.get(
    "/monitors/{name}/report", summary="The over-time HTML report", response_class=HTMLResponse
)
def report(request: Request, name: str, since: Since = None) -> HTMLResponse:
    _monitor(request, name, "read")
    return HTMLResponse(_monitors(request).report(name, since=_time(since)))


@router.get("/status", summary="Every readable monitor with its latest evaluation")
def status(request: Request) -> dict[str, Any]:
    rows = _monitors(request).status()
    return {
        "monitors": [
            {"monitor": m.to_dict(), "latest": e.to_dict() if e else None}
            for m, e in rows
            if allows(request, "read", model=m.deployment)
        ]
    }


@router.get("/alerts", summary="Alerts raised since a time, oldest first")
def alerts(
    request: Request,
    since: Since = None,
    monitor: Filter = None,
    severity: Filter = None,
    limit: Limit = None,
) -> dict[str, Any]:
    if monitor is not None:
        _monitor(request, monitor, "read")
    found = _monitors(request).alerts(
        since=_time(since), monitor=monitor, severity=severity, limit=limit
    )
    return {"alerts": [a.to_dict() for a in found if allows(request, "read", model=a.deployment)]}
