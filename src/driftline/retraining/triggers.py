"""When a policy's trigger fires: its threshold rules, as pure functions.

A monitoring alert fires a ``drift`` or ``performance`` trigger of its monitor only
when the figures it carries (the check's summary, see
:mod:`driftline.monitoring.checks`) pass the trigger's thresholds:

- ``drift: {monitor, columns: any | [names], min_share}``: with ``columns``, the
  ``drift`` check's ``drifted_columns`` hold a column the trigger watches (any column,
  or one of the listed ones); with ``min_share``, its ``drift_share`` is at least
  ``min_share``. Without either, every drift alert of the monitor fires it.
- ``performance: {monitor, metric, below, min_label_coverage}``: the ``performance``
  check's ``metrics[metric]`` (realized, or estimated when labels were too few) is
  below ``below`` and, with ``min_label_coverage``, its ``label_coverage`` is at least
  that.

A figure a rule needs that the alert lacks means the trigger does not fire; the
:class:`Decision` says which figure. A firing decision keeps the figures that matched
(they go into the trigger's payload, so a cycle records why it started).

``new_data`` and ``schedule`` triggers fire on what they have not seen yet; their
cursors are named by :func:`cursor_key`, and the marks of alerts already looked at by
:func:`alert_key`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftline.errors import InvalidArgumentError
from driftline.retraining.policy import TriggerRule

__all__ = [
    "ALERT_CHECKS",
    "ALERT_GRACE_MS",
    "ALERT_KEY_PREFIX",
    "Decision",
    "alert_key",
    "cursor_key",
    "judge_alert",
]

#: The monitoring check whose alerts each alert-driven trigger kind reads.
ALERT_CHECKS = {"drift": "drift", "performance": "performance"}
#: How the marks of alerts already looked at are named among a policy's cursors.
ALERT_KEY_PREFIX = "alert:"
#: How far before the alert cursor a look reads again (ms): how late an alert may become
#: visible after the time it carries and still be looked at. Marks of alerts older than
#: that before the cursor are forgotten: no look reads them again.
ALERT_GRACE_MS = 300_000


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a trigger fires, why (one sentence), and the figures that matched."""

    fires: bool
    why: str
    matched: dict[str, Any] = field(default_factory=dict)


def judge_alert(rule: TriggerRule, check: str, figures: Mapping[str, Any]) -> Decision:
    """Whether an alert of ``check`` with ``figures`` fires ``rule`` (a drift or
    performance trigger of the alert's monitor)."""
    expected = ALERT_CHECKS.get(rule.kind)
    if expected is None:
        raise InvalidArgumentError(f"A {rule.kind} trigger does not fire on monitoring alerts")
    if check != expected:
        return Decision(False, f"a {check} alert, and this {rule.kind} trigger reads {expected}")
    if rule.kind == "drift":
        return _drift(rule.settings, figures)
    return _performance(rule.settings, figures)


def cursor_key(rule: TriggerRule) -> str:
    """The name of the cursor of a ``new_data`` or ``schedule`` trigger: a changed
    trigger (another dataset, cron or time zone) starts a new cursor."""
    if rule.kind == "new_data":
        return f"new_data:{rule.settings['dataset']}"
    if rule.kind == "schedule":
        return f"schedule:{rule.settings.get('timezone', 'UTC')}:{rule.settings['cron']}"
    raise InvalidArgumentError(f"A {rule.kind} trigger has no cursor")


def alert_key(alert_id: str) -> str:
    """The name of the mark saying a monitoring alert was looked at (its value: the
    alert's time, ms)."""
    return f"{ALERT_KEY_PREFIX}{alert_id}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _missing(name: str, figures: Mapping[str, Any], needed_by: str) -> Decision:
    has = ", ".join(sorted(figures)) or "no figures"
    return Decision(False, f"the alert has no {name} figure ({needed_by} needs it; it has {has})")


def _drift(settings: Mapping[str, Any], figures: Mapping[str, Any]) -> Decision:
    matched: dict[str, Any] = {}
    why = "a drift alert"
    watched = settings.get("columns")
    if watched is not None:
        drifted = figures.get("drifted_columns")
        if not isinstance(drifted, list) or not all(isinstance(c, str) for c in drifted):
            return _missing("drifted_columns", figures, "columns")
        hit = list(drifted) if watched == "any" else [c for c in watched if c in drifted]
        if not hit:
            named = "" if watched == "any" else f" of the watched ones ({', '.join(watched)})"
            return Decision(
                False, f"no column{named} drifted (drifted: {', '.join(drifted) or 'none'})"
            )
        matched["drifted_columns"] = hit
        why = f"{', '.join(hit)} drifted"
    min_share = settings.get("min_share")
    if min_share is not None:
        share = _number(figures.get("drift_share"))
        if share is None:
            return _missing("drift_share", figures, "min_share")
        if share < min_share:
            return Decision(
                False, f"the drift share {share:.3g} is below min_share {float(min_share):g}"
            )
        matched.update(drift_share=share, min_share=min_share)
        why += f"; drift share {share:.3g} >= min_share {float(min_share):g}"
    if not matched:
        why += " (the trigger sets no thresholds)"
    return Decision(True, why, matched)


def _performance(settings: Mapping[str, Any], figures: Mapping[str, Any]) -> Decision:
    metric, below = str(settings["metric"]), float(settings["below"])
    metrics = figures.get("metrics")
    value = _number(metrics.get(metric)) if isinstance(metrics, Mapping) else None
    if value is None and figures.get("metric") == metric:
        value = _number(figures.get("value"))
    if value is None:
        return _missing(metric, figures, f"a performance trigger on {metric}")
    kind = str(figures.get("kind", "realized"))
    shown = f"{metric} {value:.3g}" + (" (estimated)" if kind == "estimated" else "")
    if not value < below:
        return Decision(False, f"{shown} is not below {below:g}")
    matched: dict[str, Any] = {metric: value, "below": below, "kind": kind}
    why = f"{shown} < {below:g}"
    least = settings.get("min_label_coverage")
    if least is not None:
        coverage = _number(figures.get("label_coverage"))
        if coverage is None:
            return _missing("label_coverage", figures, "min_label_coverage")
        if coverage < least:
            return Decision(
                False,
                f"{shown} is below {below:g}, but the label coverage {coverage:.0%} is below "
                f"min_label_coverage {float(least):.0%}",
            )
        matched.update(label_coverage=coverage, min_label_coverage=least)
        why += f"; label coverage {coverage:.0%} >= {float(least):.0%}"
    return Decision(True, why, matched)
