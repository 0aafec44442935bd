"""Retraining of a remote workspace: the team server's ``/api/v1/retraining`` routes.

:class:`HttpRetrainer` has the methods of :class:`~driftline.retraining.loop.Retrainer`
that a client needs (apply, policy, run, status, history, cycle): what
``dl.retraining.apply/run/status/history`` and ``driftline retrain ...`` call. Cycles are
driven by ``driftline agent`` running beside the server on its database; a client only
applies policies, reads cycles and asks for one (``run`` triggers and returns the cycle
as triggered, or the running cycle that absorbed the trigger).

A policy is parsed here first, so its errors name the field and line before anything
is sent, and its pipeline is checked here, next to the pipeline's code: the server
does not import pipeline code (as for schedules and triggers). The server checks
everything else: the model, deployment, monitors, datasets, and who may approve.

``trace`` and ``maturity`` are answered by the server, which reads its own prediction
log and sees every stage's records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from driftline.api.codec import decode
from driftline.retraining import TRACE_DAYS
from driftline.retraining.cycles import Cycle, TriggerOutcome
from driftline.retraining.maturity import ModelMaturity
from driftline.retraining.models import Trace
from driftline.retraining.policy import RetrainPolicy, policy_from_dict

if TYPE_CHECKING:
    from driftline.api.client import ApiClient

__all__ = ["HttpRetrainer"]

_API = "retraining"


def _model(model: str) -> str:
    return f"{_API}/models/{quote(model, safe='')}"


class HttpRetrainer:
    """Retraining policies and cycles, trace and maturity, over HTTP."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def apply(
        self, source: str | Path | Mapping[str, Any], *, check_pipeline: bool = True
    ) -> RetrainPolicy:
        """Check a policy here (shape, pipeline) and apply it on the server."""
        from driftline.core.yamlfile import Located, compose
        from driftline.retraining.loop import check_pipeline_exists, policy_source, read_gates
        from driftline.retraining.policy import parse_policy

        found = policy_source(source)
        body: dict[str, Any]
        if isinstance(found, dict):
            policy, at, folder = policy_from_dict(found), Located("policy", {}), Path.cwd()
            body = {"policy": found}
        else:
            text, name, folder = found
            policy = parse_policy(text, source=name)
            _, at = compose(text, name)
            body = {"text": text, "source": name}
        if check_pipeline:
            check_pipeline_exists(policy, at)
        if isinstance(policy.gates, str):
            # The server reads no file a client names: the gates go inline.
            inline = dataclasses.replace(policy, gates=read_gates(policy.gates, folder, at))
            body = {"policy": inline.to_dict()}
        answer = self.client.put_json(f"{_API}/policies", body)
        return policy_from_dict(answer["policy"], source=f"{policy.model}'s policy")

    def policy(self, model: str) -> RetrainPolicy:
        """``model``'s applied policy."""
        answer = self.client.get_json(f"{_model(model)}/policy")
        return policy_from_dict(answer["policy"], source=f"{model}'s policy")

    def run(
        self, model: str, workspace: Any = None, *, payload: Mapping[str, Any] | None = None
    ) -> TriggerOutcome:
        """A manual trigger; the agent beside the server drives the cycle it starts."""
        del workspace  # the cycle runs beside the server, not here
        return self.request(model, payload=payload)

    def request(self, model: str, *, payload: Mapping[str, Any] | None = None) -> TriggerOutcome:
        """Ask for a cycle of ``model`` (deduplicated on the server as every trigger is)."""
        answer = self.client.request(
            "POST", f"{_model(model)}/run", json={"payload": dict(payload or {})}, idempotent=False
        )
        return decode(TriggerOutcome, answer.json())

    def status(self, model: str) -> Cycle | None:
        """``model``'s newest cycle, None before the first."""
        found = self.client.get_json(f"{_model(model)}/status")["cycle"]
        return None if found is None else decode(Cycle, found)

    def history(self, model: str, *, limit: int | None = 100) -> list[Cycle]:
        """``model``'s cycles, newest first."""
        params = {} if limit is None else {"limit": limit}
        answer = self.client.get_json(f"{_model(model)}/history", params=params)
        return [decode(Cycle, c) for c in answer["cycles"]]

    def cycle(self, cycle_id: str) -> Cycle:
        """One cycle by id."""
        answer = self.client.get_json(f"{_API}/cycles/{quote(cycle_id, safe='')}")
        return decode(Cycle, answer["cycle"])

    def trace(
        self, request_id: str, *, deployment: str | None = None, days: int = TRACE_DAYS
    ) -> Trace:
        """The server's trace of a request id in its prediction log (``days``: how far
        back to look for an id that carries no day, as the service's ``trace``)."""
        params: dict[str, Any] = {"days": days}
        if deployment is not None:
            params["deployment"] = deployment
        answer = self.client.get_json(f"{_API}/trace/{quote(request_id, safe='')}", params=params)
        return decode(Trace, answer)

    def maturity(self, model: str | None = None) -> list[ModelMaturity]:
        """The server's maturity assessment of one model or every model."""
        params = {} if model is None else {"model": model}
        answer = self.client.get_json(f"{_API}/maturity", params=params)
        return [decode(ModelMaturity, m) for m in answer["models"]]
