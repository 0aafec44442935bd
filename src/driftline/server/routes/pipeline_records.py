"""REST routes: the pipelines' record store over HTTP (``/api/v1/pipelines/records/...``).

:class:`~driftline.pipelines._http.HttpAutomationStore` speaks to these, so
``driftline schedule``, ``driftline trigger`` and ``driftline agent`` work against a
team server exactly as against its database: each compare-and-set of
:class:`~driftline.pipelines.automation_store.AutomationStore` is one request, done by
the server in one transaction. Times that order agents (the lease, a firing's start
and end) are the server's clock, so agents on machines with skewed clocks agree.

The server re-checks what a client may not have: names, cron expressions and time
zones, catch-up policies and trigger kinds. Reading needs read; writing needs edit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request

from driftline.api.codec import decode, encode
from driftline.api.pipelines import (
    AdvanceScheduleBody,
    AdvanceTriggerBody,
    EndFiringBody,
    LeaseBody,
    RunFiringBody,
    ScheduleValuesBody,
    StartFiringBody,
)
from driftline.api.text import Id, Label, Name
from driftline.core.clock import now_ms
from driftline.errors import InvalidArgumentError
from driftline.pipelines.records import CATCHUP, TRIGGER_KINDS, Firing, Schedule, Trigger
from driftline.server.deps import authorize, workspace

if TYPE_CHECKING:
    from driftline.pipelines._sql import SqlAutomationStore

router = APIRouter(prefix="/pipelines/records", tags=["pipelines"])

Limit = Annotated[int, Query(ge=1, le=1000)]


def _store(request: Request) -> SqlAutomationStore:
    from driftline.pipelines._sql import SqlAutomationStore

    return workspace(request).service("pipelines", SqlAutomationStore)


def _check_schedule(record: Schedule) -> Schedule:
    from driftline.pipelines.automation import check_name
    from driftline.pipelines.cron import parse_cron

    check_name(record.name, "schedule")
    _lengths(record.pipeline, record.cron)
    _id(record.id)
    parse_cron(record.cron, record.timezone)
    if record.catchup not in CATCHUP:
        raise InvalidArgumentError(f"catchup must be one of {', '.join(CATCHUP)}")
    return record


def _check_trigger(record: Trigger) -> Trigger:
    from driftline.pipelines.automation import check_name

    check_name(record.name, "trigger")
    _lengths(record.pipeline, record.source or "")
    _id(record.id)
    if record.kind not in TRIGGER_KINDS:
        raise InvalidArgumentError(f"kind must be one of {', '.join(TRIGGER_KINDS)}")
    if (record.kind == "manual") != (record.source is None):
        raise InvalidArgumentError("dataset and alert triggers have a source; manual ones none")
    return record


def _id(value: str) -> None:
    if not value or len(value) > 32:
        raise InvalidArgumentError("A record id is 1-32 characters")


def _lengths(*values: str) -> None:
    if any(len(v) > 256 for v in values):
        raise InvalidArgumentError(
            "Pipeline names, sources and cron expressions are at most 256 characters"
        )


def _firing(data: Any) -> Firing:
    from driftline.pipelines.records import FiringStatus

    record = decode(Firing, data)
    if record.origin not in ("schedule", "trigger"):
        raise InvalidArgumentError("A firing's origin is a schedule or a trigger")
    if len(record.id) > 32 or len(record.origin_id) > 32 or len(record.dedup_key) > 512:
        raise InvalidArgumentError("Firing ids are at most 32 characters, keys at most 512")
    _lengths(record.origin_name, record.pipeline)
    if record.status is not FiringStatus.PENDING:
        raise InvalidArgumentError("A new firing is PENDING")
    return record


def _firings(items: list[Any]) -> list[Firing]:
    return [_firing(item) for item in items]


# -- schedules ----------------------------------------------------------------------------


@router.post("/schedules", summary="Store a new schedule (409 when the name is taken)")
def add_schedule(request: Request, body: dict[str, Any]) -> Any:
    authorize(request, "edit")
    return encode(_store(request).add_schedule(_check_schedule(decode(Schedule, body))))


@router.get("/schedules", summary="Every schedule, or the one named")
def list_schedules(
    request: Request, name: Annotated[Name | None, Query()] = None
) -> dict[str, Any]:
    authorize(request, "read")
    store = _store(request)
    if name is not None:
        found = store.find_schedule(name)
        return {"schedules": encode([found] if found else [])}
    return {"schedules": encode(store.list_schedules())}


@router.patch("/schedules/{schedule_id}", summary="Pause, resume or move a schedule")
def update_schedule(request: Request, schedule_id: Id, body: ScheduleValuesBody) -> None:
    authorize(request, "edit")
    values = body.model_dump(exclude_none=True)
    _store(request).update_schedule(schedule_id, values)


@router.delete("/schedules/{schedule_id}", summary="Delete a schedule by id")
def delete_schedule(request: Request, schedule_id: Id) -> None:
    authorize(request, "edit")
    _store(request).delete_schedule(schedule_id)


@router.post("/schedules/{schedule_id}/advance", summary="Compare-and-set the next due time")
def advance_schedule(
    request: Request, schedule_id: Id, body: AdvanceScheduleBody
) -> dict[str, bool]:
    authorize(request, "edit")
    done = _store(request).advance_schedule(
        schedule_id,
        expected_due=body.expected_due,
        next_due=body.next_due,
        firings=_firings(body.firings),
    )
    return {"advanced": done}


# -- triggers -----------------------------------------------------------------------------


@router.post("/triggers", summary="Store a new trigger (409 when the name is taken)")
def add_trigger(request: Request, body: dict[str, Any]) -> Any:
    authorize(request, "edit")
    return encode(_store(request).add_trigger(_check_trigger(decode(Trigger, body))))


@router.get("/triggers", summary="Triggers, by name, kind or source")
def list_triggers(
    request: Request,
    name: Annotated[Name | None, Query()] = None,
    kind: Annotated[Name | None, Query()] = None,
    source: Annotated[Name | None, Query()] = None,
) -> dict[str, Any]:
    authorize(request, "read")
    store = _store(request)
    if name is not None:
        found = store.find_trigger(name)
        return {"triggers": encode([found] if found else [])}
    return {"triggers": encode(store.list_triggers(kind=kind, source=source))}


@router.delete("/triggers/{trigger_id}", summary="Delete a trigger by id")
def delete_trigger(request: Request, trigger_id: Id) -> None:
    authorize(request, "edit")
    _store(request).delete_trigger(trigger_id)


@router.post("/triggers/{trigger_id}/advance", summary="Compare-and-set a dataset cursor")
def advance_trigger(request: Request, trigger_id: Id, body: AdvanceTriggerBody) -> dict[str, bool]:
    authorize(request, "edit")
    firing = None if body.firing is None else _firing(body.firing)
    done = _store(request).advance_trigger(
        trigger_id, expected=body.expected, cursor=body.cursor, firing=firing
    )
    return {"advanced": done}


# -- firings ------------------------------------------------------------------------------


@router.post("/firings", summary="Store a PENDING firing (false when its key fired)")
def add_firing(request: Request, body: dict[str, Any]) -> dict[str, bool]:
    authorize(request, "edit")
    return {"added": _store(request).add_firing(_firing(body))}


@router.get("/firings", summary="Firings by status or origin")
def list_firings(
    request: Request,
    status: Annotated[Name | None, Query()] = None,
    origin_name: Annotated[Name | None, Query()] = None,
    limit: Limit = 100,
    oldest_first: bool = False,
) -> dict[str, Any]:
    from driftline.pipelines.records import FiringStatus

    authorize(request, "read")
    state = None if status is None else decode(FiringStatus, status)
    found = _store(request).list_firings(
        status=state, origin_name=origin_name, limit=limit, oldest_first=oldest_first
    )
    return {"firings": encode(found)}


@router.get("/firings/{firing_id}", summary="One firing, or null")
def get_firing(request: Request, firing_id: Id) -> Any:
    authorize(request, "read")
    return encode(_store(request).get_firing(firing_id))


@router.post("/firings/{firing_id}/start", summary="Compare-and-set PENDING -> RUNNING")
def start_firing(request: Request, firing_id: Id, body: StartFiringBody) -> dict[str, bool]:
    authorize(request, "edit")
    return {"started": _store(request).start_firing(firing_id, agent=body.agent, now=now_ms())}


@router.post("/firings/{firing_id}/run", summary="Record the run a firing started")
def set_firing_run(request: Request, firing_id: Id, body: RunFiringBody) -> None:
    authorize(request, "edit")
    _store(request).set_firing_run(
        firing_id, run_id=body.run_id, resolved_params=body.resolved_params
    )


@router.post("/firings/{firing_id}/end", summary="Record how a firing ended")
def end_firing(request: Request, firing_id: Id, body: EndFiringBody) -> None:
    from driftline.pipelines.records import FiringStatus

    authorize(request, "edit")
    status = decode(FiringStatus, body.status)
    _store(request).end_firing(firing_id, status=status, error=body.error, now=now_ms())


# -- the lease ----------------------------------------------------------------------------


@router.post("/leases/{name}", summary="Take or renew the agent lease (server clock)")
def acquire_lease(request: Request, name: Label, body: LeaseBody) -> dict[str, Any]:
    authorize(request, "edit")
    ours, lease = _store(request).acquire_lease(
        name, holder=body.holder, host=body.host, pid=body.pid, now=now_ms(), ttl_ms=body.ttl_ms
    )
    return {"ours": ours, "lease": encode(lease)}


@router.get("/leases/{name}", summary="The lease, or null")
def get_lease(request: Request, name: Label) -> Any:
    authorize(request, "read")
    return encode(_store(request).get_lease(name))


@router.delete("/leases/{name}", summary="Give the lease up (if the holder holds it)")
def release_lease(request: Request, name: Label, holder: Annotated[Name, Query()]) -> None:
    authorize(request, "edit")
    _store(request).release_lease(name, holder=holder)
