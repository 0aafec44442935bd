"""The live metric of a canary: its requests' labels against stable's, in the check window.

Serving judges a canary on what it sees itself (errors, latency, the spread of the
predictions); whether the canary is *right* needs labels, which are monitoring's. This
module is what the monitoring stage contributes to serving's canary checks (the
extension point ``serving.canary_checks``, declared in the stage's ``extends``): at each
check serving hands over the window, and :class:`LiveMetricCheck` answers::

    {"check": "live_metric", "verdict": "pass" | "fail" | "wait", "reason", "measured",
     "threshold", "figures": {"stable": {...}, "canary": {...}}}

It applies only to deployments whose spec asks for it (``canary.checks.metric: {name:
roc_auc, max_drop: 0.02, min_labels: 50}``). Each variant's traffic in the window
(shadow rows left out) is joined with its labels and measured with the same code as
:func:`driftline.monitoring.performance`. ``measured`` is how much worse the canary is
than stable (stable minus canary for metrics that rise as they improve, canary minus
stable for losses and errors, see :data:`~driftline.core.metric_direction.LOWER_IS_BETTER`);
above ``max_drop`` is a ``fail``. Fewer than ``min_labels`` labelled requests of either
variant, or a metric the traffic cannot give (ROC AUC of a model answering classes, not
scores), is a ``wait``: thin labels never fail a canary, and never pass it either.

Serving cannot import monitoring, nor monitoring serving: the window is read by its
attributes (``deployment``, ``start``, ``end``), as serving documents them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftline.core.metric_direction import LOWER_IS_BETTER

if TYPE_CHECKING:
    from driftline.core.stage import Host
    from driftline.monitoring.models import PerformanceWindow
    from driftline.monitoring.service import MonitoringService

__all__ = ["LiveMetricCheck", "live_metric_check"]


class LiveMetricCheck:
    """Serving's canary check of the live metric (see the module docstring)."""

    name = "live_metric"

    def __init__(self, service: MonitoringService) -> None:
        self.service = service

    def __call__(self, window: Any) -> dict[str, Any] | None:
        """The verdict over one canary check's window (``None``: the spec asks for none)."""
        import pyarrow.compute as pc

        canary = window.deployment.spec.canary
        spec = None if canary is None else canary.checks.metric
        if spec is None:
            return None
        name = window.deployment.name
        rows = self.service.traffic(name, window.start, window.end)
        measured: dict[str, PerformanceWindow] = {}
        for variant in ("stable", "canary"):
            mine = rows.filter(pc.equal(rows["variant"], variant)) if rows.num_rows else rows
            measured[variant] = self.service.realized_performance(
                name, mine, window.start, window.end, min_labels=spec.min_labels
            )
        stable, canary_w = measured["stable"], measured["canary"]
        figures = {v: _figures(w, spec.name) for v, w in measured.items()}
        result: dict[str, Any] = {
            "check": self.name,
            "measured": None,
            "threshold": spec.max_drop,
            "figures": figures,
        }
        if min(stable.labelled, canary_w.labelled) < spec.min_labels:
            return {
                **result,
                "verdict": "wait",
                "reason": f"too few labels for {spec.name}: canary {canary_w.labelled}, "
                f"stable {stable.labelled} labelled requests in the window, "
                f"{spec.min_labels} needed of each",
            }
        values = (stable.metrics.get(spec.name), canary_w.metrics.get(spec.name))
        if values[0] is None or values[1] is None:
            known = sorted(set(stable.metrics) & set(canary_w.metrics))
            return {
                **result,
                "verdict": "wait",
                "reason": f"{spec.name} is not defined on this traffic (task "
                f"{canary_w.task}; measured: {', '.join(known) or 'nothing'})",
            }
        worse = _worsening(spec.name, values[0], values[1])
        failed = worse > spec.max_drop
        return {
            **result,
            "measured": round(worse, 6),
            "verdict": "fail" if failed else "pass",
            "reason": f"canary {spec.name} {values[1]:.4g} vs stable {values[0]:.4g}: "
            f"{worse:+.4g} worse, at most {spec.max_drop:g} allowed",
        }


def _worsening(metric: str, stable: float, canary: float) -> float:
    return canary - stable if metric in LOWER_IS_BETTER else stable - canary


def _figures(window: PerformanceWindow, metric: str) -> dict[str, Any]:
    value = window.metrics.get(metric)
    return {
        metric: None if value is None else round(value, 6),
        "requests": window.rows,
        "labelled": window.labelled,
        "coverage": round(window.coverage, 6),
    }


def live_metric_check(host: Host) -> LiveMetricCheck | None:
    """The contribution to serving's canary checks (``None`` where labels are not local:
    a remote workspace's labels are its server's; serving then waits on a spec asking
    for the live metric, never promoting unjudged)."""
    from driftline.monitoring.service import MonitoringService

    service = host.service("monitoring", MonitoringService)
    if service.labels is None or service.log_root is None:
        return None
    return LiveMetricCheck(service)
