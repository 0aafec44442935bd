"""Request bodies of the monitoring routes (``/api/v1/monitoring/...``).

Answers are the records' own ``to_dict()``. The server checks every field again with
the monitor service's rules (windows, checks, channels, thresholds).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from driftline.api.text import EpochMs, Text, no_nul

__all__ = ["LABEL_TYPES", "CheckBody", "MonitorBody", "PerformanceBody", "RunBody"]

#: The bodies ``POST /monitoring/labels/{deployment}`` reads, by content type.
LABEL_TYPES = {
    "application/json": "json",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.arrow.file": "arrow",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}

_STRICT = ConfigDict(extra="forbid", strict=True)
_Short = Annotated[str, StringConstraints(max_length=128), AfterValidator(no_nul)]
_Channel = Annotated[str, StringConstraints(max_length=2048), AfterValidator(no_nul)]


class MonitorBody(BaseModel):
    """Create (or with ``replace``, redefine) a monitor."""

    model_config = _STRICT

    name: _Short
    deployment: _Short
    window: _Short = "1d"
    checks: list[_Short] = Field(default_factory=lambda: ["drift"], max_length=32)
    alerts: list[_Channel] = Field(default_factory=list, max_length=32)
    cooldown: _Short = "6h"
    reference: Text | None = None
    thresholds: dict[str, Any] | None = None
    replace: bool = False


class RunBody(BaseModel):
    """Run a monitor on the window ending at ``at`` (epoch milliseconds; default now)."""

    model_config = _STRICT

    at: EpochMs | None = None


class PerformanceBody(BaseModel):
    """Realized and estimated performance per window (see ``dl.monitoring.performance``).

    ``since`` is a duration back from now (``"14d"``) or epoch milliseconds.
    """

    model_config = _STRICT

    window: _Short = "1d"
    since: _Short | EpochMs = "14d"
    until: EpochMs | None = None
    segment: _Short | None = None
    task: _Short = "auto"
    threshold: float = Field(0.5, gt=0, lt=1)
    label_delay: _Short = "0s"
    join_window: _Short = "14d"
    min_rows: int = Field(100, ge=1, le=1_000_000_000)
    estimate: bool = True


class CheckBody(BaseModel):
    """Drift, prediction drift, quality and performance per window (see
    ``dl.monitoring.check``); ``thresholds`` and ``quality`` are the fields of
    ``DriftThresholds`` and ``QualityThresholds``."""

    model_config = _STRICT

    window: _Short = "1d"
    since: _Short | EpochMs = "14d"
    until: EpochMs | None = None
    reference: Text | None = None
    checks: list[_Short] = Field(
        default_factory=lambda: ["drift", "prediction_drift", "quality", "performance"],
        max_length=8,
    )
    thresholds: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    task: _Short = "auto"
    threshold: float = Field(0.5, gt=0, lt=1)
    label_delay: _Short = "0s"
    join_window: _Short = "14d"
    min_labels: int = Field(100, ge=1, le=1_000_000_000)
