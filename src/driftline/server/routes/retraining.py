"""REST routes: retraining policies and cycles, trace and maturity (``/api/v1/retraining``).

- ``PUT /retraining/policies``: apply a policy, as ``retrain.yaml`` text or as its
  structure (:class:`~driftline.api.retraining.ApplyPolicyBody`). The server checks it
  as ``driftline retrain apply`` does (errors name the field and line), except its
  pipeline: the server does not import pipeline code, so clients check it next to the
  code (see :mod:`driftline.retraining._http`), as for schedules and triggers.
- ``GET /retraining/models/{model}/policy``, ``.../status``, ``.../history`` and
  ``GET /retraining/cycles/{id}``: the policy and cycles; a cycle awaiting approval
  says who approved and who else may: by name to a caller who may approve too
  (``manage`` on the model), else how many (see :mod:`driftline.retraining.approvers`).
- ``POST /retraining/models/{model}/run``: a manual trigger. It only asks for the
  cycle (deduplicated as every trigger is); ``driftline agent`` beside the server
  drives it.
- ``GET /retraining/trace/{request_id}`` and ``GET /retraining/maturity``: lineage of
  a request in the server's prediction log (``?deployment=``, and ``?days=`` for how far
  back an id without a day of its own is looked for, see ``RetrainingService.trace``),
  and each model's maturity level.

Applying a policy and triggering a cycle need ``manage`` on the model (the permission
that moves its aliases, which a cycle ends up doing); reading needs ``read``. Who acts
is the caller (``deps.actor``): the audit log names who applied or triggered.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request

from driftline.api.codec import encode
from driftline.api.retraining import ApplyPolicyBody, RunBody
from driftline.api.text import Name
from driftline.errors import InvalidArgumentError
from driftline.retraining import MAX_TRACE_DAYS, TRACE_DAYS
from driftline.server.deps import actor, allows, authorize, workspace

if TYPE_CHECKING:
    from driftline.retraining.loop import Retrainer
    from driftline.retraining.service import RetrainingService

router = APIRouter(prefix="/retraining", tags=["retraining"])

#: A dotted module name (what a server lets its agent import for a policy's pipeline).
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

Limit = Annotated[int, Query(ge=1, le=10_000, description="How many, newest first")]


def _service(request: Request) -> RetrainingService:
    from driftline.retraining import service_for

    return service_for(workspace(request))


def _cycles(request: Request) -> Retrainer:
    return _service(request).cycles.acting_as(
        actor(request), approves=lambda model: allows(request, "manage", model=model)
    )


@router.put("/policies", summary="Apply a retraining policy (retrain.yaml text or its structure)")
def apply_policy(request: Request, body: ApplyPolicyBody) -> dict[str, Any]:
    from driftline.retraining.policy import parse_policy, policy_from_dict

    # Parsed first: who may apply it depends on the model it is for.
    if body.text is not None:
        policy = parse_policy(body.text, source=body.source)
    else:
        assert body.policy is not None  # the body allows exactly one of the two
        policy = policy_from_dict(body.policy)
    authorize(request, "manage", model=policy.model)
    module = policy.pipeline.module
    if module is not None and not _MODULE.fullmatch(module):
        # The agent beside the server imports it: a dotted module name on its path,
        # never a file a caller points at.
        raise InvalidArgumentError(
            f"pipeline.module {module!r}: a server takes a dotted module name "
            "(my_project.pipelines), not a file path"
        )
    cycles = _cycles(request)
    if body.text is not None:
        applied = cycles.apply_text(body.text, body.source, check_pipeline=False)
    else:
        assert body.policy is not None
        applied = cycles.apply_mapping(body.policy, check_pipeline=False)
    return {"policy": applied.to_dict()}


@router.get("/models/{model}/policy", summary="A model's applied retraining policy")
def get_policy(request: Request, model: Name) -> dict[str, Any]:
    authorize(request, "read", model=model)
    return {"policy": _cycles(request).policy(model).to_dict()}


@router.post("/models/{model}/run", summary="Ask for a retraining cycle (a manual trigger)")
def run(request: Request, model: Name, body: RunBody | None = None) -> Any:
    authorize(request, "manage", model=model)
    payload = body.payload if body is not None else {}
    return encode(_cycles(request).request(model, payload=payload))


@router.get("/models/{model}/status", summary="A model's newest retraining cycle")
def status(request: Request, model: Name) -> dict[str, Any]:
    authorize(request, "read", model=model)
    return {"cycle": encode(_cycles(request).status(model))}


@router.get("/models/{model}/history", summary="A model's retraining cycles, newest first")
def history(request: Request, model: Name, limit: Limit = 100) -> dict[str, Any]:
    authorize(request, "read", model=model)
    return {"cycles": encode(_cycles(request).history(model, limit=limit))}


@router.get("/cycles/{cycle_id}", summary="One retraining cycle")
def get_cycle(request: Request, cycle_id: Name) -> dict[str, Any]:
    cycle = _cycles(request).cycle(cycle_id)
    authorize(request, "read", model=cycle.model)
    return {"cycle": encode(cycle)}


@router.get("/maturity", summary="Each model's MLOps maturity level and the steps to the next")
def maturity(request: Request, model: Annotated[Name | None, Query()] = None) -> dict[str, Any]:
    authorize(request, "read", model=model)
    return {"models": encode(_service(request).maturity(model))}


@router.get("/trace/{request_id:path}", summary="Everything behind one served prediction")
def trace(
    request: Request,
    request_id: Name,
    deployment: Annotated[Name | None, Query()] = None,
    days: Annotated[
        int,
        Query(description=f"Days back to look for an id without a day (at most {MAX_TRACE_DAYS})"),
    ] = TRACE_DAYS,
) -> Any:
    authorize(request, "read")
    # The service bounds the search (request id, deployment, days) before reading.
    found = _service(request).trace(request_id, deployment=deployment, days=days)
    for lineage in found.versions:
        authorize(request, "read", model=lineage.model)
    return encode(found)
