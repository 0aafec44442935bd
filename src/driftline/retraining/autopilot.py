"""What ``driftline agent``'s leader does for retraining on every look.

Importing this module adds :func:`drive` to the agent's periodic tasks. For each model
with a policy it looks at what the policy's triggers watch (monitoring alerts, new
dataset versions, cron due times; see :mod:`driftline.retraining.watch`), turning what
is new into triggers, deduplicated as every trigger is, then advances the model's open
cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from driftline.core.clock import now_ms
from driftline.errors import DriftlineError
from driftline.pipelines import add_periodic
from driftline.retraining.watch import look_alerts, look_new_data, look_schedules

__all__ = ["drive"]

_LOOKS = (("alerts", look_alerts), ("new data", look_new_data), ("schedules", look_schedules))


def drive(workspace: Any, say: Callable[[str], None], *, lease_ttl: float | None = None) -> None:
    """One look: new alerts, dataset versions and due times -> triggers, then advance
    every open cycle.

    ``lease_ttl``: seconds a cycle's lease lasts (the agent passes its ``--lease-ttl``:
    a killed agent's training cycle is settled as soon as another agent leads); None
    keeps the engine's default.
    """
    from driftline.retraining import RetrainingService

    loop = workspace.service("retraining", RetrainingService).cycles
    if lease_ttl is not None:
        loop = loop.leasing_for(lease_ttl)
    for model in loop.store.list_policies():
        try:
            policy = loop.policy(model)
            for what, look in _LOOKS:
                try:
                    look(loop, policy, say, now_ms())
                except DriftlineError as exc:  # a deleted dataset must not stop the alerts
                    say(f"Retraining {model}: cannot look at {what}: {exc}")
            before = loop.status(model)
            after = loop.advance(model, workspace)
            if after is not None and (before is None or before.state is not after.state):
                say(f"Retraining {model}: cycle {after.id} is {after.state.value}"
                    + (f" ({after.reason})" if after.reason else ""))  # fmt: skip
        except DriftlineError as exc:  # one model's trouble must not stop the others
            say(f"Retraining {model}: {exc}")


add_periodic("retraining", drive)
