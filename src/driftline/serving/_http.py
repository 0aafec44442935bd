"""The remote backends of deployments over a driftline server's REST API
(``/api/v1/deployments``): the records (:class:`~driftline.serving.store.DeploymentStore`)
and the figures the server computes from its prediction log
(:class:`~driftline.serving.store.DeploymentFigures`).

Who acts is the server's to say: the ``actor`` argument is not sent; the server records
the authenticated caller. A save is a compare-and-set on the record's generation on the
server too (a stale one is a 409, raised here as ``ConflictError``), and is never retried
on its own: a retry after a lost answer could apply a change twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from driftline.api.codec import decode, encode
from driftline.core.audit import AuditEntry
from driftline.errors import NotFoundError
from driftline.serving.models import Deployment

if TYPE_CHECKING:
    from driftline.api.client import ApiClient

__all__ = ["HttpDeploymentFigures", "HttpDeploymentStore"]


def _path(name: str) -> str:
    return f"deployments/{quote(name, safe='')}"


class HttpDeploymentStore:
    """:class:`~driftline.serving.store.DeploymentStore` of a driftline server."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def find_deployment(self, name: str) -> Deployment | None:
        try:
            return decode(Deployment, self.client.get_json(_path(name)))
        except NotFoundError:
            return None

    def list_deployments(self) -> list[Deployment]:
        answer = self.client.get_json("deployments")
        return [decode(Deployment, item) for item in answer["deployments"]]

    def save_deployment(
        self,
        deployment: Deployment,
        *,
        expected: int | None,
        actor: str,
        action: str | None,
        details: dict[str, Any] | None = None,
    ) -> Deployment:
        del actor  # the server records its authenticated caller
        body = {
            "deployment": encode(deployment),
            "expected": expected,
            "action": action,
            "details": details,
        }
        answer = self.client.request(
            "PUT", f"{_path(deployment.name)}/record", json=body, idempotent=False
        )
        return decode(Deployment, answer.json())

    def note(self, name: str, *, actor: str, action: str, details: dict[str, Any]) -> None:
        del actor  # the server records its authenticated caller
        self.client.request(
            "POST", f"{_path(name)}/notes", json={"action": action, "details": details},
            idempotent=False,
        )  # fmt: skip

    def history(self, name: str, limit: int | None = 100) -> list[AuditEntry]:
        params = {} if limit is None else {"limit": limit}
        try:
            answer = self.client.get_json(f"{_path(name)}/history", params=params)
        except NotFoundError:
            return []
        return [decode(AuditEntry, item) for item in answer["entries"]]


class HttpDeploymentFigures:
    """:class:`~driftline.serving.store.DeploymentFigures` of a driftline server."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def status(self, name: str, window: float) -> dict[str, Any]:
        return dict(self.client.get_json(f"{_path(name)}/status", params={"window": window}))

    def compare(self, name: str, since: datetime | None, until: datetime | None) -> dict[str, Any]:
        bounds = (("since", since), ("until", until))
        params = {k: v.isoformat() for k, v in bounds if v is not None}
        return dict(self.client.get_json(f"{_path(name)}/compare", params=params))
