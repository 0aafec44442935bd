"""The narrow protocols of deployments' backends: the records (SQL, HTTP), and figures
computed where the prediction log is (a team server's, over HTTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from driftline.core.audit import AuditEntry
    from driftline.serving.models import Deployment

__all__ = ["DeploymentFigures", "DeploymentStore"]


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


class DeploymentFigures(Protocol):
    """``deploy status`` and ``deploy compare`` figures computed by whoever holds the
    prediction log: a remote workspace asks its server, whose artifact store has the log
    every serving process writes (a client need not reach that store itself)."""

    def status(self, name: str, window: float) -> dict[str, Any]:
        """What :meth:`DeploymentService.status` answers, computed there."""
        ...

    def compare(self, name: str, since: datetime | None, until: datetime | None) -> dict[str, Any]:
        """What :meth:`DeploymentService.compare` answers, computed there."""
        ...
