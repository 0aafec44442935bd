"""REST routes: deployments (``/api/v1/deployments/...``), the serving stage's records.

The routes call :class:`~driftline.serving.deployments.DeploymentService` as the caller
(``deps.actor``), so the audit log names who applied, paused or rolled back. The body of
``PUT /deployments`` is the structure of a ``deploy.yaml`` as JSON, checked by the same
rules (a bad field is a 400 naming it; a canary failing the spec's gates a 409).

Reading needs ``read`` on the deployment's model; applying, pausing, resuming and
rolling back need ``manage`` on it (the role that may move its aliases).

``PUT /deployments/{name}/record`` is the store operation a remote workspace's
:class:`~driftline.serving._http.HttpDeploymentStore` sends (a client's service applied
the rules; serving processes drive rollouts through it): a compare-and-set on the
record's generation. The server re-checks the spec with the same parser, its new alert
webhooks against the server's ``webhook_allow`` setting, the step against the canary's
steps and the audit action against the known ones.
``POST /deployments/{name}/notes`` appends an audit entry about a deployment without
changing it (a rollout notification its alert channels did not get).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Query
from starlette.requests import Request

from driftline.api.codec import decode, encode
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


ACTIONS = frozenset(
    {"deploy_apply", "deploy_step", "deploy_check_failed", "deploy_promote",
     "deploy_rollback", "deploy_pause", "deploy_resume"}
)  # fmt: skip


@router.put("/{name}/record", summary="Store a record (compare-and-set on its generation)")
def save_record(request: Request, name: str, body: dict[str, Any] = Body(...)) -> Any:  # noqa: B008
    from driftline.serving.spec import spec_from_dict, spec_to_dict

    unknown = set(body) - {"deployment", "expected", "action", "details"}
    if unknown:
        raise InvalidArgumentError(f"Unknown field(s): {', '.join(sorted(unknown))}")
    record = decode(Deployment, body.get("deployment"))
    if record.name != name:
        raise InvalidArgumentError(f"The record is {record.name!r}, the path {name!r}")
    if spec_from_dict(spec_to_dict(record.spec)) != record.spec:
        raise InvalidArgumentError("The record's spec does not read back as a deploy.yaml")
    steps = record.spec.canary.steps if record.spec.canary else ()
    if record.rollout.step < 0 or (steps and record.rollout.step >= len(steps)):
        raise InvalidArgumentError(f"step {record.rollout.step} is not a step of the canary")
    expected, action, details = body.get("expected"), body.get("action"), body.get("details")
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
        raise InvalidArgumentError("'expected' is a generation number or null")
    if action is not None and action not in ACTIONS:
        raise InvalidArgumentError(
            f"Unknown action {action!r}; known: {', '.join(sorted(ACTIONS))}"
        )
    if details is not None and not isinstance(details, dict):
        raise InvalidArgumentError("'details' is an object or null")
    service = _service(request)
    authorize(request, "manage", model=record.spec.model)
    existing = service.store.find_deployment(name)
    if existing is not None and existing.spec.model != record.spec.model:
        authorize(request, "manage", model=existing.spec.model)
    # The server's webhook_allow, not the client's that applied the rules.
    service.check_alerts(record.spec, existing.spec if existing is not None else None)
    saved = service.store.save_deployment(
        record, expected=expected, actor=actor(request), action=action, details=details
    )
    return encode(saved)


#: What a note may record (see ``DeploymentService``'s notifications).
NOTE_ACTIONS = frozenset({"deploy_notify_failed"})


@router.post("/{name}/notes", summary="Append an audit entry about a deployment", status_code=204)
def add_note(request: Request, name: str, body: dict[str, Any] = Body(...)) -> None:  # noqa: B008
    unknown = set(body) - {"action", "details"}
    if unknown:
        raise InvalidArgumentError(f"Unknown field(s): {', '.join(sorted(unknown))}")
    action, details = body.get("action"), body.get("details")
    if action not in NOTE_ACTIONS:
        raise InvalidArgumentError(
            f"Unknown action {action!r}; known: {', '.join(sorted(NOTE_ACTIONS))}"
        )
    if not isinstance(details, dict):
        raise InvalidArgumentError("'details' is an object")
    service = _manageable(request, name)
    service.store.note(name, actor=actor(request), action=action, details=details)


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
