"""Driving a retraining cycle, one step at a time (``Retrainer.advance``).

Each step claims the cycle by a compare-and-set transition before it acts, so two
drivers never both run its pipeline or start its rollout:

- ``triggered``: -> ``training``; run the policy's pipeline (``{trigger.KEY}``
  placeholders filled from the trigger's payload, dataset refs pinned, as the
  pipelines stage's triggers do); find the model version its steps registered;
  -> ``evaluating`` (or ``failed`` with the reason).
- ``evaluating``: compare the challenger with the champion (the version the
  deployment's stable alias holds) on the same rows with the registry's paired
  bootstrap; -> ``rejected`` (report stored) or on to approvals and rollout.
- ``awaiting_approval``: waits until the registry has ``approvals`` distinct
  approvals of the version for the stable alias.
- rollout: ``direct`` moves the alias (compare-and-set on the champion it replaces)
  and ends ``promoted``; ``canary`` applies the deployment with the challenger as its
  canary; ``rolling_out`` then follows that rollout until serving ends it promoted or
  rolled back.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from driftline.core.clock import now_ms
from driftline.errors import DriftlineError
from driftline.retraining.cycles import Cycle, CycleState
from driftline.retraining.policy import RECENT, RetrainPolicy

if TYPE_CHECKING:
    from driftline.retraining.loop import Retrainer

__all__ = ["advance_cycle"]

#: Tag a cycle's pipeline run carries (trace and history follow it back).
TAG_CYCLE = "driftline.retraining.cycle"
_STEP_PARENT = "driftline.pipeline.run"


def advance_cycle(loop: Retrainer, cycle: Cycle, workspace: Any) -> Cycle:
    """Move ``cycle`` as far as it can go now; returns where it stopped."""
    policy = loop.policy(cycle.model)
    while not cycle.ended:
        before = cycle
        if cycle.state is CycleState.TRIGGERED:
            cycle = _train(loop, policy, cycle, workspace)
        elif cycle.state is CycleState.EVALUATING:
            cycle = _evaluate(loop, policy, cycle, workspace)
        elif cycle.state is CycleState.AWAITING_APPROVAL:
            cycle = _approved(loop, policy, cycle)
        elif cycle.state is CycleState.ROLLING_OUT:
            cycle = _observe(loop, policy, cycle)
        if cycle is before:  # waiting for something outside (approvals, the canary)
            break
    return cycle


def _move(loop: Retrainer, cycle: Cycle, to: CycleState, **products: Any) -> Cycle:
    return loop.transition(cycle, to, now=now_ms(), **products)


def _fail(loop: Retrainer, cycle: Cycle, reason: str, **products: Any) -> Cycle:
    return _move(loop, cycle, CycleState.FAILED, reason=reason, **products)


def _train(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle, ws: Any) -> Cycle:
    from driftline.pipelines import Automation, PipelineService, get_pipeline
    from driftline.retraining.loop import find_pipeline

    cycle = _move(loop, cycle, CycleState.TRAINING)
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
        return _fail(loop, cycle, f"the pipeline {call.name} could not run: {exc}")
    run = result.record
    if run.status.value != "FINISHED":
        return _fail(
            loop, cycle, f"pipeline run {run.id} of {call.name} ended {run.status.value}",
            run_id=run.id,
        )  # fmt: skip
    version = _registered(loop, policy.model, run.id, ws)
    if version is None:
        return _fail(
            loop, cycle,
            f"pipeline run {run.id} of {call.name} registered no version of {policy.model}: "
            f"its steps must register the model (dl.register_model(..., {policy.model!r}))",
            run_id=run.id,
        )  # fmt: skip
    return _move(loop, cycle, CycleState.EVALUATING, run_id=run.id, version=version)


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


def _champion(loop: Retrainer, policy: RetrainPolicy) -> tuple[str, str]:
    """The champion's ref and the stable alias (``""`` when stable is a version number)."""
    assert policy.deployment is not None
    spec = loop.deployments.get_deployment(policy.deployment).spec
    if spec.stable.isdigit():
        return f"{spec.model}/{spec.stable}", ""
    return f"{spec.model}@{spec.stable}", spec.stable


def _evaluate(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle, ws: Any) -> Cycle:
    from driftline.registry import compare_models

    evaluate = policy.evaluate
    # The labelled production window is not read yet: the fallback dataset is used, and
    # the report says so.
    source = evaluate.fallback if evaluate.data == RECENT else evaluate.data
    if source is None:
        return _fail(
            loop, cycle,
            "evaluate.data is recent_labelled and no fallback dataset is set; add "
            "evaluate.fallback (e.g. customers@latest)",
        )  # fmt: skip
    champion, _ = _champion(loop, policy)
    challenger = f"{policy.model}/{cycle.version}"
    beat = policy.challenger_must_beat
    try:
        # The ref pinned now: the report names the exact rows both were scored on.
        source = ws.data.get(source).ref
        comparison = compare_models(
            [champion, challenger], data=source, target=evaluate.target,
            confidence=beat.confidence if beat else 0.95, workspace=ws,
        )  # fmt: skip
    except DriftlineError as exc:
        return _fail(loop, cycle, f"comparing {challenger} with {champion} failed: {exc}")
    found = {m.metric: m for m in comparison.metrics}
    metric = found.get(evaluate.metric)
    if metric is None or metric.differences[1] is None:
        return _fail(
            loop, cycle,
            f"metric {evaluate.metric!r} could not be computed (have: {', '.join(found)})",
        )  # fmt: skip
    sign = 1.0 if metric.higher_is_better else -1.0
    gain = sign * float(metric.differences[1])
    low, high = metric.ci_low[1], metric.ci_high[1]
    bound = (low if metric.higher_is_better else high) if beat else metric.differences[1]
    margin = beat.by if beat else 0.0
    passed = bound is not None and sign * float(bound) > margin
    report = {
        "data": source,
        "data_note": "fallback: the labelled production window is not read yet"
        if evaluate.data == RECENT
        else "dataset",
        "rows": comparison.rows,
        "champion": champion,
        "challenger": challenger,
        "metric": evaluate.metric,
        "champion_value": metric.values[0],
        "challenger_value": metric.values[1],
        "gain": gain,
        "ci": [low, high],
        "confidence": comparison.confidence,
        "must_beat_by": margin,
        "verdict": "accepted" if passed else "rejected",
    }
    if not passed:
        return _move(
            loop, cycle, CycleState.REJECTED, report=report,
            reason=f"{challenger} did not beat {champion} on {evaluate.metric} by more than "
            f"{margin:g} at {comparison.confidence:.0%} confidence (gain {gain:+.4f}, CI "
            f"{_num(low)} to {_num(high)}); the champion stays",
        )  # fmt: skip
    if policy.approvals > 0:
        _, alias = _champion(loop, policy)
        return _move(
            loop, cycle, CycleState.AWAITING_APPROVAL, report=report,
            reason=f"waiting for {policy.approvals} approval(s): driftline models approve "
            f"{policy.model} {cycle.version} --alias {alias or 'champion'}",
        )  # fmt: skip
    return _roll_out(loop, policy, _with(cycle, report=report), report)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def _with(cycle: Cycle, **changes: Any) -> Cycle:
    return dataclasses.replace(cycle, **changes)


def _approved(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle) -> Cycle:
    _, alias = _champion(loop, policy)
    assert cycle.version is not None
    people = {a.actor for a in loop.registry.approvals(policy.model, cycle.version, alias or None)}
    if len(people) < policy.approvals:
        return cycle
    return _roll_out(loop, policy, cycle, cycle.report)


def _roll_out(
    loop: Retrainer, policy: RetrainPolicy, cycle: Cycle, report: dict[str, Any] | None
) -> Cycle:
    assert policy.deployment is not None
    assert cycle.version is not None
    deployment = loop.deployments.get_deployment(policy.deployment)
    spec = deployment.spec
    if policy.rollout == "direct":
        if spec.stable.isdigit():
            return _fail(
                loop, cycle,
                f"deployment {spec.name} serves a fixed version ({spec.stable}); a direct "
                "rollout moves an alias: deploy the model's alias (stable: champion)",
            )  # fmt: skip
        try:
            held = loop.registry.get_version(f"{spec.model}@{spec.stable}").version
            loop.registry.check_approvals(spec.model, cycle.version, spec.stable)
            loop.registry.set_alias(
                spec.model, spec.stable, cycle.version, expected=held,
                reason=f"retraining cycle {cycle.id}",
            )  # fmt: skip
        except DriftlineError as exc:
            return _fail(loop, cycle, f"moving {spec.model}@{spec.stable} failed: {exc}")
        cycle = _move(
            loop, cycle, CycleState.ROLLING_OUT, report=report,
            rollout={"deployment": spec.name, "kind": "direct", "from": held},
        )  # fmt: skip
        return _move(
            loop, cycle, CycleState.PROMOTED,
            reason=f"{spec.model}@{spec.stable} moved from v{held} to v{cycle.version}",
        )  # fmt: skip
    if spec.canary is None:
        return _fail(
            loop, cycle,
            f"rollout: {policy.rollout} needs canary steps in deployment {spec.name}'s spec "
            "(canary: {steps: [...], interval: ...}); or use rollout: direct",
        )  # fmt: skip
    canary = dataclasses.replace(spec.canary, version=str(cycle.version))
    try:
        applied = loop.deployments.apply(dataclasses.replace(spec, canary=canary))
    except DriftlineError as exc:
        return _fail(loop, cycle, f"starting the canary of v{cycle.version} failed: {exc}")
    return _move(
        loop, cycle, CycleState.ROLLING_OUT, report=report,
        rollout={"deployment": spec.name, "kind": "canary", "generation": applied.generation,
                 "canary_version": applied.rollout.canary_version},
    )  # fmt: skip


def _observe(loop: Retrainer, policy: RetrainPolicy, cycle: Cycle) -> Cycle:
    if (cycle.rollout or {}).get("kind") == "direct":
        return cycle  # a direct rollout moved on in one go; nothing to observe
    assert policy.deployment is not None
    rollout = loop.deployments.get_deployment(policy.deployment).rollout
    if rollout.canary_version != cycle.version:
        return _fail(loop, cycle, "the deployment's canary was replaced by another rollout")
    if rollout.state.value == "promoted":
        return _move(loop, cycle, CycleState.PROMOTED, reason=rollout.message)
    if rollout.state.value == "rolled_back":
        return _move(loop, cycle, CycleState.ROLLED_BACK, reason=rollout.message)
    return cycle
