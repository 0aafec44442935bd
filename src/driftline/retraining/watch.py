"""One look at what a policy's triggers watch: alerts, new dataset versions, due times.

Each look turns what is new into triggers through :meth:`Retrainer.trigger`, so the
cooldown, the daily cap and a running cycle's absorbing apply to every kind alike:

- alerts (``drift``, ``performance``): monitoring alerts of the named monitors not
  looked at yet, fired when :func:`~.triggers.judge_alert` says so; an alert that fires
  nothing is reported with the reason. The alert cursor is the time of the newest alert
  looked at; each look reads from :data:`~.triggers.ALERT_GRACE_MS` before it (an alert committed
  after a look, stamped with an earlier time, is still seen) and skips the alerts marked
  as looked at. A firing alert's mark is made in its trigger's transaction (a
  :class:`~.cycles.CursorMove` that creates it), so two agents looking at once turn it
  into one trigger: the second finds it ``seen`` and says nothing.
- ``new_data``: the dataset's newest version, when it is newer than the version the
  policy's cursor has seen (versions committed between two looks start one cycle, on
  the newest; the pipelines stage's dataset triggers do the same).
- ``schedule``: the cron's due time, when it has passed (the pipelines stage's cron and
  its ``once`` catch-up: due times missed while no agent ran fire once, counted in
  ``missed``).

A ``new_data`` or ``schedule`` trigger moves its cursor in the trigger's own transaction
(:class:`~.cycles.CursorMove`), so a version or a due time is looked at exactly once:
it starts a cycle, is absorbed by the one running, or is skipped by the cooldown or the
daily cap, as an alert would be (the outcome says which); a skipped one does not wait
to fire later. The cursors start when the policy is applied (:func:`first_cursors`):
what exists then is not new.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from driftline.core.clock import from_ms, to_ms
from driftline.retraining.cycles import CursorMove, Trigger, TriggerOutcome
from driftline.retraining.triggers import (
    ALERT_CHECKS,
    ALERT_GRACE_MS,
    alert_key,
    cursor_key,
    judge_alert,
)

if TYPE_CHECKING:
    from driftline.data import DataService
    from driftline.pipelines import Cron
    from driftline.retraining.loop import Retrainer
    from driftline.retraining.policy import RetrainPolicy, TriggerRule

__all__ = ["first_cursors", "look_alerts", "look_new_data", "look_schedules"]

Say = Callable[[str], None]


def first_cursors(policy: RetrainPolicy, data: DataService, now: int) -> dict[str, int]:
    """Where each ``new_data`` and ``schedule`` trigger of ``policy`` starts at ``now``."""
    return {
        cursor_key(rule): _first(rule, data, now)
        for rule in policy.triggers
        if rule.kind in ("new_data", "schedule")
    }


def _first(rule: TriggerRule, data: DataService, now: int) -> int:
    if rule.kind == "new_data":
        latest = data.find_latest(str(rule.settings["dataset"]))
        return 0 if latest is None else latest.number  # 0: the first version is new
    return _cron(rule).next_after(now)


def _cron(rule: TriggerRule) -> Cron:
    from driftline.pipelines import parse_cron

    return parse_cron(str(rule.settings["cron"]), str(rule.settings.get("timezone", "UTC")))


def _cursor(loop: Retrainer, policy: RetrainPolicy, rule: TriggerRule, now: int) -> int:
    """The rule's cursor; one the policy lacks (applied before cursors were kept) starts
    now, and what exists now is not new."""
    key = cursor_key(rule)
    found = loop.store.cursors(policy.model).get(key)
    if found is not None:
        return found
    return loop.store.start_cursor(policy.model, key, _first(rule, loop.data, now), now=now)


def _said(model: str, what: str, outcome: TriggerOutcome, say: Say) -> None:
    # ``seen``: another look consumed it first, and that look says what it did.
    if outcome.outcome == "started" and outcome.cycle is not None:
        say(f"Retraining {model}: {what} started cycle {outcome.cycle.id}")
    elif outcome.outcome == "skipped":
        say(f"Retraining {model}: {what} started no cycle: {outcome.reason}")


def look_alerts(loop: Retrainer, policy: RetrainPolicy, say: Say, now: int) -> None:
    """Alerts raised since the last look -> triggers (see the module docstring)."""
    rules = [r for r in policy.triggers if r.kind in ALERT_CHECKS]
    if not rules:
        return
    model = policy.model
    # The marks before the cursor: the cursor only moves forward and a mark is forgotten
    # only once the cursor is ALERT_GRACE_MS past it, so the marks read first hold every
    # mark within reach of the cursor read after. (Read the other way round, another
    # agent's look in between could move the cursor on and forget a mark this look then
    # reads from its older cursor.)
    marked = loop.store.alert_marks(model)
    seen = loop.store.alerts_seen_at(model)
    since = None
    if seen is not None:
        # Reread ALERT_GRACE_MS before the cursor (never before the policy): an alert is
        # stamped before its transaction commits, so one stamped at or before the newest
        # alert of a look may become visible after it. The marks say which were looked at.
        since = from_ms(max(seen - ALERT_GRACE_MS, loop.store.applied_at(model) or 0))
    found = {}
    for monitor in sorted({r.monitor for r in rules if r.monitor is not None}):
        for alert in loop.monitoring.monitors.alerts(since=since, monitor=monitor):
            if alert.id not in marked:
                found[alert.id] = alert
    newest = seen
    quiet: dict[str, int] = {}  # alerts that fire nothing: marked with the cursor's move
    for alert in sorted(found.values(), key=lambda a: (a.created_at, a.id)):
        at = to_ms(alert.created_at)
        newest = max(newest or 0, at)
        mine = [
            r for r in rules if r.monitor == alert.monitor and ALERT_CHECKS[r.kind] == alert.check
        ]
        if not mine:  # an alert of another check of the monitor
            quiet[alert.id] = at
            continue
        decisions = [(r, judge_alert(r, alert.check, alert.figures)) for r in mine]
        fired = next(((r, d) for r, d in decisions if d.fires), None)
        what = f"alert {alert.id} ({alert.monitor}, {alert.check})"
        if fired is None:
            why = "; ".join(d.why for _, d in decisions)
            say(f"Retraining {model}: {what} fires no trigger: {why}")
            quiet[alert.id] = at
            continue
        rule, decision = fired
        payload = {
            "alert_id": alert.id, "monitor": alert.monitor, "check": alert.check,
            "severity": alert.severity, "trigger": rule.kind, "why": decision.why,
            "matched": decision.matched,
        }  # fmt: skip
        # The alert's mark is made in the trigger's transaction: a look that reads it
        # too (another agent, or a later look within the grace) finds it seen.
        mark = CursorMove(alert_key(alert.id), None, at)
        outcome = loop.trigger(model, Trigger("alert", alert.id, payload), now=now, cursor=mark)
        _said(model, what, outcome, say)
    # Only a look that moves the cursor or has quiet alerts to mark writes: the write
    # holds the policy row (on SQLite, the database) and a quiet tick need not.
    if newest is not None and (quiet or newest != seen):
        loop.store.see_alerts(model, newest, marks=quiet)


def look_new_data(loop: Retrainer, policy: RetrainPolicy, say: Say, now: int) -> None:
    """A newer version of each ``new_data`` trigger's dataset -> one trigger."""
    from driftline.pipelines import dataset_payload

    for rule in policy.triggers:
        if rule.kind != "new_data":
            continue
        seen = _cursor(loop, policy, rule, now)
        latest = loop.data.find_latest(str(rule.settings["dataset"]))
        if latest is None or latest.number <= seen:
            continue
        before = f"{latest.dataset}@{seen}" if seen else "no version"
        payload = {**dataset_payload(latest), "why": f"{latest.ref} is new (seen: {before})"}
        cause = Trigger("new_data", latest.ref, payload)
        move = CursorMove(cursor_key(rule), seen, latest.number)
        outcome = loop.trigger(policy.model, cause, now=now, cursor=move)
        _said(policy.model, f"new data {latest.ref}", outcome, say)


def look_schedules(loop: Retrainer, policy: RetrainPolicy, say: Say, now: int) -> None:
    """A passed due time of each ``schedule`` trigger -> one trigger (catch-up once)."""
    from driftline.pipelines import due_to_fire, schedule_payload

    for rule in policy.triggers:
        if rule.kind != "schedule":
            continue
        due = _cursor(loop, policy, rule, now)
        if due > now:
            continue
        cron = _cron(rule)
        (at,), missed = due_to_fire(cron, due, now, "once")
        payload = schedule_payload(cron.expression, at, missed)
        payload.update(
            timezone=cron.timezone,
            why=f"{cron.expression} ({cron.timezone}) came due at {payload['scheduled_for']}"
            + (f", {missed} earlier due time(s) missed" if missed else ""),
        )
        cause = Trigger("schedule", str(payload["scheduled_for"]), payload)
        move = CursorMove(cursor_key(rule), due, cron.next_after(now))
        outcome = loop.trigger(policy.model, cause, now=now, cursor=move)
        _said(
            policy.model, f"schedule {cron.expression} due {payload['scheduled_for']}", outcome, say
        )
