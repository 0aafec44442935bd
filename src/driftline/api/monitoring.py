"""Request bodies of the monitoring routes (``/api/v1/monitoring/...``).

Answers are the records' own ``to_dict()``. The server checks every field again with
the monitor service's rules (windows, checks, channels, thresholds).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from driftline.api.text import EpochMs, Text, no_nul

__all__ = ["MonitorBody", "RunBody"]

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
