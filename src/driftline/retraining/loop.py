"""Retraining policies and cycles: apply a policy, trigger cycles, drive them.

A policy is checked twice at ``apply``: its shape by :mod:`driftline.retraining.policy`,
then every name it refers to against the workspace (the model, the deployment serving
it, the monitors, the pipeline, the datasets) and whether its approvals can ever be
given. Errors name the field and its line.

Triggers go through :meth:`SqlRetrainingStore.trigger`, which deduplicates in one
transaction: a running cycle absorbs new triggers, the cooldown and the daily cap skip
them. What makes a policy's triggers fire is :mod:`.triggers` (alert thresholds) and
:mod:`.watch` (alerts, new dataset versions, cron due times, looked at by the agent).
:meth:`Retrainer.advance` moves a cycle one step (see :mod:`.cycles`).

Every transition goes through :meth:`Retrainer.transition`, the one place that tells
people of an outcome (see :mod:`.policy` for the channels): after the transition's
transaction, by the driver that won it. A channel that misses it never changes the
outcome: it is recorded as a ``retraining.cycle.notify_failed`` audit entry of the cycle.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from driftline.core.clock import now_ms
from driftline.core.ids import new_id
from driftline.core.notify import DeliveryPolicy, Event, announce
from driftline.core.yamlfile import Located
from driftline.errors import DriftlineError, InvalidArgumentError, NotFoundError
from driftline.retraining.approvers import how_to_allow, waiting_note
from driftline.retraining.cycles import CursorMove, Cycle, CycleState, Trigger, TriggerOutcome
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
        approvers: Callable[[str], list[str] | None] | None = None,
        lease_ttl: float = 30.0,
        delivery: DeliveryPolicy | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.data = data
        self.monitoring = monitoring
        self.deployments = deployments
        self.user = user
        #: Who may approve a model's versions, by name (see :mod:`.approvers`); the
        #: callable answers None, or is None, when that is not restricted.
        self.approvers = approvers
        #: Whether the caller reading through this object may approve a model's
        #: versions (a team server's caller, see :meth:`acting_as`); None: whoever
        #: opened the workspace, who may.
        self.caller_approves: Callable[[str], bool] | None = None
        #: Seconds a driver's lease on a training cycle lasts without renewal: how long
        #: a killed driver's cycle waits before another driver settles it.
        self.lease_ttl = lease_ttl
        #: This driver's name in cycle leases (host, pid and a random part).
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"
        #: How hard an outcome's webhooks are tried, and where they may go.
        self.delivery = delivery or DeliveryPolicy()

    def acting_as(self, user: str, *, approves: Callable[[str], bool] | None = None) -> Retrainer:
        """The same policies and cycles, recorded as done by ``user`` (a server's caller);
        ``approves(model)``: whether that caller may approve ``model``'s versions, which
        decides whether a cycle awaiting approval names who else may (see
        :mod:`.approvers`)."""
        other = copy.copy(self)
        other.user = user
        other.caller_approves = approves
        return other

    def leasing_for(self, ttl: float) -> Retrainer:
        """The same driver (same lease holder), whose cycle leases last ``ttl`` seconds."""
        if not ttl > 0:
            raise InvalidArgumentError(
                f"A cycle lease lasts a positive number of seconds, not {ttl}"
            )
        other = copy.copy(self)
        other.lease_ttl = ttl
        return other

    # -- policies ---------------------------------------------------------------------

    def apply(
        self, source: str | Path | Mapping[str, Any], *, check_pipeline: bool = True
    ) -> RetrainPolicy:
        """Check a policy (file, YAML text or mapping) against the workspace and store it.

        ``check_pipeline=False`` leaves the pipeline unchecked: a team server does not
        import pipeline code, its clients check it next to the code (see
        :mod:`driftline.retraining._http`).
        """
        found = policy_source(source)
        if isinstance(found, dict):
            return self.apply_mapping(found, check_pipeline=check_pipeline, folder=Path.cwd())
        text, name, folder = found
        return self.apply_text(text, name, check_pipeline=check_pipeline, folder=folder)

    def apply_text(
        self,
        text: str,
        name: str = "retrain.yaml",
        *,
        check_pipeline: bool = True,
        folder: Path | None = None,
    ) -> RetrainPolicy:
        """Apply a policy given as YAML text (``name`` is what errors call it).

        ``folder``: where a ``gates`` file name is read from; None (a server applying
        what a client sent) refuses file names, so a caller cannot make the server read
        its files: the client sends the gates inline (see :func:`read_gates`).
        """
        from driftline.core.yamlfile import compose
        from driftline.retraining.policy import parse_policy

        policy = parse_policy(text, source=name)
        _, at = compose(text, name)
        return self._store(policy, at, text, check_pipeline, folder)

    def apply_mapping(
        self,
        source: Mapping[str, Any],
        *,
        check_pipeline: bool = True,
        folder: Path | None = None,
    ) -> RetrainPolicy:
        """Apply a policy given as a mapping (the YAML structure as JSON); ``folder`` as
        for :meth:`apply_text`."""
        policy = policy_from_dict(dict(source))
        return self._store(policy, Located("policy", {}), "", check_pipeline, folder)

    def _store(
        self,
        policy: RetrainPolicy,
        at: Located,
        text: str,
        check_pipeline: bool,
        folder: Path | None,
    ) -> RetrainPolicy:
        from driftline.retraining.watch import first_cursors

        policy = dataclasses.replace(policy, gates=read_gates(policy.gates, folder, at))
        stored = self.store.get_policy(policy.model)
        # this process's webhook_allow, on the channels a re-applied policy adds
        self.delivery.allow.check_new(
            policy.notify or (), (stored or {}).get("notify") or (), "notify", at
        )
        self.check_references(policy, at, check_pipeline=check_pipeline)
        now = now_ms()
        self.store.put_policy(
            policy.model, policy.to_dict(), text, actor=self.user, now=now,
            cursors=first_cursors(policy, self.data, now),
        )  # fmt: skip
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

    def check_references(
        self, policy: RetrainPolicy, at: Located, *, check_pipeline: bool = True
    ) -> None:
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
        if check_pipeline:
            check_pipeline_exists(policy, at)
        self._check_approvers(policy, at)

    def _check_approvers(self, policy: RetrainPolicy, at: Located) -> None:
        """``approvals: N`` needs N people who may approve (see :mod:`.approvers`)."""
        if not policy.approvals or self.approvers is None:
            return
        names = self.approvers(policy.model)
        if names is None or len(names) >= policy.approvals:
            return
        can = f"only {len(names)} can ({', '.join(names)})" if names else "no one can"
        raise at.error(
            "approvals",
            f"approvals: {policy.approvals} distinct people must approve, but {can}; "
            f"{how_to_allow(policy.model)}. Lower approvals or grant it",
        )

    # -- triggers and cycles ----------------------------------------------------------

    def trigger(
        self,
        model: str,
        cause: Trigger,
        *,
        now: int | None = None,
        cursor: CursorMove | None = None,
    ) -> TriggerOutcome:
        """Ask for a cycle of ``model`` (deduplicated, see the module docstring);
        ``cursor``: what the trigger consumes, moved in the same transaction."""
        policy = self.policy(model)
        return self.store.trigger(
            model,
            cause,
            cooldown_ms=int(policy.cooldown_seconds * 1000),
            max_per_day=policy.max_cycles_per_day,
            actor=self.user,
            now=now_ms() if now is None else now,
            cursor=cursor,
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
        announce(
            channels, cycle_event(cycle), self.delivery,
            lambda missed: self.store.note(
                cycle.id, action="retraining.cycle.notify_failed", actor=self.user,
                details=missed,
            ),
        )  # fmt: skip

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
        outcome = self.request(model, payload=payload)
        if outcome.cycle is None:
            return outcome
        cycle = self.advance(model, workspace)
        return dataclasses.replace(outcome, cycle=self.explained(cycle))

    def request(self, model: str, *, payload: Mapping[str, Any] | None = None) -> TriggerOutcome:
        """A manual trigger that only asks for the cycle: whatever drives cycles (the
        agent beside a team server) runs it."""
        outcome = self.trigger(model, Trigger("manual", self.user, dict(payload or {})))
        return dataclasses.replace(outcome, cycle=self.explained(outcome.cycle))

    def status(self, model: str) -> Cycle | None:
        """``model``'s newest cycle (running or not), None before the first."""
        self.policy(model)
        found = self.store.cycles(model, limit=1)
        return self.explained(found[0]) if found else None

    def history(self, model: str, *, limit: int | None = 100) -> list[Cycle]:
        """``model``'s cycles, newest first."""
        self.policy(model)
        return [self.explained(c) for c in self.store.cycles(model, limit=limit)]

    def cycle(self, cycle_id: str) -> Cycle:
        """One cycle by id."""
        return self.explained(self.store.get_cycle(cycle_id))

    @overload
    def explained(self, cycle: Cycle) -> Cycle: ...
    @overload
    def explained(self, cycle: None) -> None: ...

    def explained(self, cycle: Cycle | None) -> Cycle | None:
        """``cycle`` as read; one awaiting approval also says, in its reason, who approved
        and who else may (as of now: users and grants change while it waits), naming
        them only to a caller who may approve too (to others: how many)."""
        if cycle is None or cycle.state is not CycleState.AWAITING_APPROVAL:
            return cycle
        if cycle.version is None:
            return cycle
        try:
            policy = self.policy(cycle.model)
            assert policy.deployment is not None
            alias = self.deployments.get_deployment(policy.deployment).spec.stable_alias
            approved = {a.actor for a in self.registry.approvals(cycle.model, cycle.version, alias)}
            names = self.approvers(cycle.model) if self.approvers is not None else None
            approves = self.caller_approves
            named = approves is None or approves(cycle.model)
        except DriftlineError:
            return cycle  # the stored reason stands; reading must not fail on a note
        note = waiting_note(policy.approvals, approved, names, self.user, named=named)
        reason = f"{cycle.reason}; {note}" if cycle.reason else note
        return dataclasses.replace(cycle, reason=reason)


def policy_source(
    source: str | Path | Mapping[str, Any],
) -> tuple[str, str, Path] | dict[str, Any]:
    """What ``apply`` was given: (YAML text, the name errors use, the folder a ``gates``
    file name is read from) of a file or of text, or a mapping as a dict. A string
    without a newline is a file name."""
    if isinstance(source, Mapping):
        return dict(source)
    file = Path(source) if isinstance(source, Path) or "\n" not in source else None
    if file is None:
        return str(source), "retrain.yaml", Path.cwd()
    if not file.is_file():
        raise NotFoundError(f"Policy file {file} does not exist")
    return file.read_text(encoding="utf-8"), file.name, file.resolve().parent


def check_pipeline_exists(policy: RetrainPolicy, at: Located) -> None:
    """The policy's pipeline is registered (importing its module): ``NotFoundError``
    naming ``pipeline.name`` and its line otherwise."""
    try:
        find_pipeline(policy.pipeline.name, policy.pipeline.module)
    except NotFoundError as exc:
        raise NotFoundError(f"{at.where('pipeline.name')}: pipeline.name: {exc}") from None


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


def read_gates(gates: Any, folder: Path | None, at: Located) -> dict[str, Any] | None:
    """The policy's ``gates`` as the mapping the registry's gate code reads: a file is
    read (relative to ``folder``, where the policy file is) and stored with the policy,
    so a cycle judges by the gates applied, wherever the agent runs. ``folder=None``
    refuses a file name (a server reads no file a caller names)."""
    import yaml

    from driftline.registry import parse_gates

    if gates is None:
        return None
    if isinstance(gates, str):
        if folder is None:
            raise at.error(
                "gates",
                f"gates: {gates} is a file name; send the gates inline (driftline retrain "
                "apply reads the file next to the policy and sends its content)",
            )
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
