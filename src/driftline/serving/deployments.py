"""The rules of deployments: apply a spec, pause, resume, roll back, and drive a canary.

A deployment record (:class:`~driftline.serving.models.Deployment`) is what every
serving process of a deployment reads to route (``driftline serve --deployment``), so
the rollout is shared: each process follows the same weights. Every change goes
through :meth:`DeploymentStore.save_deployment`, a compare-and-set on the record's
``generation`` written with its audit entry in one transaction.

Applying resolves the stable, canary and shadow versions in the registry (an alias or
a number that does not exist is refused), pins the canary and shadow to version
numbers (what was checked is what is served), and runs the spec's quality gates on the
canary with the registry's own gate code: a canary that fails them is refused.

The canary (:meth:`DeploymentService.tick`, called by every serving process of the
deployment, see :mod:`driftline.serving.controller`): when a check is due, one process
claims it by moving ``next_check_at`` (compare-and-set: exactly one process drives a
check), judges the canary against stable over the window since the step started
(:func:`driftline.serving.analysis.judge`, from the prediction log every process
writes), and records the outcome:

- ``wait``: too little traffic in the window; the window keeps growing;
- ``pass``: the next step (a new window), or, after the last step, promotion: the
  stable alias moves to the canary's version through the registry (its approval
  policy and the spec's gates apply; a refused promotion pauses the rollout). A step
  of 100 percent is the promotion itself: stable would have no traffic to compare with;
- ``fail``: one more failed check (a new window); ``max_failed_checks`` consecutive
  failures roll back at once (canary weight 0, state ``rolled_back``).

Stages after serving add checks to every canary check through the extension point
:data:`~driftline.serving.analysis.CANARY_CHECKS` (the monitoring stage's live metric
from labels): the service asks for them (``canary_checks``) when a check is due.

``status`` and ``compare`` read the prediction log; a remote workspace asks its server
for them (``figures``), whose artifact store holds the log the serving processes write.

Every step, promotion, rollback, pause and resume is an audit entry (entity type
``deployment``); claims and ``wait`` outcomes are bookkeeping, not audited.

Notifications: a promotion and a rollback (by the checks, by hand, or of a canary that
cannot load) are sent as an event (:func:`rollout_event`) to the spec's ``alerts``
channels through :mod:`driftline.core.notify`. Only the process whose compare-and-set
won the transition sends it, after the transaction, so a slow or dead webhook never
holds a write nor races another process; a channel that did not get it is recorded as a
``deploy_notify_failed`` entry of the deployment's history.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.core.clock import utcnow
from driftline.core.notify import DeliveryPolicy, Event, announce
from driftline.errors import (
    ConflictError,
    DriftlineError,
    InvalidArgumentError,
    NotFoundError,
)
from driftline.serving.models import (
    ACTIVE_ROLLOUT_STATES,
    Deployment,
    DeploymentSpec,
    Rollout,
    RolloutState,
    version_target,
)

if TYPE_CHECKING:
    from driftline.core.audit import AuditEntry
    from driftline.models import ModelCache
    from driftline.registry import RegistryService
    from driftline.serving.analysis import CanaryCheck
    from driftline.serving.store import DeploymentFigures, DeploymentStore

__all__ = ["DeploymentService", "rollout_event"]

log = logging.getLogger("driftline.serving")

#: Audit actions whose transition is announced to the spec's alert channels.
ANNOUNCED = {"deploy_promote": "promoted", "deploy_rollback": "rolled_back"}


class DeploymentService:
    """Deployment records and their rollouts (see the module docstring).

    Example:
        >>> service = ws.service("serving", DeploymentService)            # doctest: +SKIP
        >>> service.apply("deploy.yaml").rollout.state                    # doctest: +SKIP
        'progressing'
    """

    def __init__(
        self,
        store: DeploymentStore,
        *,
        registry: RegistryService,
        cache: ModelCache,
        prediction_root: str,
        user: str,
        canary_checks: Callable[[], Sequence[CanaryCheck]] | None = None,
        figures: DeploymentFigures | None = None,
        delivery: DeliveryPolicy | None = None,
    ) -> None:
        self._store = store
        self.registry = registry
        self.cache = cache
        self.prediction_root = prediction_root
        self.user = user
        self.canary_checks = canary_checks or (lambda: ())
        self.figures = figures
        #: How hard a rollout notification's webhooks are tried, and where they may go.
        self.delivery = delivery or DeliveryPolicy()

    def check_alerts(self, spec: DeploymentSpec, existing: DeploymentSpec | None = None) -> None:
        """Refuse the spec's webhooks that this process's ``webhook_allow`` setting does
        not allow; with ``existing`` (the stored spec), only the channels it did not
        have (:meth:`~driftline.core.destinations.WebhookAllow.check_new`): a record
        stored before the setting changed still moves through its rollout. :meth:`apply`
        and the server's record route both check this way.

        Raises:
            InvalidArgumentError: Naming the channel (``alerts[i]``) and the setting.
        """
        self.delivery.allow.check_new(spec.alerts, existing.alerts if existing else ())

    def acting_as(self, user: str) -> DeploymentService:
        """The same service, recording ``user`` as who acts (a server's caller)."""
        return DeploymentService(
            self._store, registry=self.registry, cache=self.cache,
            prediction_root=self.prediction_root, user=user,
            canary_checks=self.canary_checks, figures=self.figures, delivery=self.delivery,
        )  # fmt: skip

    @property
    def store(self) -> DeploymentStore:
        """The records' store (SQL, or a server's over HTTP)."""
        return self._store

    # -- reading --------------------------------------------------------------------

    def find_deployment(self, name: str) -> Deployment | None:
        """The deployment called ``name``, or ``None``."""
        return self.store.find_deployment(name)

    def get_deployment(self, name: str) -> Deployment:
        """The deployment called ``name``; ``NotFoundError`` suggests near names."""
        found = self.store.find_deployment(name)
        if found is None:
            names = [d.name for d in self.store.list_deployments()]
            near = difflib.get_close_matches(name, names, n=3)
            raise NotFoundError(
                f"No deployment {name!r}"
                + (f"; did you mean {', '.join(map(repr, near))}?" if near else "")
                + " (create one with `driftline deploy apply deploy.yaml`)"
            )
        return found

    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""
        return self.store.list_deployments()

    def history(self, name: str, *, limit: int | None = 100) -> list[AuditEntry]:
        """The audit entries of a deployment, newest first."""
        self.get_deployment(name)
        return self.store.history(name, limit)

    def predictions(
        self, name: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> Any:
        """The prediction log of ``name`` in ``[since, until)`` as an Arrow table."""
        from driftline.serving.predlog import read_predictions

        return read_predictions(self.prediction_root, name, since=since, until=until)

    def status(self, name: str, *, window: float = 300.0) -> dict[str, Any]:
        """The record, the weights, and each variant's figures over the last ``window``
        seconds of the prediction log."""
        from driftline.api.codec import encode
        from driftline.serving.analysis import variant_figures

        if self.figures is not None:
            return self.figures.status(name, window)
        deployment = self.get_deployment(name)
        now = utcnow()
        figures = variant_figures(
            self.predictions(name, since=now - timedelta(seconds=window), until=now)
        )
        weight = deployment.canary_weight
        return {
            "name": deployment.name,
            "model": deployment.spec.model,
            "state": str(deployment.rollout.state),
            "generation": deployment.generation,
            "weights": {"stable": 100 - weight, "canary": weight},
            "variants": {str(v): t.ref for v, t in deployment.targets().items()},
            "step": deployment.rollout.step,
            "steps": list(deployment.spec.canary.steps) if deployment.spec.canary else [],
            "failed_checks": deployment.rollout.failed_checks,
            "message": deployment.rollout.message,
            "last_check": deployment.rollout.last_check,
            "next_check_at": encode(deployment.rollout.next_check_at),
            "window_seconds": window,
            "figures": {v: f.to_dict() for v, f in figures.items()},
            "spec": encode(deployment.spec),
        }

    def compare(
        self, name: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, Any]:
        """Figures per variant and agreement between variants on shared requests."""
        from driftline.serving.analysis import compare_variants

        if self.figures is not None:
            return self.figures.compare(name, since, until)
        self.get_deployment(name)
        return compare_variants(self.predictions(name, since=since, until=until))

    # -- changing -------------------------------------------------------------------

    def apply(
        self, spec: DeploymentSpec | Mapping[str, Any] | str | Path, *, expected: int | None = None
    ) -> Deployment:
        """Create or update a deployment from a spec (a record, a dict, or a YAML file).

        A changed canary starts a new rollout at its first step; applying the same
        spec again changes nothing (and writes no audit entry). ``expected``: the
        generation the caller read the deployment at; a ``ConflictError`` when it has
        changed since (None applies over whatever is there).

        Raises:
            InvalidArgumentError: The spec is invalid (the field and line are named).
            NotFoundError: The model, or a version or alias it names, does not exist.
            GateFailedError: The canary fails the spec's quality gates (409).
        """
        from driftline.api.codec import encode
        from driftline.serving.spec import load_spec, spec_from_dict

        if isinstance(spec, str | Path):
            spec = load_spec(spec)
        elif not isinstance(spec, DeploymentSpec):
            spec = spec_from_dict(spec)
        existing = self.store.find_deployment(spec.name)
        # Only channels the stored spec did not have: an existing webhook whose host
        # briefly fails to resolve must not fail a re-apply (e.g. a retraining cycle's).
        self.check_alerts(spec, existing.spec if existing is not None else None)
        stable = self._resolve(spec.model, spec.stable, "stable")
        canary = shadow = None
        if spec.canary is not None:
            canary = self._resolve(spec.model, spec.canary.version, "canary")
            if canary == stable:
                raise InvalidArgumentError(
                    f"The canary {spec.model}/{canary} is the stable version already; "
                    "nothing to roll out"
                )
        if spec.shadow is not None:
            shadow = self._resolve(spec.model, spec.shadow.version, "shadow")
        _check_generation(spec.name, existing, expected)
        if existing is not None and existing.spec.model != spec.model:
            raise ConflictError(
                f"Deployment {spec.name!r} serves model {existing.spec.model!r}, not "
                f"{spec.model!r}; pick another name"
            )
        same_canary = (
            existing is not None
            and existing.spec.canary == spec.canary
            and existing.rollout.canary_version == canary
        )
        if (
            existing is not None
            and same_canary
            and existing.spec == spec
            and existing.rollout.shadow_version == shadow
        ):
            return existing
        if canary is not None and spec.gates and not same_canary:
            self._check_gates(spec, canary)
        now = utcnow()
        if existing is not None and same_canary:
            rollout = dataclasses.replace(existing.rollout, shadow_version=shadow)
        elif spec.canary is not None:
            rollout = Rollout(
                state=RolloutState.PROGRESSING,
                canary_version=canary,
                shadow_version=shadow,
                window_start=now,
                next_check_at=now + timedelta(seconds=spec.canary.interval),
                message=f"canary {spec.model}/{canary} takes {spec.canary.steps[0]}%",
            )
        else:
            rollout = Rollout(
                state=RolloutState.STABLE,
                shadow_version=shadow,
                message=f"{spec.model}/{stable} takes all traffic",
            )
        record = Deployment(
            spec=spec,
            rollout=rollout,
            generation=0 if existing is None else existing.generation,
            created_at=now if existing is None else existing.created_at,
            updated_at=now,
            updated_by=self.user,
        )
        return self._save(
            record,
            expected=None if existing is None else existing.generation,
            action="deploy_apply",
            details={"spec": encode(spec), "stable_version": stable},
        )

    def _resolve(self, model: str, version: str, role: str) -> int:
        ref = version_target(model, version).ref
        try:
            return self.registry.get_version(ref).version
        except NotFoundError as exc:
            raise NotFoundError(f"The {role} version {ref} does not exist: {exc}") from None

    def _check_gates(self, spec: DeploymentSpec, canary: int) -> None:
        from driftline.registry import check_gates

        # Regression gates compare with the holder of the stable alias; a stable given
        # as a number has no holder to compare with (those gates then pass, saying so).
        alias = spec.stable_alias or "stable"
        check_gates(self.registry, spec.model, canary, alias, gates=spec.gates, cache=self.cache)

    def _transition(
        self,
        name: str,
        allowed: tuple[RolloutState, ...],
        action: str,
        change: Any,
        refusal: str,
    ) -> Deployment:
        deployment = self.get_deployment(name)
        if deployment.rollout.state not in allowed:
            raise ConflictError(f"Deployment {name!r} is {deployment.rollout.state}: {refusal}")
        updated = dataclasses.replace(deployment, rollout=change(deployment.rollout, deployment))
        return self._save(updated, expected=deployment.generation, action=action)

    def _save(
        self,
        record: Deployment,
        *,
        expected: int | None,
        action: str | None,
        details: dict[str, Any] | None = None,
    ) -> Deployment:
        """Every write of the service: the store's compare-and-set, then (only for the
        writer that won it, after its transaction) the notification of a promotion or a
        rollback."""
        saved = self.store.save_deployment(
            record, expected=expected, actor=self.user, action=action, details=details
        )
        if action in ANNOUNCED and saved.spec.alerts:
            self._announce(saved, ANNOUNCED[action], details or {})
        return saved

    def _announce(self, deployment: Deployment, outcome: str, details: dict[str, Any]) -> None:
        """Send the rollout event to the spec's channels; record the ones that missed it.

        Never raises: the transition is stored already, and a notification must not
        undo or hide it (a history that cannot be written either is logged)."""
        stable = self._stable_version(deployment) if outcome == "rolled_back" else None
        announce(
            deployment.spec.alerts, rollout_event(deployment, outcome, details, stable=stable),
            self.delivery,
            lambda missed: self.store.note(
                deployment.name, actor=self.user, action="deploy_notify_failed", details=missed
            ),
        )  # fmt: skip

    def _stable_version(self, deployment: Deployment) -> int | None:
        """The version stable serves now (None when the registry cannot say)."""
        try:
            return self.registry.get_version(deployment.spec.stable_target.ref).version
        except DriftlineError:
            return None

    def pause(self, name: str) -> Deployment:
        """Freeze a progressing rollout at its current split (no checks, no steps)."""
        return self._transition(
            name,
            (RolloutState.PROGRESSING,),
            "deploy_pause",
            lambda r, d: dataclasses.replace(
                r,
                state=RolloutState.PAUSED,
                message=f"paused by {self.user} at {d.canary_weight}% canary",
            ),
            "only a progressing rollout can be paused",
        )

    def resume(self, name: str) -> Deployment:
        """Resume a paused rollout: checks start again, with a fresh window."""
        now = utcnow()

        def change(r: Rollout, d: Deployment) -> Rollout:
            assert d.spec.canary is not None  # a paused rollout has a canary
            return dataclasses.replace(
                r,
                state=RolloutState.PROGRESSING,
                window_start=now,
                next_check_at=now + timedelta(seconds=d.spec.canary.interval),
                message=f"resumed by {self.user} at {d.canary_weight}% canary",
            )

        return self._transition(
            name, (RolloutState.PAUSED,), "deploy_resume", change,
            "only a paused rollout can be resumed",
        )  # fmt: skip

    def rollback(
        self, name: str, *, reason: str | None = None, expected: int | None = None
    ) -> Deployment:
        """Take the canary out of traffic now (or, after a promotion to an alias, move
        the alias back to the version it held before). ``expected`` as for :meth:`apply`:
        what the caller saw is what is rolled back, or a ``ConflictError``."""
        deployment = self.get_deployment(name)
        _check_generation(name, deployment, expected)
        alias = deployment.spec.stable_alias
        if deployment.rollout.state == RolloutState.PROMOTED and alias is not None:
            move = self.registry.rollback(deployment.spec.model, alias)
            return self._save_rolled_back(
                deployment,
                f"rolled back by {self.user}: {deployment.spec.model}@{alias} "
                f"back to v{move.version}" + (f" ({reason})" if reason else ""),
            )
        if deployment.rollout.state not in ACTIVE_ROLLOUT_STATES:
            raise ConflictError(
                f"Deployment {name!r} is {deployment.rollout.state}: nothing to roll back"
            )
        return self._save_rolled_back(
            deployment, f"rolled back by {self.user}" + (f": {reason}" if reason else "")
        )

    def _save_rolled_back(self, deployment: Deployment, message: str) -> Deployment:
        rollout = dataclasses.replace(
            deployment.rollout, state=RolloutState.ROLLED_BACK, message=message
        )
        return self._save(
            dataclasses.replace(deployment, rollout=rollout),
            expected=deployment.generation,
            action="deploy_rollback",
        )

    def report_failure(self, name: str, variant: str, ref: str, error: str) -> Deployment | None:
        """Record that a serving process could not load (or warm) ``ref`` as ``variant``.

        A canary that cannot load is rolled back at once (it would take no traffic, so
        its checks could only wait); for stable and shadow the old version keeps serving
        and the failure is recorded. One audit entry per failure: the first process to
        report it wins the compare-and-set, the others' reports are dropped.
        """
        deployment = self.store.find_deployment(name)
        if deployment is None:
            return None
        message = f"{variant} {ref} could not be loaded in a serving process: {error}"
        if deployment.rollout.message == message:
            return None  # reported already
        rollout = dataclasses.replace(deployment.rollout, message=message)
        action = "deploy_load_failed"
        if variant == "canary" and deployment.rollout.state in ACTIVE_ROLLOUT_STATES:
            rollout = dataclasses.replace(rollout, state=RolloutState.ROLLED_BACK)
            action = "deploy_rollback"
        try:
            return self._save(
                dataclasses.replace(deployment, rollout=rollout),
                expected=deployment.generation,
                action=action,
                details={"variant": variant, "version": ref, "error": error},
            )
        except ConflictError:
            return None

    # -- the canary controller ------------------------------------------------------

    def tick(self, name: str, *, now: datetime | None = None) -> Deployment | None:
        """Drive the rollout one check if one is due and no other process claimed it.

        Returns the record this call wrote its outcome to, or ``None`` when there was
        nothing to do (see the module docstring).
        """
        from driftline.serving.analysis import CanaryWindow, judge, with_contributed

        now = now or utcnow()
        deployment = self.store.find_deployment(name)
        if deployment is None or deployment.rollout.state != RolloutState.PROGRESSING:
            return None
        canary, rollout = deployment.spec.canary, deployment.rollout
        if canary is None or (rollout.next_check_at is not None and now < rollout.next_check_at):
            return None
        claim = dataclasses.replace(
            deployment,
            rollout=dataclasses.replace(
                rollout, next_check_at=now + timedelta(seconds=canary.interval)
            ),
        )
        try:
            claimed = self._save(claim, expected=deployment.generation, action=None)
        except ConflictError:
            return None  # another process claimed this check
        table = self.predictions(name, since=rollout.window_start, until=now)
        verdict = judge(table, canary.checks, canary.min_requests)
        if rollout.canary_version is not None and rollout.window_start is not None:
            window = CanaryWindow(
                deployment=claimed, start=rollout.window_start, end=now,
                canary_version=rollout.canary_version,
                stable_versions=tuple(verdict["figures"]["stable"]["versions"]), table=table,
            )  # fmt: skip
            try:
                contributed = self.canary_checks()
            except Exception as exc:  # a later stage cannot build its checks: they wait
                log.warning("canary checks of later stages are unavailable", exc_info=True)
                contributed = (_unavailable(exc),)
            verdict = with_contributed(verdict, window, contributed)
        verdict.update(
            at=now.isoformat(),
            step=rollout.step,
            weight=deployment.canary_weight,
            window_start=None if rollout.window_start is None else rollout.window_start.isoformat(),
        )
        outcome, action = self._outcome(claimed, verdict, now)
        try:
            return self._save(
                outcome,
                expected=claimed.generation,
                action=action,
                details=None if action is None else {"check": _brief(verdict)},
            )
        except ConflictError:
            return None  # paused, rolled back or re-applied meanwhile: that change wins

    def _outcome(
        self, deployment: Deployment, verdict: dict[str, Any], now: datetime
    ) -> tuple[Deployment, str | None]:
        canary = deployment.spec.canary
        assert canary is not None
        r = dataclasses.replace(deployment.rollout, last_check=verdict)
        if verdict["verdict"] == "wait":
            return dataclasses.replace(deployment, rollout=dataclasses.replace(
                r, message=f"waiting: {verdict['reason']}")), None  # fmt: skip
        if verdict["verdict"] == "fail":
            failed = r.failed_checks + 1
            if failed >= canary.max_failed_checks:
                rolled = dataclasses.replace(
                    r, state=RolloutState.ROLLED_BACK, failed_checks=failed,
                    message=f"rolled back after {failed} failed check(s): {verdict['reason']}",
                )  # fmt: skip
                return dataclasses.replace(deployment, rollout=rolled), "deploy_rollback"
            failing = dataclasses.replace(
                r, failed_checks=failed, window_start=now,
                message=f"check failed ({failed} of {canary.max_failed_checks}): "
                f"{verdict['reason']}",
            )  # fmt: skip
            return dataclasses.replace(deployment, rollout=failing), "deploy_check_failed"
        following = r.step + 1
        if following < len(canary.steps) and canary.steps[following] < 100:
            stepped = dataclasses.replace(
                r, step=following, failed_checks=0, window_start=now,
                message=f"check passed: canary to {canary.steps[following]}%",
            )  # fmt: skip
            return dataclasses.replace(deployment, rollout=stepped), "deploy_step"
        return self._promote(deployment, r)

    def _promote(self, deployment: Deployment, r: Rollout) -> tuple[Deployment, str]:
        from driftline.registry import promote_version

        spec, version = deployment.spec, r.canary_version
        assert version is not None
        alias = spec.stable_alias
        if alias is None:
            spec = dataclasses.replace(spec, stable=str(version))
            target = f"stable is now {spec.model}/{version}"
        else:
            try:
                promote_version(
                    self.registry, spec.model, version, alias, gates=spec.gates,
                    cache=self.cache,
                )  # fmt: skip
            except DriftlineError as exc:
                paused = dataclasses.replace(
                    r, state=RolloutState.PAUSED,
                    message=f"every check passed but the promotion was refused: {exc}",
                )  # fmt: skip
                return dataclasses.replace(deployment, rollout=paused), "deploy_pause"
            target = f"{spec.model}@{alias} -> v{version}"
        promoted = dataclasses.replace(
            r, state=RolloutState.PROMOTED, failed_checks=0,
            message=f"promoted: {target}",
        )  # fmt: skip
        return dataclasses.replace(deployment, spec=spec, rollout=promoted), "deploy_promote"


def _brief(verdict: dict[str, Any]) -> dict[str, Any]:
    """The part of a check worth keeping in the audit log."""
    return {
        "verdict": verdict["verdict"],
        "reason": verdict["reason"],
        "step": verdict["step"],
        "weight": verdict["weight"],
        "checks": verdict["checks"],
        "requests": {v: f["requests"] for v, f in verdict["figures"].items()},
    }


def rollout_event(
    deployment: Deployment, outcome: str, details: dict[str, Any], *, stable: int | None
) -> Event:
    """The notification of a rollout's ``outcome`` (``promoted`` or ``rolled_back``).

    Its body names the deployment, the model, the versions traffic moved ``from`` and
    ``to`` (``None`` where unknown), the reason (the rollout's message), the checks that
    failed (``load`` for a canary that could not load) and the check that decided it.
    ``stable`` is the version stable serves after a rollback. The key
    (``<deployment>:<generation>``) is unique per transition.
    """
    r = deployment.rollout
    check = details.get("check")  # present when the canary's checks decided it
    failed = [c["check"] for c in (check or {}).get("checks", []) if not c["passed"]]
    if "error" in details:
        failed = ["load"]
    if outcome == "promoted":
        figures = (r.last_check or {}).get("figures", {})
        served = figures.get("stable", {}).get("versions") or [None]
        moved_from, moved_to = served[-1], r.canary_version
    else:
        moved_from, moved_to = r.canary_version, stable
    model = deployment.spec.model
    return Event(
        kind=f"deployment.{outcome}",
        key=f"{deployment.name}:{deployment.generation}",
        summary=f"driftline deployment {deployment.name} ({model}) {outcome.replace('_', ' ')}"
        f" from v{moved_from} to v{moved_to}: {r.message}",
        body={
            "deployment": deployment.name,
            "model": model,
            "outcome": outcome,
            "from_version": moved_from,
            "to_version": moved_to,
            "reason": r.message,
            "failed_checks": failed,
            "check": check,
            "generation": deployment.generation,
            "at": deployment.updated_at.isoformat(),
        },
        source="serving",
    )


def _check_generation(name: str, found: Deployment | None, expected: int | None) -> None:
    """A caller's compare-and-set: ``found`` is still at the generation it read."""
    if expected is None:
        return
    if found is None or found.generation != expected:
        now = "gone" if found is None else f"at generation {found.generation}"
        raise ConflictError(
            f"Deployment {name!r} changed since it was read (generation {expected}, now {now})"
        )


def _unavailable(exc: Exception) -> Callable[[Any], Any]:
    """A canary check standing for checks that could not be built: it raises their
    error, which the analysis counts as a check that waits (never a pass)."""

    def unavailable(window: Any) -> Any:
        raise exc

    return unavailable
