"""Retraining policies and cycles: apply a policy, trigger cycles, drive them.

A policy is checked twice at ``apply``: its shape by :mod:`driftline.retraining.policy`,
then every name it refers to against the workspace (the model, the deployment serving
it, the monitors, the pipeline, the datasets) and whether its approvals can ever be
given. Errors name the field and its line.

Triggers go through :meth:`SqlRetrainingStore.trigger`, which deduplicates in one
transaction: a running cycle absorbs new triggers, the cooldown and the daily cap skip
them. :meth:`Retrainer.advance` moves a cycle one step (see :mod:`.cycles`).

Every transition goes through :meth:`Retrainer.transition`, the one place that tells
people of an outcome (see :mod:`.policy` for the channels): after the transition's
transaction, by the driver that won it. A channel that misses it never changes the
outcome: it is recorded as a ``retraining.cycle.notify_failed`` audit entry of the cycle.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.core.clock import now_ms
from driftline.core.notify import DeliveryPolicy, Event, notify, undelivered
from driftline.core.yamlfile import Located
from driftline.errors import DriftlineError, NotFoundError
from driftline.retraining.cycles import Cycle, CycleState, Trigger, TriggerOutcome
from driftline.retraining.policy import RECENT, RetrainPolicy, policy_from_dict

if TYPE_CHECKING:
    from driftline.data import DataService
    from driftline.monitoring import MonitoringService
    from driftline.registry import RegistryService
    from driftline.retraining._sql import SqlRetrainingStore
    from driftline.serving import DeploymentService

__all__ = ["NOTIFIED", "Retrainer", "cycle_event"]

log = logging.getLogger("driftline.retraining")

#: The states people are told of: the outcomes, and a cycle waiting for approvals.
NOTIFIED = frozenset(
    {
        CycleState.PROMOTED,
        CycleState.REJECTED,
        CycleState.ROLLED_BACK,
        CycleState.FAILED,
        CycleState.AWAITING_APPROVAL,
    }
)


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
    ) -> None:
        self.store = store
        self.registry = registry
        self.data = data
        self.monitoring = monitoring
        self.deployments = deployments
        self.user = user
        #: How many distinct people can approve (None: not known, not checked).
        self.approvers = approvers
        #: How hard an outcome's webhooks are tried.
        self.delivery = DeliveryPolicy()

    # -- policies ---------------------------------------------------------------------

    def apply(self, source: str | Path | Mapping[str, Any]) -> RetrainPolicy:
        """Check a policy (file, YAML text or mapping) against the workspace and store it."""
        from driftline.core.yamlfile import compose
        from driftline.retraining.policy import parse_policy

        if isinstance(source, Mapping):
            policy, at, text = policy_from_dict(dict(source)), Located("policy", {}), ""
        else:
            file = Path(source) if isinstance(source, Path) or "\n" not in source else None
            if file is not None:
                if not file.is_file():
                    raise NotFoundError(f"Policy file {file} does not exist")
                text, name = file.read_text(encoding="utf-8"), file.name
            else:
                text, name = str(source), "retrain.yaml"
            policy = parse_policy(text, source=name)
            _, at = compose(text, name)
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

    def transition(
        self, cycle: Cycle, to: CycleState, *, now: int | None = None, **products: Any
    ) -> Cycle:
        """Move ``cycle`` to ``to`` (the store's compare-and-set, audited), then tell the
        policy's channels when it reached one of :data:`NOTIFIED`."""
        moved = self.store.transition(
            cycle, to, actor=self.user, now=now_ms() if now is None else now, **products
        )
        if moved.state in NOTIFIED:
            self.announce(moved)
        return moved

    def channels(self, policy: RetrainPolicy) -> tuple[str, ...]:
        """Where ``policy``'s outcomes go: its ``notify`` list, else the channels of the
        monitors its triggers name (a monitor deleted since is skipped)."""
        if policy.notify is not None:
            return policy.notify
        found: list[str] = []
        for name in dict.fromkeys(r.monitor for r in policy.triggers if r.monitor):
            try:
                found += self.monitoring.monitors.get(name).channels
            except NotFoundError:
                log.warning("policy of %s: monitor %s is gone; not notified", policy.model, name)
        return tuple(dict.fromkeys(found))

    def announce(self, cycle: Cycle) -> None:
        """Send ``cycle``'s state to its policy's channels; record the ones that missed it.

        Never raises: the transition is stored, and telling people must not undo it."""
        try:
            channels = self.channels(self.policy(cycle.model))
        except DriftlineError as exc:
            log.warning("cycle %s (%s): no channels to notify: %s", cycle.id, cycle.model, exc)
            return
        event = cycle_event(cycle)
        missed = undelivered(event, notify(channels, event, self.delivery))
        if missed is None:
            return
        try:
            self.store.note(
                cycle.id, action="retraining.cycle.notify_failed", actor=self.user, details=missed
            )
        except DriftlineError as exc:
            log.warning("could not record that %s: %s", missed["message"], exc)

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


def cycle_event(cycle: Cycle) -> Event:
    """The notification of the state ``cycle`` reached (its key: ``<cycle id>:<state>``).

    The body is the cycle (``Cycle.to_dict``: model, state, cause, run, version,
    rollout, report, reason) under ``cycle``, with the model and state next to it.
    """
    state = cycle.state.value
    version = f" v{cycle.version}" if cycle.version is not None else ""
    return Event(
        kind=f"retraining.cycle.{state}",
        key=f"{cycle.id}:{state}",
        summary=f"driftline retraining {cycle.model}{version}: cycle {cycle.id} "
        f"{state.replace('_', ' ')}" + (f": {cycle.reason}" if cycle.reason else ""),
        body={"model": cycle.model, "state": state, "cycle": cycle.to_dict()},
        source="retraining",
    )


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
