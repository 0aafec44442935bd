"""Retraining policies and cycles: apply a policy, trigger cycles, drive them.

A policy is checked twice at ``apply``: its shape by :mod:`driftline.retraining.policy`,
then every name it refers to against the workspace (the model, the deployment serving
it, the monitors, the pipeline, the datasets) and whether its approvals can ever be
given. Errors name the field and its line.

Triggers go through :meth:`SqlRetrainingStore.trigger`, which deduplicates in one
transaction: a running cycle absorbs new triggers, the cooldown and the daily cap skip
them. :meth:`Retrainer.advance` moves a cycle one step (see :mod:`.cycles`).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.core.clock import now_ms
from driftline.core.ids import new_id
from driftline.core.yamlfile import Located
from driftline.errors import DriftlineError, NotFoundError
from driftline.retraining.cycles import Cycle, Trigger, TriggerOutcome
from driftline.retraining.policy import RECENT, RetrainPolicy, policy_from_dict

if TYPE_CHECKING:
    from driftline.data import DataService
    from driftline.monitoring import MonitoringService
    from driftline.registry import RegistryService
    from driftline.retraining._sql import SqlRetrainingStore
    from driftline.serving import DeploymentService

__all__ = ["Retrainer"]


class Retrainer:
    """Policies and cycles of one workspace (``RetrainingService`` delegates here)."""

    def __init__(
        self,
        store: SqlRetrainingStore,
        *,
        registry: RegistryService,
        data: DataService,
        monitoring: MonitoringService,
        deployments: DeploymentService,
        user: str,
        approvers: int | None = None,
        lease_ttl: float = 30.0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.data = data
        self.monitoring = monitoring
        self.deployments = deployments
        self.user = user
        #: How many distinct people can approve (None: not known, not checked).
        self.approvers = approvers
        #: Seconds a driver's lease on a training cycle lasts without renewal: how long
        #: a killed driver's cycle waits before another driver settles it.
        self.lease_ttl = lease_ttl
        #: This driver's name in cycle leases (host, pid and a random part).
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"

    # -- policies ---------------------------------------------------------------------

    def apply(self, source: str | Path | Mapping[str, Any]) -> RetrainPolicy:
        """Check a policy (file, YAML text or mapping) against the workspace and store it."""
        from driftline.core.yamlfile import compose
        from driftline.retraining.policy import parse_policy

        folder = Path.cwd()
        if isinstance(source, Mapping):
            policy, at, text = policy_from_dict(dict(source)), Located("policy", {}), ""
        else:
            file = Path(source) if isinstance(source, Path) or "\n" not in source else None
            if file is not None:
                if not file.is_file():
                    raise NotFoundError(f"Policy file {file} does not exist")
                text, name = file.read_text(encoding="utf-8"), file.name
                folder = file.resolve().parent
            else:
                text, name = str(source), "retrain.yaml"
            policy = parse_policy(text, source=name)
            _, at = compose(text, name)
        policy = dataclasses.replace(policy, gates=read_gates(policy.gates, folder, at))
        self.check_references(policy, at)
        self.store.put_policy(policy.model, policy.to_dict(), text, actor=self.user, now=now_ms())
        return policy

    def policy(self, model: str) -> RetrainPolicy:
        """``model``'s applied policy."""
        stored = self.store.get_policy(model)
        if stored is None:
            raise NotFoundError(
                f"Model {model!r} has no retraining policy: write a retrain.yaml and run "
                "driftline retrain apply retrain.yaml"
            )
        return policy_from_dict(stored, source=f"{model}'s policy")

    def check_references(self, policy: RetrainPolicy, at: Located) -> None:
        """Every name the policy uses exists, and its approvals can be given."""

        def missing(field: str, exc: DriftlineError) -> NotFoundError:
            return NotFoundError(f"{at.where(field)}: {field}: {exc}")

        try:
            self.registry.get_model(policy.model)
        except NotFoundError as exc:
            raise missing("model", exc) from None
        assert policy.deployment is not None  # parse_policy requires it
        try:
            deployment = self.deployments.get_deployment(policy.deployment)
        except NotFoundError as exc:
            raise missing("deployment", exc) from None
        served = deployment.spec.model
        if served != policy.model:
            raise at.error(
                "deployment",
                f"deployment {policy.deployment!r} serves model {served!r}, not {policy.model!r}",
            )
        for i, rule in enumerate(policy.triggers):
            where = f"triggers[{i}].{rule.kind}"
            if rule.monitor is not None:
                try:
                    self.monitoring.monitors.get(rule.monitor)
                except NotFoundError as exc:
                    raise missing(f"{where}.monitor", exc) from None
            if "dataset" in rule.settings:
                try:
                    self.data.dataset(str(rule.settings["dataset"]))
                except NotFoundError as exc:
                    raise missing(f"{where}.dataset", exc) from None
        for field, ref in (
            ("evaluate.data", policy.evaluate.data),
            ("evaluate.fallback", policy.evaluate.fallback),
        ):
            if ref is None or ref == RECENT:
                continue
            try:
                self.data.dataset(ref.partition("@")[0])
            except NotFoundError as exc:
                raise missing(field, exc) from None
        try:
            find_pipeline(policy.pipeline.name, policy.pipeline.module)
        except NotFoundError as exc:
            raise missing("pipeline.name", exc) from None
        if self.approvers is not None and policy.approvals > self.approvers:
            raise at.error(
                "approvals",
                f"approvals: {policy.approvals} distinct people must approve, but only "
                f"{self.approvers} can (users with the editor or admin role); lower it or "
                "add users",
            )

    # -- triggers and cycles ----------------------------------------------------------

    def trigger(self, model: str, cause: Trigger, *, now: int | None = None) -> TriggerOutcome:
        """Ask for a cycle of ``model`` (deduplicated, see the module docstring)."""
        policy = self.policy(model)
        return self.store.trigger(
            model,
            cause,
            cooldown_ms=int(policy.cooldown_seconds * 1000),
            max_per_day=policy.max_cycles_per_day,
            actor=self.user,
            now=now_ms() if now is None else now,
        )

    def advance(self, model: str, workspace: Any) -> Cycle | None:
        """Move ``model``'s open cycle as far as it can go now (see
        :mod:`driftline.retraining.driver`); None when no cycle is open."""
        from driftline.retraining.driver import advance_cycle

        self.policy(model)
        found = self.store.cycles(model, open_only=True, limit=1)
        return advance_cycle(self, found[0], workspace) if found else None

    def run(
        self, model: str, workspace: Any, *, payload: Mapping[str, Any] | None = None
    ) -> TriggerOutcome:
        """A manual trigger (``driftline retrain run``): ask for a cycle and drive it."""
        outcome = self.trigger(model, Trigger("manual", self.user, dict(payload or {})))
        if outcome.cycle is None:
            return outcome
        cycle = self.advance(model, workspace)
        return dataclasses.replace(outcome, cycle=cycle)

    def status(self, model: str) -> Cycle | None:
        """``model``'s newest cycle (running or not), None before the first."""
        self.policy(model)
        found = self.store.cycles(model, limit=1)
        return found[0] if found else None

    def history(self, model: str, *, limit: int | None = 100) -> list[Cycle]:
        """``model``'s cycles, newest first."""
        self.policy(model)
        return self.store.cycles(model, limit=limit)


def read_gates(gates: Any, folder: Path, at: Located) -> dict[str, Any] | None:
    """The policy's ``gates`` as the mapping the registry's gate code reads: a file is
    read (relative to ``folder``, where the policy file is) and stored with the policy,
    so a cycle judges by the gates applied, wherever the agent runs."""
    import yaml

    from driftline.registry import parse_gates

    if gates is None:
        return None
    if isinstance(gates, str):
        path = folder / gates
        if not path.is_file():
            raise at.error("gates", f"gates: the gates file {gates} does not exist in {folder}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise at.error("gates", f"gates: {gates} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise at.error("gates", f"gates: {gates} must hold a mapping (gates: [...])")
        gates = loaded
    try:
        parse_gates(gates)
    except DriftlineError as exc:
        raise at.error("gates", f"gates: {exc}") from None
    return dict(gates)


def find_pipeline(name: str, module: str | None) -> Any:
    """The registered pipeline ``name`` (importing ``module``, or the default file)."""
    from driftline.pipelines import discover, get_pipeline, list_pipelines

    if module is not None or name not in {p.name for p in list_pipelines()}:
        try:
            discover(module)
        except NotFoundError:
            if module is not None or not list_pipelines():
                raise
    return get_pipeline(name)
