"""Records of schedules, triggers, their firings and the agent's lease.

A *firing* is one decision to start a pipeline: a schedule coming due, a new dataset
version, an alert, a manual ``trigger fire``. It is written before the run starts
(PENDING), so an agent that dies loses nothing: the next one runs what is pending and
marks what was RUNNING as FAILED.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "CATCHUP",
    "TRIGGER_KINDS",
    "Firing",
    "FiringStatus",
    "Lease",
    "Schedule",
    "Trigger",
]

#: What a schedule does with due times missed while no agent ran: ``once`` starts one
#: run for all of them, ``all`` one run per due time (at most 100), ``skip`` none
#: (only due times the agent sees come due are run).
CATCHUP = ("once", "all", "skip")

#: ``dataset``: each new version of a dataset; ``alert``: ``fire(source, payload)``
#: (monitoring alerts, or any event a program reports); ``manual``: ``trigger fire``.
TRIGGER_KINDS = ("dataset", "alert", "manual")


class FiringStatus(StrEnum):
    """Where a firing is: PENDING until an agent starts its run."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A pipeline run on a cron schedule in a time zone."""

    id: str
    name: str
    pipeline: str
    module: str
    cron: str
    timezone: str
    params: dict[str, Any]
    enabled: bool
    catchup: str
    next_due_at: datetime
    last_fired_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    """A pipeline run on an event: a new dataset version, an alert, or by hand."""

    id: str
    name: str
    kind: str
    source: str | None
    pipeline: str
    module: str
    params: dict[str, Any]
    enabled: bool
    cursor: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Firing:
    """One start of a pipeline by a schedule or a trigger, and what came of it."""

    id: str
    origin: str  # "schedule" or "trigger"
    origin_id: str
    origin_name: str
    pipeline: str
    module: str
    params: dict[str, Any]
    payload: dict[str, Any]
    dedup_key: str
    status: FiringStatus
    run_id: str | None = None
    resolved_params: dict[str, Any] | None = None
    error: str | None = None
    agent: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """Who leads: the one agent that may start runs, until ``expires_at``."""

    holder: str
    host: str
    pid: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
