"""Registry records: registered models, versions, aliases, evaluations, approvals, gates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "AliasMove",
    "Approval",
    "Evaluation",
    "GateResult",
    "ModelVersion",
    "PromotionReport",
    "RegisteredModel",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModel:
    """A named model with numbered versions and movable aliases."""

    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
    latest_version: int | None = None
    aliases: Mapping[str, int] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersion:
    """An immutable registered version: the package's files are pinned by ``package_digest``
    (a manifest in the content store), whatever happens to the run's artifacts later."""

    name: str
    version: int
    source: str
    run_id: str | None
    package_digest: str
    flavor: str
    signature: Mapping[str, Any] | None
    description: str | None
    created_by: str
    created_at: datetime
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``churn/4``."""
        return f"{self.name}/{self.version}"

    @property
    def uri(self) -> str:
        """``models:/churn/4``."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AliasMove:
    """One change of an alias: who moved it from which version to which, and why."""

    alias: str
    seq: int
    version: int | None
    previous_version: int | None
    actor: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """Metrics of a model version on a dataset (and per slice)."""

    id: str
    name: str
    version: int
    dataset: str | None
    target: str
    task: str
    rows: int
    metrics: Mapping[str, Any]
    slices: Mapping[str, Mapping[str, Mapping[str, Any]]]
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    """A person's sign-off for moving a version to an alias."""

    name: str
    version: int
    alias: str
    actor: str
    comment: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class GateResult:
    """One quality gate: what was measured against which threshold."""

    gate: str
    passed: bool
    measured: Any
    threshold: Any
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PromotionReport:
    """The outcome of a promotion: every gate's result, and whether the alias moved."""

    name: str
    version: int
    alias: str
    promoted: bool
    gates: tuple[GateResult, ...]
    previous_version: int | None = None

    @property
    def failed(self) -> tuple[GateResult, ...]:
        """The gates that did not pass."""
        return tuple(g for g in self.gates if not g.passed)
