"""REST routes: pipeline runs, schedules, triggers and firings (``/api/v1/pipelines/...``).

What a team's dashboards and the retraining loop need from a server: the runs a
pipeline made (with each step's cache decision), the schedules and triggers and what
they started, and the actions that need no pipeline code: pause and resume a schedule,
fire a trigger, report an alert, delete. Creating a schedule or trigger checks the
pipeline's parameters against its code, which the server does not import: clients
(``driftline schedule create`` / ``trigger create`` next to the code) check them and
store the record through :mod:`driftline.server.routes.pipeline_records`.

Reading needs the read permission (runs: on the pipeline's experiment); changing needs
edit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request

from driftline.api.codec import encode
from driftline.api.pipelines import FireBody
from driftline.api.text import Name
from driftline.server.deps import authorize, workspace

if TYPE_CHECKING:
    from driftline.pipelines.automation import Automation

router = APIRouter(prefix="/pipelines", tags=["pipelines"])

Limit = Annotated[int, Query(ge=1, le=1000, description="How many, newest first")]


def _automation(request: Request) -> Automation:
    from driftline.pipelines.automation import Automation

    return Automation.for_workspace(workspace(request))


# -- runs -------------------------------------------------------------------------------


@router.get("/runs", summary="A pipeline's recorded runs, newest first")
def list_runs(
    request: Request,
    pipeline: Annotated[Name, Query(description="The pipeline's name")],
    limit: Limit = 20,
) -> dict[str, Any]:
    from driftline.pipelines.models import to_json
    from driftline.pipelines.service import PipelineService

    authorize(request, "read", experiment=pipeline)
    runs = PipelineService(workspace(request)).list_runs(pipeline, limit)
    return {"runs": [to_json(r) for r in runs]}


@router.get("/runs/{run_id}", summary="One pipeline run with its steps")
def get_run(request: Request, run_id: Name) -> dict[str, Any]:
    from driftline.pipelines.models import to_json
    from driftline.pipelines.service import PipelineService

    record = PipelineService(workspace(request)).get_run(run_id)
    authorize(request, "read", experiment=record.pipeline)
    return to_json(record)


# -- schedules ----------------------------------------------------------------------------


@router.get("/schedules", summary="Every schedule with its next due time")
def list_schedules(request: Request) -> dict[str, Any]:
    authorize(request, "read")
    return {"schedules": encode(_automation(request).list_schedules())}


@router.get("/schedules/{name}", summary="A schedule and its recent firings")
def get_schedule(request: Request, name: Name, limit: Limit = 20) -> dict[str, Any]:
    authorize(request, "read")
    auto = _automation(request)
    return {
        "schedule": encode(auto.get_schedule(name)),
        "firings": encode(auto.list_firings(origin=name, limit=limit)),
    }


@router.post("/schedules/{name}/pause", summary="Pause a schedule")
def pause_schedule(request: Request, name: Name) -> Any:
    authorize(request, "edit")
    return encode(_automation(request).set_enabled(name, False))


@router.post("/schedules/{name}/resume", summary="Resume a schedule from now on")
def resume_schedule(request: Request, name: Name) -> Any:
    authorize(request, "edit")
    return encode(_automation(request).set_enabled(name, True))


@router.delete("/schedules/{name}", summary="Delete a schedule (its runs stay)")
def delete_schedule(request: Request, name: Name) -> Any:
    authorize(request, "edit")
    return {"deleted": encode(_automation(request).delete_schedule(name))}


# -- triggers -----------------------------------------------------------------------------


@router.get("/triggers", summary="Every trigger")
def list_triggers(request: Request) -> dict[str, Any]:
    authorize(request, "read")
    return {"triggers": encode(_automation(request).list_triggers())}


@router.get("/triggers/{name}", summary="A trigger and its recent firings")
def get_trigger(request: Request, name: Name, limit: Limit = 20) -> dict[str, Any]:
    authorize(request, "read")
    auto = _automation(request)
    return {
        "trigger": encode(auto.get_trigger(name)),
        "firings": encode(auto.list_firings(origin=name, limit=limit)),
    }


@router.post("/triggers/{name}/fire", summary="Fire a trigger; the agent starts its run")
def fire_trigger(request: Request, name: Name, body: FireBody) -> Any:
    authorize(request, "edit")
    return encode(_automation(request).fire_trigger(name, body.payload))


@router.delete("/triggers/{name}", summary="Delete a trigger (its runs stay)")
def delete_trigger(request: Request, name: Name) -> Any:
    authorize(request, "edit")
    return {"deleted": encode(_automation(request).delete_trigger(name))}


@router.post("/alerts/{source}", summary="Report an alert: its triggers' runs start")
def fire_alert(request: Request, source: Name, body: FireBody) -> dict[str, Any]:
    authorize(request, "edit")
    return {"firings": encode(_automation(request).fire(source, body.payload, key=body.key))}


@router.get("/firings", summary="Firings (what started which run), newest first")
def list_firings(
    request: Request,
    origin: Annotated[Name | None, Query(description="A schedule or trigger name")] = None,
    status: Annotated[Name | None, Query(description="PENDING, RUNNING, ...")] = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    authorize(request, "read")
    found = _automation(request).list_firings(origin=origin, status=status, limit=limit)
    return {"firings": encode(found)}
