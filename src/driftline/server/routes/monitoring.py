"""REST routes: monitors and alerts (``/api/v1/monitoring/...``).

A monitor is authorized as its deployment's model (a deployment is named after the model
it serves unless told otherwise): reading monitors, their history and alerts needs
``read`` on that model, creating, running and deleting them ``edit``. Lists show only
what the caller may read. Runs happen on the server, next to the prediction log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse

from driftline.api.monitoring import MonitorBody, RunBody
from driftline.core.clock import from_ms
from driftline.core.values import MAX_MS, MIN_MS
from driftline.errors import PermissionDeniedError
from driftline.monitoring.monitor_models import Monitor, check_name
from driftline.server.deps import Action, authorize, workspace

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


def _may_read(request: Request, deployment: str) -> bool:
    try:
        authorize(request, "read", model=deployment)
    except PermissionDeniedError:
        return False
    return True


def _time(ms: int | None) -> Any:
    return None if ms is None else from_ms(ms)


@router.get("/monitors", summary="Every monitor the caller may read")
def list_monitors(request: Request) -> dict[str, Any]:
    found = _monitors(request).list_monitors()
    return {"monitors": [m.to_dict() for m in found if _may_read(request, m.deployment)]}


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
            if _may_read(request, m.deployment)
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
    return {"alerts": [a.to_dict() for a in found if _may_read(request, a.deployment)]}
