"""REST routes: the model registry (``/api/v1/registry/...``), the RegistryStore over HTTP.

Models, versions, aliases, evaluations, approvals and approval policies, addressed by
model name; records go out encoded by :mod:`driftline.api.codec`. Handlers translate
the wire format to calls of the server's registry service, which applies its rules to
every input (a client may not be the SDK):

- who acts (version creator, alias mover, approver, audit actor) is the caller
  (``deps.actor``), never a field of the body;
- a version's package manifest must be in the server's artifact store, its run must exist;
- an alias with an approval policy cannot be ``set`` directly, and a ``promote`` move
  needs the approvals the policy asks for;
- alias moves are compare-and-set (``expected``): a stale one is a 409 ``CONFLICT``.

Reading needs ``read`` on the model, changing models and versions ``edit``, and moving
aliases, approving and setting policies ``manage``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.requests import Request

from driftline.api.codec import encode
from driftline.api.registry import (
    ANY_HOLDER_WIRE,
    AliasMoveBody,
    ApprovalBody,
    EvaluationBody,
    ModelBody,
    ModelUpdateBody,
    ModelVersionBody,
    PolicyBody,
    restore_non_finite,
)
from driftline.api.text import INT32_MAX, has_nul
from driftline.core.clock import utcnow
from driftline.errors import InvalidArgumentError
from driftline.registry import Evaluation, RegistryService
from driftline.registry.service import check_model_name
from driftline.registry.store import ANY_HOLDER
from driftline.server.deps import Action, actor, authorize, workspace

router = APIRouter(prefix="/registry", tags=["registry"])

VersionPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="Version number")]
_MAX_ALIAS = 128


def _registry(request: Request) -> RegistryService:
    return workspace(request).registry


def _model(request: Request, name: str, action: Action) -> str:
    """Check the name's form, then the caller's permission on that model."""
    check_model_name(name)
    authorize(request, action, model=name)
    return name


def _plausible_alias(alias: str | None) -> bool:
    """Whether a looked-up alias could exist (lookups of impossible ones find nothing)."""
    return alias is None or (len(alias) <= _MAX_ALIAS and not has_nul(alias))


# -- models ---------------------------------------------------------------------------


@router.get("/models", summary="Every registered model with its aliases and latest version")
def list_models(request: Request) -> dict[str, Any]:
    authorize(request, "read")
    return {"models": encode(_registry(request).list_models())}


@router.get("/models/{name}", summary="One registered model")
def get_model(request: Request, name: str) -> Any:
    _model(request, name, "read")
    return encode(_registry(request).get_model(name))  # NotFoundError names near ones


@router.put("/models/{name}", summary="The registered model, created (and audited) if missing")
def ensure_model(request: Request, name: str, body: ModelBody | None = None) -> Any:
    _model(request, name, "edit")
    description = None if body is None else body.description
    registry = _registry(request)
    return encode(registry.ensure_model(name, description=description, actor=actor(request)))


@router.patch("/models/{name}", summary="Set a model's description and tags (audited)")
def update_model(request: Request, name: str, body: ModelUpdateBody) -> Any:
    _model(request, name, "edit")
    model = _registry(request).update_model(
        name, description=body.description, tags=body.tags, actor=actor(request)
    )
    return encode(model)


# -- versions -------------------------------------------------------------------------


@router.get("/models/{name}/versions", summary="Every version of a model, newest first")
def list_versions(request: Request, name: str) -> dict[str, Any]:
    _model(request, name, "read")
    return {"versions": encode(_registry(request).list_versions(name))}


@router.post("/models/{name}/versions", summary="Record the next version of a model")
def add_version(request: Request, name: str, body: ModelVersionBody) -> Any:
    """The package manifest (``package_digest``) must be uploaded first, and be a model
    package whose paths all stay inside the folder it is loaded into."""
    _model(request, name, "edit")
    if body.run_id is not None and has_nul(body.run_id):
        raise InvalidArgumentError("A run id must not contain NUL characters")
    fields = body.model_dump()
    return encode(_registry(request).record_version(name, fields, actor=actor(request)))


@router.get(
    "/models/{name}/versions/find",
    summary="A version by number or alias (else the latest), or null",
)
def find_version(
    request: Request,
    name: str,
    version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    alias: Annotated[str | None, Query(max_length=_MAX_ALIAS)] = None,
) -> dict[str, Any]:
    _model(request, name, "read")
    if not _plausible_alias(alias):
        return {"version": None}
    found = _registry(request).find_version(name, version, alias=alias)
    return {"version": None if found is None else encode(found)}


@router.get("/models/{name}/versions/{version}", summary="One version by number")
def get_version(request: Request, name: str, version: VersionPath) -> Any:
    _model(request, name, "read")
    return encode(_registry(request).get_version(f"{name}/{version}"))


# -- aliases --------------------------------------------------------------------------


@router.post(
    "/models/{name}/aliases/{alias}",
    summary="Move an alias if it still points at `expected` (compare-and-set)",
)
def move_alias(request: Request, name: str, alias: str, body: AliasMoveBody) -> Any:
    """``version: null`` with reason ``delete`` removes the alias. 409 ``CONFLICT`` if the
    alias does not point at ``expected`` (``"*"``: move whatever it points at)."""
    _model(request, name, "manage")
    expected = ANY_HOLDER if body.expected == ANY_HOLDER_WIRE else body.expected
    move = _registry(request).move_alias(
        name,
        alias,
        body.version,
        expected=expected,
        reason=body.reason,
        details=None if body.details is None else restore_non_finite(body.details),
        actor=actor(request),
    )
    return encode(move)


@router.get("/models/{name}/alias-history", summary="Alias moves, newest first")
def alias_history(
    request: Request,
    name: str,
    alias: Annotated[str | None, Query(max_length=_MAX_ALIAS)] = None,
) -> dict[str, Any]:
    _model(request, name, "read")
    if not _plausible_alias(alias):
        return {"moves": []}
    return {"moves": encode(_registry(request).alias_moves(name, alias))}


# -- evaluations and approvals ----------------------------------------------------------


@router.post("/models/{name}/versions/{version}/evaluations", summary="Store an evaluation")
def add_evaluation(request: Request, name: str, version: VersionPath, body: EvaluationBody) -> Any:
    _model(request, name, "edit")
    evaluation = Evaluation(
        id=body.id,
        name=name,
        version=version,
        dataset=body.dataset,
        target=body.target,
        task=body.task,
        rows=body.rows,
        metrics=restore_non_finite(body.metrics),
        slices=restore_non_finite(body.slices),
        created_at=utcnow(),
    )
    return encode(_registry(request).record_evaluation(evaluation))


@router.get("/models/{name}/versions/{version}/evaluations", summary="Evaluations, newest first")
def list_evaluations(request: Request, name: str, version: VersionPath) -> dict[str, Any]:
    _model(request, name, "read")
    return {"evaluations": encode(_registry(request).evaluations(name, version))}


@router.post(
    "/models/{name}/versions/{version}/approvals",
    summary="Approve a version for an alias, as the caller",
)
def add_approval(request: Request, name: str, version: VersionPath, body: ApprovalBody) -> Any:
    """409 ``ALREADY_EXISTS`` if the caller approved this version for this alias before."""
    _model(request, name, "manage")
    approval = _registry(request).approve(
        name, version, body.alias, comment=body.comment, actor=actor(request)
    )
    return encode(approval)


@router.get("/models/{name}/versions/{version}/approvals", summary="Approvals of a version")
def list_approvals(
    request: Request,
    name: str,
    version: VersionPath,
    alias: Annotated[str | None, Query(max_length=_MAX_ALIAS)] = None,
) -> dict[str, Any]:
    _model(request, name, "read")
    if not _plausible_alias(alias):
        return {"approvals": []}
    return {"approvals": encode(_registry(request).approvals(name, version, alias))}


# -- approval policies ----------------------------------------------------------------


@router.get("/policies/{alias}", summary="Approvals an alias requires (0: no policy)")
def get_policy(request: Request, alias: str) -> dict[str, Any]:
    authorize(request, "read")
    return {"alias": alias, "required": _registry(request).policy(alias)}


@router.put("/policies/{alias}", summary="Require approvals before a version takes an alias")
def set_policy(request: Request, alias: str, body: PolicyBody) -> dict[str, Any]:
    authorize(request, "manage")
    _registry(request).set_policy(alias, body.required, actor=actor(request))
    return {"alias": alias, "required": body.required}
