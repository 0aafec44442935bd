"""The narrow store protocol deployment records' backends implement (SQL, HTTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from driftline.core.audit import AuditEntry
    from driftline.serving.models import Deployment

__all__ = ["DeploymentStore"]


class DeploymentStore(Protocol):
    """Deployment records; every audited change is appended to the audit log in the same
    transaction as the change."""

    def find_deployment(self, name: str) -> Deployment | None:
        """The record called ``name``, or ``None``."""
        ...

    def list_deployments(self) -> list[Deployment]:
        """Every record, by name."""
        ...

    def save_deployment(
        self,
        deployment: Deployment,
        *,
        expected: int | None,
        actor: str,
        action: str | None,
        details: dict[str, Any] | None = None,
    ) -> Deployment:
        """Store ``deployment`` if the stored record's generation is still ``expected``
        (``None``: only if there is no record yet); the stored record has the next
        generation. ``ConflictError`` otherwise. ``action`` names the audit entry
        (``None`` for bookkeeping no one needs to audit, such as claiming a check)."""
        ...

    def note(self, name: str, *, actor: str, action: str, details: dict[str, Any]) -> None:
        """Append an audit entry about deployment ``name`` without changing its record
        (what happened around it, such as a notification that could not be delivered)."""
        ...

    def history(self, name: str, limit: int | None = 100) -> list[AuditEntry]:
        """The audit entries of one deployment, newest first."""
        ...
