"""Driving a retraining cycle, one step at a time (``Retrainer.advance``).

Each step claims the cycle by a compare-and-set transition before it acts, so two
drivers never both run its pipeline, move its alias or start its rollout; every
transition goes through :func:`_move`:

- ``triggered``: take the cycle's lease (:mod:`.lease`), -> ``training``; run the
  policy's pipeline (``{trigger.KEY}`` placeholders filled from the trigger's payload,
  dataset refs pinned, as the pipelines stage's triggers do) while renewing the lease;
  find the model version its steps registered; -> ``evaluating`` (or ``failed``).
- ``training`` found with no live lease: its driver died (SIGKILL, a lost machine).
  If its pipeline run finished and registered a version the cycle resumes at
  ``evaluating``; otherwise the run is marked FAILED and the cycle ends ``failed``
  saying so. While the lease is live, the cycle is left to its driver.
- ``evaluating``: judge the challenger (:mod:`.judge`): the same rows for both, the
  paired bootstrap, the gates; -> ``rejected`` (report stored) or on to approvals and
  rollout.
- ``awaiting_approval``: waits until the registry has ``approvals`` distinct
  approvals of the version for the stable alias.
- rollout, recorded (``rolling_out``) before anything in production changes, so a
  driver that dies half-way leaves a record the next one finishes from:
  ``direct`` moves the alias (compare-and-set on the champion it replaces) and ends
  ``promoted``; ``canary`` applies the deployment with the challenger as its canary
  and follows it until serving ends it promoted or rolled back; ``shadow-then-canary``
  first mirrors the deployment's requests to the challenger as a shadow until it has
  answered ``shadow.min_requests`` of them, checks its errors and agreement with the
  champion (serving's ``deploy compare`` figures), then starts the canary, or ends
  ``rolled_back`` with the figures; so does a shadow that has too few requests once
  ``shadow.period`` is over. The rollout records when its shadow was applied and the
  judgement before the canary is applied, so a driver that stops in between is resumed
  from there; a shadow someone else ended is never applied again (the cycle fails
  saying so), and any failure of the rollout ends the cycle's shadow first.

Any open cycle whose state has not changed for the policy's ``stuck_after`` ends
``failed`` ("stuck in X since ..."). A canary or shadow it left running is ended first
(the canary rolled back, the deployment's previous shadow put back), compare-and-set on
the deployment as read, and the reason says so; a canary that ended meanwhile ends the
cycle as it ended.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from driftline.core.clock import from_ms, now_ms, utcnow
from driftline.errors import ConflictError, DriftlineError
from driftline.retraining.cycles import Cycle, CycleState
from driftline.retraining.policy import RetrainPolicy

if TYPE_CHECKING:
    from driftline.retraining.loop import Retrainer

__all__ = ["TAG_CYCLE", "advance_cycle"]

#: Tag a cycle's pipeline run carries (trace and history follow it back).
TAG_CYCLE = "driftline.retraining.cycle"
_STEP_PARENT = "driftline.pipeline.run"


def advance_cycle(loop: Retrainer, cycle: Cycle, workspace: Any) -> Cycle:
    """Move ``cycle`` as far as it can go now; returns where it stopped."""
    policy = loop.policy(cycle.model)
    while not cycle.ended:
        before = cycle
        try:
            cycle = _step(loop, policy, cycle, workspace)
        except ConflictError:
            # Another driver moved it first: it carries on from there.
            return loop.store.get_cycle(cycle.id)
        if cycle is before:  # waiting for something outside (a driver, approvals, traffic)
            break
    return cycle


def _step(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle, ws: Any) -> Cycle:
    stuck_for = utcnow() - cycle.updated_at
    if stuck_for > timedelta(seconds=policy.stuck_after_seconds) and not _training_now(
        loop, cycle, ws
    ):
        return _end_stuck(loop, policy, cycle)
    if cycle.state is CycleState.TRIGGERED:
        return _train(loop, policy, cycle, ws)
    if cycle.state is CycleState.TRAINING:
        return _orphaned(loop, policy, cycle, ws)
    if cycle.state is CycleState.EVALUATING:
        return _evaluate(loop, policy, cycle, ws)
    if cycle.state is CycleState.AWAITING_APPROVAL:
        return _approved(loop, policy, cycle)
    return _observe(loop, policy, cycle)


def _training_now(loop: Retrainer, cycle: Cycle, ws: Any) -> bool:
    """Whether a live driver holds the cycle's lease: a long pipeline is not stuck."""
    if cycle.state is not CycleState.TRAINING:
        return False
    held = _lease(loop, cycle, ws).current()
    return held is not None and held.expires_at > utcnow()


def _end_stuck(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle) -> Cycle:
    """Fail a cycle that has not moved for ``stuck_after``, ending the canary or shadow
    it left running (a ``ConflictError``: the deployment changed meanwhile, the next
    step looks again)."""
    reason = (
        f"stuck in {cycle.state.value} since {cycle.updated_at:%Y-%m-%d %H:%M:%S} UTC "
        f"(longer than stuck_after, {policy.stuck_after_seconds:g} s)"
    )
    rollout = cycle.rollout or {}
    kind = rollout.get("kind")
    if cycle.state is CycleState.ROLLING_OUT and kind == "direct":
        # One alias compare-and-set finishes it (or finds it done): never fail a cycle
        # whose challenger may already serve.
        return _observe(loop, policy, cycle)
    if cycle.state is not CycleState.ROLLING_OUT or kind not in ("canary", "shadow"):
        return _fail(loop, cycle, reason)
    from driftline.serving import ACTIVE_ROLLOUT_STATES

    name = str(rollout.get("deployment") or policy.deployment)
    what = f"deployment {name}'s {kind} of v{cycle.version}"
    try:
        if kind == "canary":
            deployment = loop.deployments.get_deployment(name)
            state = deployment.rollout.state.value
            ours = deployment.rollout.canary_version == cycle.version
            if ours and state in ("promoted", "rolled_back"):
                return _observe(loop, policy, cycle)  # it ended meanwhile: so does the cycle
            if ours and deployment.rollout.state in ACTIVE_ROLLOUT_STATES:
                loop.deployments.rollback(
                    name, reason=f"retraining cycle {cycle.id} was stuck",
                    expected=deployment.generation,
                )  # fmt: skip
                return _fail(loop, cycle, f"{reason}; {what} was rolled back")
        elif _end_shadow(loop, cycle):
            return _fail(loop, cycle, f"{reason}; {what} was ended")
    except ConflictError:
        raise
    except DriftlineError as exc:
        return _fail(
            loop, cycle,
            f"{reason}; ending {what} failed: {exc} (driftline deploy rollback {name})",
        )  # fmt: skip
    return _fail(loop, cycle, f"{reason}; {what} was not running (nothing to end)")


def _move(loop: Retrainer, cycle: Cycle, to: CycleState, **products: Any) -> Cycle:
    """The one place a cycle changes state (a compare-and-set, audited, and notified)."""
    return loop.transition(cycle, to, now=now_ms(), **products)


def _fail(loop: Retrainer, cycle: Cycle, reason: str, **products: Any) -> Cycle:
    return _move(loop, cycle, CycleState.FAILED, reason=reason, **products)


# -- training -------------------------------------------------------------------------


def _lease(loop: Retrainer, cycle: Cycle, ws: Any) -> Any:
    from driftline.retraining.lease import CycleLease

    return CycleLease(ws, cycle.id, holder=loop.holder, ttl=loop.lease_ttl)


def _train(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle, ws: Any) -> Cycle:
    lease = _lease(loop, cycle, ws)
    if not lease.acquire():
        return cycle  # another driver is about to train it
    try:
        with lease.renewed():  # from the claim on: importing the pipeline may take a while
            return _run_pipeline(loop, policy, _move(loop, cycle, CycleState.TRAINING), ws)
    finally:
        lease.release()


def _run_pipeline(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle, ws: Any) -> Cycle:
    from driftline.pipelines import Automation, PipelineService, get_pipeline
    from driftline.retraining.loop import find_pipeline

    call = policy.pipeline
    try:
        pipeline = find_pipeline(call.name, call.module)
        params = Automation.for_workspace(ws).resolve_params(
            pipeline, call.params, cycle.cause.payload
        )
        result = PipelineService.for_workspace(ws).run(
            # force: a cached step would register nothing new for this cycle to judge.
            get_pipeline(call.name),
            params,
            tags={TAG_CYCLE: cycle.id},
            force=True,
        )
    except DriftlineError as exc:
        # A step that failed: the pipeline run is recorded (and can be resumed).
        failed = getattr(exc, "pipeline_run", None)
        if failed is not None:
            return _fail(
                loop, cycle, f"pipeline run {failed.id} of {call.name} ended FAILED: {exc}",
                run_id=failed.id,
            )  # fmt: skip
        return _fail(loop, cycle, f"the pipeline {call.name} could not run: {exc}")
    return _trained(loop, policy, cycle, result.record, ws)


def _trained(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle, run: Any, ws: Any) -> Cycle:
    """``training`` -> ``evaluating`` with the version ``run`` registered, or failed."""
    name = policy.pipeline.name
    if run.status.value != "FINISHED":
        return _fail(
            loop, cycle, f"pipeline run {run.id} of {name} ended {run.status.value}",
            run_id=run.id,
        )  # fmt: skip
    version = _registered(loop, policy.model, run.id, ws)
    if version is None:
        return _fail(
            loop, cycle,
            f"pipeline run {run.id} of {name} registered no version of {policy.model}: "
            f"its steps must register the model (dl.register_model(..., {policy.model!r}))",
            run_id=run.id,
        )  # fmt: skip
    return _move(loop, cycle, CycleState.EVALUATING, run_id=run.id, version=version)


def _orphaned(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle, ws: Any) -> Cycle:
    """A ``training`` cycle this driver is not training: settle it if its driver died."""
    from driftline.tracking import RunStatus

    lease = _lease(loop, cycle, ws)
    held = lease.current()
    if not lease.acquire():
        return cycle  # its driver is alive and renewing: leave it be
    try:
        runs = ws.tracking.search_runs(
            filter=f"tags.`{TAG_CYCLE}` = '{cycle.id}'", max_results=10
        ).items
        pipeline_runs = [r for r in runs if _STEP_PARENT not in r.tags]
        run = pipeline_runs[0] if pipeline_runs else None
        if run is not None and run.status is RunStatus.FINISHED:
            return _trained(loop, policy, cycle, run, ws)  # resume: it had finished
        who = (
            f"{held.holder} (pid {held.pid} on {held.host}), whose lease expired at "
            f"{held.expires_at:%H:%M:%S} UTC"
            if held is not None
            else "unknown (no lease recorded)"
        )
        reason = f"the driver training it stopped before the pipeline finished: {who}"
        if run is None:
            return _fail(loop, cycle, f"{reason}; no pipeline run was recorded")
        if run.status is RunStatus.RUNNING:
            _end_abandoned(ws, run.id)
        return _fail(
            loop, cycle,
            f"{reason}; its pipeline run {run.id} was marked FAILED (driftline pipelines "
            f"resume {run.id} continues it)",
            run_id=run.id,
        )  # fmt: skip
    finally:
        lease.release()


def _end_abandoned(ws: Any, run_id: str) -> None:
    """Mark a dead driver's pipeline run and its running steps FAILED."""
    from driftline.tracking import RunStatus

    steps = ws.tracking.search_runs(
        filter=f"tags.`{_STEP_PARENT}` = '{run_id}' and attributes.status = 'RUNNING'",
        max_results=1000,
    ).items
    for run in [*steps, ws.tracking.get_run(run_id)]:
        with contextlib.suppress(ConflictError):  # it ended meanwhile: its status stands
            ws.tracking.end_run(run.id, RunStatus.FAILED)


def _registered(loop: Retrainer, model: str, pipeline_run: str, ws: Any) -> int | None:
    """The newest version of ``model`` registered from a run of ``pipeline_run``'s steps
    (a step's run, or a run nested in one)."""
    tracking = ws.tracking
    for version in sorted(loop.registry.list_versions(model), key=lambda v: -v.version):
        run_id = version.run_id
        for _ in range(3):  # the run, its parent, its grandparent
            if run_id is None:
                break
            run = tracking.get_run(run_id)
            if run.id == pipeline_run or run.tags.get(_STEP_PARENT) == pipeline_run:
                return version.version
            run_id = run.parent_id
    return None


# -- judging --------------------------------------------------------------------------


def _champion(loop: Retrainer, policy: RetrainPolicy) -> tuple[str, str]:
    """The champion's ref and the stable alias (``""`` when stable is a version number)."""
    assert policy.deployment is not None
    spec = loop.deployments.get_deployment(policy.deployment).spec
    if spec.stable_alias is None:
        return f"{spec.model}/{spec.stable}", ""
    return f"{spec.model}@{spec.stable_alias}", spec.stable_alias


def _evaluate(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle, ws: Any) -> Cycle:
    from driftline.retraining.judge import JudgingError, judge

    assert cycle.version is not None
    champion, alias = _champion(loop, policy)
    try:
        judged = judge(loop, policy, champion, alias, cycle.version, ws)
    except JudgingError as exc:
        return _fail(loop, cycle, str(exc))
    if judged.verdict != "accepted":
        return _move(loop, cycle, CycleState.REJECTED, report=judged.report, reason=judged.reason)
    if policy.approvals > 0:
        return _move(
            loop, cycle, CycleState.AWAITING_APPROVAL, report=judged.report,
            reason=f"waiting for {policy.approvals} approval(s): driftline models approve "
            f"{policy.model} {cycle.version} --alias {alias or 'champion'}",
        )  # fmt: skip
    return _roll_out(loop, policy, dataclasses.replace(cycle, report=judged.report))


def _approved(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle) -> Cycle:
    _, alias = _champion(loop, policy)
    assert cycle.version is not None
    people = {a.actor for a in loop.registry.approvals(policy.model, cycle.version, alias or None)}
    if len(people) < policy.approvals:
        return cycle
    return _roll_out(loop, policy, cycle)


# -- rollout --------------------------------------------------------------------------


def _roll_out(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle) -> Cycle:
    """Record the rollout (``rolling_out``), then start it."""
    kept = {"report": cycle.report}  # the judgement, not stored yet when it comes from it
    assert policy.deployment is not None
    assert cycle.version is not None
    deployment = loop.deployments.get_deployment(policy.deployment)
    spec = deployment.spec
    if policy.rollout == "direct":
        if spec.stable_alias is None:
            return _fail(
                loop, cycle,
                f"deployment {spec.name} serves a fixed version ({spec.stable}); a direct "
                "rollout moves an alias: deploy the model's alias (stable: champion)", **kept,
            )  # fmt: skip
        try:
            held = loop.registry.get_version(f"{spec.model}@{spec.stable}").version
            loop.registry.check_approvals(spec.model, cycle.version, spec.stable)
        except DriftlineError as exc:
            return _fail(loop, cycle, f"moving {spec.model}@{spec.stable} failed: {exc}", **kept)
        cycle = _move(
            loop, cycle, CycleState.ROLLING_OUT, report=cycle.report,
            rollout={"deployment": spec.name, "kind": "direct", "alias": spec.stable,
                     "from": held},
        )  # fmt: skip
        return _move_alias(loop, policy, cycle)
    if spec.canary is None:
        return _fail(
            loop, cycle,
            f"rollout: {policy.rollout} needs canary steps in deployment {spec.name}'s spec "
            "(canary: {steps: [...], interval: ...}); or use rollout: direct", **kept,
        )  # fmt: skip
    if policy.rollout == "shadow-then-canary":
        other = _others_canary(deployment, cycle)
        if other is not None:
            return _fail(loop, cycle, other, **kept)
        return _start_shadow(loop, cycle, deployment)
    return _start_canary(loop, cycle, spec.name, report=cycle.report)


def _move_alias(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle) -> Cycle:
    """A direct rollout's alias move, compare-and-set on the champion it replaces; a
    driver that died before or after it finds the alias where it left it."""
    rollout = cycle.rollout or {}
    alias, held = str(rollout["alias"]), int(rollout["from"])
    assert cycle.version is not None
    now_held = loop.registry.get_model(policy.model).aliases.get(alias)
    moved = f"{policy.model}@{alias} moved from v{held} to v{cycle.version}"
    if now_held == cycle.version:
        return _move(loop, cycle, CycleState.PROMOTED, reason=moved)
    if now_held != held:
        return _fail(
            loop, cycle,
            f"{policy.model}@{alias} was moved to v{now_held} by someone else during the "
            "rollout; it is left there",
        )  # fmt: skip
    try:
        loop.registry.set_alias(
            policy.model, alias, cycle.version, expected=held,
            reason=f"retraining cycle {cycle.id}",
        )  # fmt: skip
    except ConflictError:
        return cycle  # moved meanwhile: the next step sees by whom
    except DriftlineError as exc:
        return _fail(loop, cycle, f"moving {policy.model}@{alias} failed: {exc}")
    return _move(loop, cycle, CycleState.PROMOTED, reason=moved)


#: How often a rollout's apply reads the deployment again after a compare-and-set that
#: lost to another writer, before leaving it to the next step.
_APPLY_TRIES = 3


def _others_canary(deployment: Any, cycle: Cycle) -> str | None:
    """Why the cycle must not start its canary or shadow on ``deployment``: a canary it
    did not start is running there (None when none is)."""
    from driftline.serving import ACTIVE_ROLLOUT_STATES

    rollout = deployment.rollout
    if rollout.canary_version == cycle.version:
        return None
    if rollout.state not in ACTIVE_ROLLOUT_STATES:
        return None
    # Someone (an operator, another tool) is rolling out a version of their own: replacing
    # it would silently end their rollout, and waiting for it could last as long as they
    # keep it paused, with a judgement made against a champion their canary may replace.
    # The cycle ends saying so; the next trigger after their rollout judges afresh.
    return (
        f"deployment {deployment.name} runs a canary of v{rollout.canary_version} "
        f"({rollout.state.value}) that this cycle did not start; it is left running and "
        f"v{cycle.version} was not rolled out"
    )


def _start_canary(
    loop: Retrainer, cycle: Cycle, name: str, *, report: Any = None, **extra: Any
) -> Cycle:
    """Apply deployment ``name`` with the challenger as its canary (and without the
    cycle's shadow), compare-and-set on the deployment as read: an operator's edit made
    meanwhile is read again and kept, a canary someone else started meanwhile is left
    running (the cycle fails, see :func:`_others_canary`)."""
    products: dict[str, Any] = {} if report is None else {"report": report}
    for _ in range(_APPLY_TRIES):
        deployment = loop.deployments.get_deployment(name)
        if deployment.rollout.canary_version == cycle.version:
            # Its canary already: a driver applied it and stopped before recording it.
            # Applying nothing, a second canary never starts.
            applied = deployment
            break
        other = _others_canary(deployment, cycle)
        if other is not None:
            return _fail_rollout(loop, cycle, other, **products)
        spec = deployment.spec
        if spec.canary is None:
            return _fail_rollout(
                loop, cycle,
                f"deployment {name}'s spec lost its canary steps; v{cycle.version} was not "
                "rolled out", **products,
            )  # fmt: skip
        canary = dataclasses.replace(spec.canary, version=str(cycle.version))
        try:
            applied = loop.deployments.apply(
                dataclasses.replace(spec, canary=canary, shadow=_without_ours(cycle, deployment)),
                expected=deployment.generation,
            )
            break
        except ConflictError:
            continue  # changed since it was read: read it again and decide again
        except DriftlineError as exc:
            return _fail_rollout(
                loop, cycle, f"starting the canary of v{cycle.version} failed: {exc}", **products
            )
    else:
        raise ConflictError(f"Deployment {name!r} kept changing; the next step tries again")
    return _move(
        loop, cycle, CycleState.ROLLING_OUT, **products,
        rollout={"deployment": name, "kind": "canary", "generation": applied.generation,
                 "canary_version": applied.rollout.canary_version, **extra},
    )  # fmt: skip


def _shadow_is_ours(deployment: Any, cycle: Cycle) -> bool:
    """Whether ``deployment`` mirrors its requests to the cycle's challenger."""
    shadow = deployment.rollout.shadow_version if deployment.spec.shadow is not None else None
    return shadow is not None and shadow == cycle.version


def _previous_shadow(cycle: Cycle) -> Any:
    """The shadow the deployment had before the cycle's (put back at its end), or None."""
    from driftline.serving import ShadowPolicy

    previous = (cycle.rollout or {}).get("previous_shadow")
    return None if previous is None else ShadowPolicy(**previous)


def _without_ours(cycle: Cycle, deployment: Any) -> Any:
    """The shadow ``deployment`` keeps once the cycle's canary starts: the one it had
    before the cycle's shadow when that shadow is still there, else the one it has."""
    if not _shadow_is_ours(deployment, cycle):
        return deployment.spec.shadow  # not the cycle's (an operator's since): theirs to end
    return _previous_shadow(cycle)


def _fail_rollout(loop: Retrainer, cycle: Cycle, why: str, **products: Any) -> Cycle:
    """Fail the cycle during its rollout, ending its own shadow first when it runs one
    (compare-and-set, as :func:`_end_shadow`): every rollout failure goes through here,
    so none leaves the challenger shadowing."""
    if (cycle.rollout or {}).get("kind") == "shadow":
        try:
            if _end_shadow(loop, cycle):
                why += f"; the shadow of v{cycle.version} was ended"
        except ConflictError:
            raise  # the deployment changed meanwhile: the next step looks again
        except DriftlineError as exc:
            why += f"; ending the shadow of v{cycle.version} failed: {exc}"
    return _fail(loop, cycle, why, **products)


def _start_shadow(loop: Retrainer, cycle: Cycle, deployment: Any) -> Cycle:
    """Record the shadow rollout with the shadow ``deployment`` had as read (put back at
    its end), then start it."""
    spec = deployment.spec
    previous = None if spec.shadow is None else dataclasses.asdict(spec.shadow)
    cycle = _move(
        loop, cycle, CycleState.ROLLING_OUT, report=cycle.report,
        rollout={"deployment": spec.name, "kind": "shadow", "since": now_ms(),
                 "shadow_version": cycle.version, "previous_shadow": previous},
    )  # fmt: skip
    return _apply_shadow(loop, cycle)


def _end_shadow(loop: Retrainer, cycle: Cycle) -> bool:
    """Put back the shadow the deployment had before the cycle's, compare-and-set on the
    deployment as read; False when its shadow is not the cycle's (any more)."""
    name = str((cycle.rollout or {})["deployment"])
    deployment = loop.deployments.get_deployment(name)
    if not _shadow_is_ours(deployment, cycle):
        return False
    loop.deployments.apply(
        dataclasses.replace(deployment.spec, shadow=_previous_shadow(cycle)),
        expected=deployment.generation,
    )
    return True


def _roll_back_shadow(loop: Retrainer, cycle: Cycle, found: dict[str, Any], reason: str) -> Cycle:
    """End the cycle's shadow, then the cycle ``rolled_back`` with its figures."""
    try:
        _end_shadow(loop, cycle)
    except ConflictError:
        raise  # the deployment changed meanwhile: the next step looks again
    except DriftlineError as exc:
        return _fail(loop, cycle, f"ending the shadow of v{cycle.version} failed: {exc}")
    rollout = {**(cycle.rollout or {}), "shadow_result": found}
    return _move(loop, cycle, CycleState.ROLLED_BACK, rollout=rollout, reason=reason)


def _apply_shadow(loop: Retrainer, cycle: Cycle) -> Cycle:
    """Apply the deployment with the challenger as its shadow, compare-and-set on the
    deployment as read, and record that it was applied (``applied``: the deployment's
    generation then). An operator's edit made meanwhile is read again and kept; a shadow
    other than the one the cycle recorded, or a canary it did not start, is left alone
    and the cycle fails saying so. A shadow found applied already (a driver applied it
    and stopped before recording it) is recorded, not applied again."""
    from driftline.serving import ShadowPolicy

    rollout = cycle.rollout or {}
    name = str(rollout["deployment"])
    for _ in range(_APPLY_TRIES):
        deployment = loop.deployments.get_deployment(name)
        spec = deployment.spec
        if not _shadow_is_ours(deployment, cycle):
            if spec.shadow != _previous_shadow(cycle):
                now = "removed" if spec.shadow is None else f"set to v{spec.shadow.version}"
                return _fail_rollout(
                    loop, cycle,
                    f"deployment {name}'s shadow was {now} by someone else after this cycle "
                    f"read it; it is left so and v{cycle.version} is not shadowed",
                )  # fmt: skip
            other = _others_canary(deployment, cycle)
            if other is not None:
                return _fail_rollout(loop, cycle, other)
            shadow = ShadowPolicy(version=str(cycle.version), sample=1.0)
            try:
                deployment = loop.deployments.apply(
                    dataclasses.replace(spec, shadow=shadow), expected=deployment.generation
                )
            except ConflictError:
                continue  # changed since it was read: read it again and decide again
            except DriftlineError as exc:
                return _fail_rollout(
                    loop, cycle, f"starting the shadow of v{cycle.version} failed: {exc}"
                )
        return _move(
            loop, cycle, CycleState.ROLLING_OUT,
            rollout={**rollout, "applied": deployment.generation},
        )  # fmt: skip
    raise ConflictError(f"Deployment {name!r} kept changing; the next step tries again")


def _observe(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle) -> Cycle:
    kind = (cycle.rollout or {}).get("kind")
    if kind == "direct":
        return _move_alias(loop, policy, cycle)
    if kind == "shadow":
        return _observe_shadow(loop, policy, cycle)
    # The deployment the canary was started on (the policy may name another one since).
    name = str((cycle.rollout or {}).get("deployment") or policy.deployment)
    rollout = loop.deployments.get_deployment(name).rollout
    if rollout.canary_version != cycle.version:
        return _fail(loop, cycle, "the deployment's canary was replaced by another rollout")
    if rollout.state.value == "promoted":
        return _move(loop, cycle, CycleState.PROMOTED, reason=rollout.message)
    if rollout.state.value == "rolled_back":
        return _move(loop, cycle, CycleState.ROLLED_BACK, reason=rollout.message)
    return cycle


def _observe_shadow(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle) -> Cycle:
    """Wait for the shadow's requests, judge them, then the canary or a rollback."""
    rollout = dict(cycle.rollout or {})
    name = str(rollout["deployment"])
    deployment = loop.deployments.get_deployment(name)
    if "shadow_result" in rollout or deployment.rollout.canary_version == cycle.version:
        # Judged already (recorded before the canary is applied): a driver stopped before
        # applying the canary, or after applying it and before recording it.
        return _start_canary(loop, cycle, name, shadow_result=rollout.get("shadow_result"))
    if "applied" not in rollout:
        return _apply_shadow(loop, cycle)  # a driver stopped before recording it
    if not _shadow_is_ours(deployment, cycle):
        # Never applied again: whoever ended it meant it to end.
        return _fail_rollout(
            loop, cycle,
            f"deployment {name}'s shadow of v{cycle.version} was ended by someone else "
            f"before it was judged; v{cycle.version} was not rolled out",
        )  # fmt: skip
    compared = loop.deployments.compare(name, since=from_ms(int(rollout["since"])))
    figures = compared["figures"].get("shadow") or {"requests": 0, "error_rate": 0.0}
    check = policy.shadow
    pair = next(
        (p for p in compared["pairs"] if sorted(p["variants"]) == ["shadow", "stable"]), None
    )
    agreement = None if pair is None else pair["agreement"]
    found = {
        "requests": figures["requests"],
        "error_rate": figures["error_rate"],
        "agreement": agreement,
        "mean_abs_delta": None if pair is None else pair["mean_abs_delta"],
    }
    if figures["requests"] < check.min_requests:
        period = check.period_seconds
        if period is None or now_ms() - int(rollout["since"]) < period * 1000:
            return cycle  # more requests may come
        return _roll_back_shadow(
            loop, cycle, found,
            f"the shadow v{cycle.version} answered {figures['requests']} mirrored "
            f"request(s) in shadow.period ({period:g} s), fewer than shadow.min_requests "
            f"({check.min_requests}): too little traffic to judge it; the champion stays",
        )  # fmt: skip
    problems = []
    if figures["error_rate"] > check.max_error_rate:
        problems.append(f"error rate {figures['error_rate']:.2%} above {check.max_error_rate:.2%}")
    if check.min_agreement > 0 and (agreement is None or agreement < check.min_agreement):
        problems.append(f"agreement {_share(agreement)} below {check.min_agreement:.2%}")
    if problems:
        return _roll_back_shadow(
            loop, cycle, found,
            f"the shadow v{cycle.version} failed on {found['requests']} mirrored "
            f"requests: {'; '.join(problems)}; the champion stays",
        )  # fmt: skip
    # The comparison is recorded before the canary is applied: a driver that stops in
    # between leaves it for the next one, which starts the canary with it.
    judged = _move(loop, cycle, CycleState.ROLLING_OUT, rollout={**rollout, "shadow_result": found})
    return _start_canary(loop, judged, name, shadow_result=found)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"
