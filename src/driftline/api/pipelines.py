"""Request bodies of the pipelines routes (``/api/v1/pipelines/...``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from driftline.api.text import Count, EpochMs, Id, Name, Text

__all__ = [
    "AdvanceScheduleBody",
    "AdvanceTriggerBody",
    "EndFiringBody",
    "FireBody",
    "LeaseBody",
    "RunFiringBody",
    "ScheduleValuesBody",
    "StartFiringBody",
]

_STRICT = ConfigDict(extra="forbid", strict=True)
#: An agent's name in the lease and on firings (host:pid:random).
AgentName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class FireBody(BaseModel):
    """A firing's payload (``{trigger.KEY}`` parameters) and, for alerts, its dedup key."""

    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] = {}
    key: Text | None = None


# -- the record store over HTTP (driftline.pipelines._http) ---------------------------


class ScheduleValuesBody(BaseModel):
    """Columns of a schedule to change; absent ones stay."""

    model_config = _STRICT

    enabled: bool | None = None
    next_due_at: EpochMs | None = None
    updated_at: EpochMs | None = None


class AdvanceScheduleBody(BaseModel):
    """Move ``next_due_at`` from ``expected_due`` to ``next_due`` and add the firings."""

    model_config = _STRICT

    expected_due: EpochMs
    next_due: EpochMs
    firings: list[dict[str, Any]] = []


class AdvanceTriggerBody(BaseModel):
    """Move a dataset trigger's cursor from ``expected`` and add the firing."""

    model_config = _STRICT

    expected: Count | None = None
    cursor: Count
    firing: dict[str, Any] | None = None


class StartFiringBody(BaseModel):
    """The agent taking a PENDING firing."""

    model_config = _STRICT

    agent: AgentName


class RunFiringBody(BaseModel):
    """The run a firing started, and the parameters it ran with."""

    model_config = _STRICT

    run_id: Id
    resolved_params: dict[str, Any]


class EndFiringBody(BaseModel):
    """How a firing ended."""

    model_config = _STRICT

    status: Name
    error: Text | None = None


class LeaseBody(BaseModel):
    """An agent asking for the lease (the server's clock decides expiry)."""

    model_config = _STRICT

    holder: AgentName
    host: Name
    pid: Annotated[int, Field(ge=0, le=2**31 - 1)]
    ttl_ms: Annotated[int, Field(ge=100, le=86_400_000)]
