"""Request bodies of the pipelines routes (``/api/v1/pipelines/...``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from driftline.api.text import Text

__all__ = ["FireBody"]


class FireBody(BaseModel):
    """A firing's payload (``{trigger.KEY}`` parameters) and, for alerts, its dedup key."""

    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] = {}
    key: Text | None = None
