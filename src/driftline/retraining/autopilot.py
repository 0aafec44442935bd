"""What ``driftline agent``'s leader does for retraining on every look.

Importing this module adds :func:`drive` to the agent's periodic tasks. For each model
with a policy it turns monitoring alerts raised since the last look into triggers (the
policy's drift and performance triggers name the monitors, the alert's check picks the
kind), deduplicated as every trigger is, then advances the model's open cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from driftline.core.clock import from_ms, to_ms
from driftline.errors import DriftlineError
from driftline.pipelines import add_periodic
from driftline.retraining.cycles import Trigger

__all__ = ["drive"]

#: The monitoring check behind each alert-driven trigger kind.
_CHECKS = {"drift": "drift", "performance": "performance"}


def drive(workspace: Any, say: Callable[[str], None]) -> None:
    """One look: new alerts -> triggers, then advance every open cycle."""
    from driftline.retraining import RetrainingService

    loop = workspace.service("retraining", RetrainingService).cycles
    for model in loop.store.list_policies():
        try:
            policy = loop.policy(model)
            _alerts(loop, policy, say)
            before = loop.status(model)
            after = loop.advance(model, workspace)
            if after is not None and (before is None or before.state is not after.state):
                say(f"Retraining {model}: cycle {after.id} is {after.state.value}"
                    + (f" ({after.reason})" if after.reason else ""))  # fmt: skip
        except DriftlineError as exc:  # one model's trouble must not stop the others
            say(f"Retraining {model}: {exc}")


def _alerts(loop: Any, policy: Any, say: Callable[[str], None]) -> None:
    rules = [r for r in policy.triggers if r.kind in _CHECKS]
    if not rules:
        return
    seen = loop.store.alerts_seen_at(policy.model)
    since = from_ms(seen) + timedelta(milliseconds=1) if seen is not None else None
    newest = seen
    for rule in rules:
        for alert in loop.monitoring.monitors.alerts(since=since, monitor=rule.monitor):
            newest = max(newest or 0, to_ms(alert.created_at))
            if alert.check != _CHECKS[rule.kind]:
                continue
            payload = {"alert_id": alert.id, "monitor": alert.monitor, "check": alert.check,
                       "severity": alert.severity}  # fmt: skip
            outcome = loop.trigger(policy.model, Trigger("alert", alert.id, payload))
            if outcome.outcome == "started":
                say(f"Retraining {policy.model}: alert {alert.id} ({alert.monitor}, "
                    f"{alert.check}) started cycle {outcome.cycle.id}")  # fmt: skip
    if newest is not None and newest != seen:
        loop.store.see_alerts(policy.model, newest)


add_periodic("retraining", drive)
