"""Tracking records: experiments, runs, metric points, run artifacts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "SYSTEM_TAG_PREFIX",
    "ArtifactEntry",
    "CodeVersion",
    "Experiment",
    "LifecycleStage",
    "MetricPoint",
    "Run",
    "RunStatus",
]

# Tags driftline sets itself (git state, command line, ...) start with this prefix.
SYSTEM_TAG_PREFIX = "driftline."


class RunStatus(StrEnum):
    """Where a run is in its life. Only RUNNING may change; the others are final."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_final(self) -> bool:
        """Whether the run has ended."""
        return self is not RunStatus.RUNNING


class LifecycleStage(StrEnum):
    """Soft deletion: deleted experiments and runs are hidden but kept until purged."""

    ACTIVE = "active"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Experiment:
    """A named group of runs."""

    id: str
    name: str
    description: str | None
    lifecycle_stage: LifecycleStage
    created_at: datetime
    updated_at: datetime
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricPoint:
    """One logged value of a metric. ``value`` may be NaN or infinite; both are kept."""

    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeVersion:
    """The code a run executed, as captured at run start (``None`` where unknown)."""

    commit: str | None
    branch: str | None
    dirty: bool | None
    command: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """A run with its params, latest metric values and tags.

    ``metrics`` maps each key to its latest value (highest step, then latest time);
    the full history comes from ``get_metric_history``.
    """

    id: str
    experiment_id: str
    name: str
    status: RunStatus
    lifecycle_stage: LifecycleStage
    user: str
    start_time: datetime
    end_time: datetime | None
    heartbeat_at: datetime | None
    parent_id: str | None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> timedelta | None:
        """How long the run took, for ended runs."""
        return None if self.end_time is None else self.end_time - self.start_time

    @property
    def code(self) -> CodeVersion:
        """Git commit, branch, dirtiness and command line captured at run start."""
        dirty = self.tags.get(SYSTEM_TAG_PREFIX + "git.dirty")
        return CodeVersion(
            commit=self.tags.get(SYSTEM_TAG_PREFIX + "git.commit"),
            branch=self.tags.get(SYSTEM_TAG_PREFIX + "git.branch"),
            dirty=None if dirty is None else dirty == "true",
            command=self.tags.get(SYSTEM_TAG_PREFIX + "source.command"),
        )

    @property
    def user_tags(self) -> dict[str, str]:
        """Tags without the ones driftline sets itself."""
        return {k: v for k, v in self.tags.items() if not k.startswith(SYSTEM_TAG_PREFIX)}

    def is_stale(self, now: datetime, after: timedelta) -> bool:
        """A RUNNING run whose process stopped sending heartbeats (it probably died)."""
        if self.status is not RunStatus.RUNNING:
            return False
        last = self.heartbeat_at or self.start_time
        return now - last > after


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactEntry:
    """A file logged to a run: its logical path and the content it points to."""

    path: str
    digest: str
    size: int
    created_at: datetime


def format_value(value: float) -> str:
    """Render a metric value for people: NaN and infinities spelled out."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"
