"""The protocol registry backends implement.

Every mutating method takes the ``actor`` and appends to the audit log in the same
transaction as the change (reading the log is the kernel's ``AuditLog``, see
:mod:`driftline.core.auditlog`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from driftline.registry.models import (
        AliasMove,
        Approval,
        Evaluation,
        ModelVersion,
        RegisteredModel,
    )

__all__ = ["ANY_HOLDER", "RegistryStore"]

ANY_HOLDER: object = object()
"""``expected=`` for an unconditional alias move."""


class RegistryStore(Protocol):
    """Registered models, versions, aliases, evaluations and approvals."""

    def ensure_model(
        self, name: str, *, actor: str, description: str | None = None
    ) -> RegisteredModel:
        """The registered model called ``name``, created (and audited) if missing."""
        ...

    def update_model(
        self, name: str, *, description: str | None, tags: dict[str, str], actor: str
    ) -> RegisteredModel:
        """Set a model's description (when given) and tags (upserted), audited."""
        ...

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name, with its aliases and latest version."""
        ...

    def add_version(self, name: str, fields: dict[str, Any], *, actor: str) -> ModelVersion:
        """Record the next version atomically (distinct numbers under concurrency)."""
        ...

    def find_version(
        self, name: str, version: int | None = None, *, alias: str | None = None
    ) -> ModelVersion | None:
        """A version by number or alias; with neither, the latest."""
        ...

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, newest first."""
        ...

    def move_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        expected: int | object | None,
        actor: str,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> AliasMove:
        """Point ``alias`` at ``version`` (``None`` deletes it) if it still points at
        ``expected`` (:data:`ANY_HOLDER`: whatever it points at); ``ConflictError``
        otherwise, ``NotFoundError`` if the version does not exist. Recorded in the alias
        history and the audit log."""
        ...

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Alias moves, newest first."""
        ...

    def add_evaluation(self, evaluation: Evaluation) -> None:
        """Store an evaluation of a version."""
        ...

    def list_evaluations(self, name: str, version: int) -> list[Evaluation]:
        """Evaluations of a version, newest first."""
        ...

    def add_approval(self, approval: Approval) -> Approval:
        """Record an approval (one per actor, version and alias); return it as recorded
        (a server records the authenticated caller as the actor, and its own time)."""
        ...

    def list_approvals(self, name: str, version: int, alias: str | None = None) -> list[Approval]:
        """Approvals of a version."""
        ...

    def set_policy(self, alias: str, required: int, *, actor: str) -> None:
        """Require ``required`` approvals before a version may take ``alias``."""
        ...

    def policy(self, alias: str) -> int:
        """Approvals required for ``alias`` (0 when there is no policy)."""
        ...
