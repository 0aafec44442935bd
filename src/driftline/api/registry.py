"""Request bodies of the registry routes (``/api/v1/registry/...``) and wire helpers.

Answers are records encoded by :mod:`driftline.api.codec`. Who acts (the ``actor`` of
audit entries, approvals and alias moves) is never in a body: the server takes it from
the authenticated caller.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from driftline.api.text import INT32_MAX, Count, Digest, Id, Label, Text, no_nul

__all__ = [
    "ANY_HOLDER_WIRE",
    "AliasMoveBody",
    "ApprovalBody",
    "EvaluationBody",
    "ModelBody",
    "ModelUpdateBody",
    "ModelVersionBody",
    "MoveReason",
    "PolicyBody",
    "restore_non_finite",
]

_STRICT = ConfigDict(extra="forbid", strict=True)

ANY_HOLDER_WIRE = "*"
"""``expected`` of an unconditional alias move (whatever holds the alias now)."""

MoveReason = Literal["set", "delete", "rollback", "promote"]

_Alias = Annotated[str, StringConstraints(max_length=128), AfterValidator(no_nul)]
_Target = Annotated[str, StringConstraints(max_length=250), AfterValidator(no_nul)]
_Dataset = Annotated[str, StringConstraints(max_length=300), AfterValidator(no_nul)]
_Task = Annotated[str, StringConstraints(max_length=32), AfterValidator(no_nul)]
_Version = Annotated[int, Field(ge=1, le=INT32_MAX)]


class ModelBody(BaseModel):
    """Create a registered model if it is missing."""

    model_config = _STRICT

    description: Text | None = None


class ModelUpdateBody(BaseModel):
    """Set a model's description (when given) and upsert tags."""

    model_config = _STRICT

    description: Text | None = None
    tags: dict[str, Text] = Field(default_factory=dict)


class ModelVersionBody(BaseModel):
    """The next version of a model; its package manifest must be in the artifact store."""

    model_config = _STRICT

    source: Text
    run_id: Id | None = None
    package_digest: Digest
    flavor: Label
    signature: dict[str, Any] | None = None
    description: Text | None = None


class AliasMoveBody(BaseModel):
    """Point an alias at ``version`` (``null`` deletes it) if it points at ``expected``.

    ``expected`` is required: a version number, ``null`` (only if the alias is unset) or
    ``"*"`` (whatever holds it: an unconditional move).
    """

    model_config = _STRICT

    version: _Version | None
    expected: _Version | Literal["*"] | None
    reason: MoveReason = "set"
    details: dict[str, Any] | None = None


class EvaluationBody(BaseModel):
    """Metrics of a version on a dataset; the id is the client's (a retry is recognised)."""

    model_config = _STRICT

    id: Id
    dataset: _Dataset | None = None
    target: _Target
    task: _Task
    rows: Count
    metrics: dict[str, Any]
    slices: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)


class ApprovalBody(BaseModel):
    """A sign-off of a version for an alias, by the caller."""

    model_config = _STRICT

    alias: _Alias
    comment: Text | None = None


class PolicyBody(BaseModel):
    """How many distinct people must approve before a version may take an alias."""

    model_config = _STRICT

    required: Annotated[int, Field(ge=0, le=INT32_MAX)]


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def restore_non_finite(value: Any) -> Any:
    """Turn the codec's ``"NaN"``/``"Infinity"``/``"-Infinity"`` back into floats, deep.

    Metrics and gate measurements are free-form JSON (``Any`` to the codec), so their
    non-finite floats arrive as those strings; a metric is never such a string.
    """
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {k: restore_non_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_non_finite(v) for v in value]
    return value
