"""REST routes: deployments (``/api/v1/deployments/...``), the serving stage's records.

The routes call :class:`~driftline.serving.deployments.DeploymentService` as the caller
(``deps.actor``), so the audit log names who applied, paused or rolled back. The body of
``PUT /deployments`` is the structure of a ``deploy.yaml`` as JSON, checked by the same
rules (a bad field is a 400 naming it; a canary failing the spec's gates a 409).

Reading needs ``read`` on the deployment's model; applying, pausing, resuming and
rolling back need ``manage`` on it (the role that may move its aliases).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Query
from starlette.requests import Request

from driftline.api.codec import encode
from driftline.errors import InvalidArgumentError
from driftline.server.deps import actor, authorize, workspace
from driftline.serving import Deployment, DeploymentService

router = APIRouter(prefix="/deployments", tags=["deployments"])


def _service(request: Request) -> DeploymentService:
    service = workspace(request).service("serving", DeploymentService)
    return service.acting_as(actor(request))


def _readable(request: Request, name: str) -> Deployment:
    found = _service(request).get_deployment(name)  # NotFoundError names near ones
    authorize(request, "read", model=found.spec.model)
    return found


def _manageable(request: Request, name: str) -> DeploymentService:
    service = _service(request)
    authorize(request, "manage", model=service.get_deployment(name).spec.model)
    return service


@router.get("", summary="Every deployment, by name")
def list_deployments(request: Request) -> dict[str, Any]:
    authorize(request, "read")
    return {"deployments": encode(_service(request).list_deployments())}


@router.put("", summary="Create or update a deployment from its spec (deploy.yaml as JSON)")
def apply(request: Request, spec: dict[str, Any] = Body(...)) -> Any:  # noqa: B008
    model = spec.get("model")
    if not isinstance(model, str):
        raise InvalidArgumentError("'model' is required (the registered model's name)")
    authorize(request, "manage", model=model)
    return encode(_service(request).apply(spec))


@router.get("/{name}", summary="One deployment record")
def get_deployment(request: Request, name: str) -> Any:
    return encode(_readable(request, name))


@router.get("/{name}/status", summary="State, weights and live figures per variant")
def status(request: Request, name: str, window: float = Query(300.0, gt=0, le=30 * 86400)) -> Any:
    _readable(request, name)
    return _service(request).status(name, window=window)


@router.get("/{name}/history", summary="The deployment's audit entries, newest first")
def history(request: Request, name: str, limit: int = Query(100, ge=1, le=10_000)) -> Any:
    _readable(request, name)
    return {"entries": encode(_service(request).history(name, limit=limit))}


@router.get("/{name}/compare", summary="Variants compared over the prediction log")
def compare(
    request: Request, name: str, since: datetime | None = None, until: datetime | None = None
) -> Any:
    _readable(request, name)
    return _service(request).compare(name, since=since, until=until)


@router.post("/{name}/pause", summary="Freeze a progressing rollout")
def pause(request: Request, name: str) -> Any:
    return encode(_manageable(request, name).pause(name))


@router.post("/{name}/resume", summary="Resume a paused rollout")
def resume(request: Request, name: str) -> Any:
    return encode(_manageable(request, name).resume(name))


@router.post("/{name}/rollback", summary="Take the canary out of traffic (or undo a promotion)")
def rollback(request: Request, name: str, reason: str | None = None) -> Any:
    return encode(_manageable(request, name).rollback(name, reason=reason))
