"""The remote backend of the registry: :class:`~driftline.registry.store.RegistryStore`
and :class:`~driftline.registry.store.AuditLog` over HTTP.

Only metadata travels here; a version's package (its manifest and files) goes through
the workspace's content store first, and the server refuses a version whose manifest it
does not hold. Records come back through :mod:`driftline.api.codec`.

Who acts is the server's to say: the ``actor`` arguments of the protocol are not sent;
the server records the authenticated caller (or its own user without ``--auth``).
Alias moves and version registrations are never retried on their own (a retry after a
lost answer could move an alias twice or register two versions).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from driftline.api.codec import decode, encode
from driftline.api.registry import ANY_HOLDER_WIRE, restore_non_finite
from driftline.errors import NotFoundError
from driftline.registry.models import (
    AliasMove,
    Approval,
    Evaluation,
    ModelVersion,
    RegisteredModel,
)
from driftline.registry.store import ANY_HOLDER

if TYPE_CHECKING:
    from driftline.api.client import ApiClient

__all__ = ["HttpRegistryStore"]


def _seg(text: str) -> str:
    """One path segment, escaped."""
    return quote(text, safe="")


class HttpRegistryStore:
    """:class:`~driftline.registry.store.RegistryStore` of a driftline server.

    Args:
        client: The shared client of the server (``Workspace.client``).
    """

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def _model_path(self, name: str) -> str:
        return f"registry/models/{_seg(name)}"

    # -- models -------------------------------------------------------------------

    def ensure_model(
        self, name: str, *, actor: str, description: str | None = None
    ) -> RegisteredModel:
        del actor  # the server's to say
        answer = self.client.put_json(self._model_path(name), {"description": description})
        return decode(RegisteredModel, answer)

    def update_model(
        self, name: str, *, description: str | None, tags: dict[str, str], actor: str
    ) -> RegisteredModel:
        del actor
        body = {"description": description, "tags": tags}
        return decode(RegisteredModel, self.client.patch_json(self._model_path(name), body))

    def list_models(self) -> list[RegisteredModel]:
        answer = self.client.get_json("registry/models")
        return [decode(RegisteredModel, item) for item in answer["models"]]

    # -- versions -----------------------------------------------------------------

    def add_version(self, name: str, fields: dict[str, Any], *, actor: str) -> ModelVersion:
        del actor
        keys = ("source", "run_id", "package_digest", "flavor", "signature", "description")
        body = encode({k: fields.get(k) for k in keys})
        answer = self.client.post_json(f"{self._model_path(name)}/versions", body)
        return decode(ModelVersion, answer)

    def find_version(
        self, name: str, version: int | None = None, *, alias: str | None = None
    ) -> ModelVersion | None:
        selectors = {"version": version, "alias": alias}
        params = {k: v for k, v in selectors.items() if v is not None}
        answer = self.client.get_json(f"{self._model_path(name)}/versions/find", params=params)
        found = answer["version"]
        return None if found is None else decode(ModelVersion, found)

    def list_versions(self, name: str) -> list[ModelVersion]:
        try:
            answer = self.client.get_json(f"{self._model_path(name)}/versions")
        except NotFoundError:
            return []  # the protocol: an unknown model has no versions
        return [decode(ModelVersion, item) for item in answer["versions"]]

    # -- aliases ------------------------------------------------------------------

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
        del actor
        body = {
            "version": version,
            "expected": ANY_HOLDER_WIRE if expected is ANY_HOLDER else expected,
            "reason": reason,
            # What the SQL store would write to the audit log: JSON, anything else as str.
            "details": None
            if details is None
            else encode(json.loads(json.dumps(details, default=str))),
        }
        path = f"{self._model_path(name)}/aliases/{_seg(alias)}"
        return decode(AliasMove, self.client.post_json(path, body))

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        params = {} if alias is None else {"alias": alias}
        answer = self.client.get_json(f"{self._model_path(name)}/alias-history", params=params)
        return [decode(AliasMove, item) for item in answer["moves"]]

    # -- evaluations and approvals --------------------------------------------------

    def add_evaluation(self, evaluation: Evaluation) -> None:
        body = encode(
            {
                "id": evaluation.id,
                "dataset": evaluation.dataset,
                "target": evaluation.target,
                "task": evaluation.task,
                "rows": evaluation.rows,
                "metrics": evaluation.metrics,
                "slices": evaluation.slices,
            }
        )
        path = f"{self._model_path(evaluation.name)}/versions/{int(evaluation.version)}/evaluations"
        self.client.post_json(path, body)

    def list_evaluations(self, name: str, version: int) -> list[Evaluation]:
        path = f"{self._model_path(name)}/versions/{int(version)}/evaluations"
        return [
            dataclasses.replace(
                evaluation,
                metrics=restore_non_finite(dict(evaluation.metrics)),
                slices=restore_non_finite(dict(evaluation.slices)),
            )
            for evaluation in (
                decode(Evaluation, item) for item in self.client.get_json(path)["evaluations"]
            )
        ]

    def add_approval(self, approval: Approval) -> Approval:
        # The approver is the caller as the server knows it, not approval.actor.
        path = f"{self._model_path(approval.name)}/versions/{int(approval.version)}/approvals"
        body = {"alias": approval.alias, "comment": approval.comment}
        return decode(Approval, self.client.post_json(path, body))

    def list_approvals(self, name: str, version: int, alias: str | None = None) -> list[Approval]:
        params = {} if alias is None else {"alias": alias}
        path = f"{self._model_path(name)}/versions/{int(version)}/approvals"
        answer = self.client.get_json(path, params=params)
        return [decode(Approval, item) for item in answer["approvals"]]

    def set_policy(self, alias: str, required: int, *, actor: str) -> None:
        del actor
        self.client.put_json(f"registry/policies/{_seg(alias)}", {"required": required})

    def policy(self, alias: str) -> int:
        return int(self.client.get_json(f"registry/policies/{_seg(alias)}")["required"])
