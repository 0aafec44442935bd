"""The monitors' state as Prometheus gauges, for a ``/metrics`` route to expose.

Read from the metadata database at each scrape (a collector, not process state), so
every serving worker and the team server report the same figures::

    driftline_monitor_healthy{monitor, deployment}             1 healthy, 0 alerting/failed
    driftline_monitor_check_severity{monitor, deployment, check}   0 ok, 1 warning, 2 critical
    driftline_monitor_undelivered_alerts{monitor, deployment}  deliveries still to be made
    driftline_monitor_last_evaluation_timestamp_seconds{monitor, deployment}

Only monitors that ran at least once appear. To expose them next to a process's own
metrics, register the collector on its registry::

    from driftline.monitoring.prometheus import register_monitor_metrics
    register_monitor_metrics(registry, monitoring_service.monitors, deployment="churn")

A serving process exposes them on its ``/metrics`` through serving's extension point
``serving.metrics`` (the stage's ``extends`` names :func:`serving_metrics`): the gauges
of the monitors of the deployment it serves, read at most every few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Callable

    from driftline.core.stage import Host
    from driftline.monitoring.monitors import MonitorService

__all__ = [
    "MonitorCollector",
    "register_monitor_metrics",
    "render_monitor_metrics",
    "serving_metrics",
]

_SEVERITY = {"warning": 1.0, "critical": 2.0}


class MonitorCollector:
    """A prometheus-client collector of the monitors (of one deployment, or all)."""

    def __init__(self, monitors: MonitorService, deployment: str | None = None) -> None:
        self.monitors = monitors
        self.deployment = deployment

    def describe(self) -> list[Any]:
        """Nothing up front: the families depend on the monitors found at scrape time."""
        return []

    def collect(self) -> Iterator[Any]:
        """The gauges, read now."""
        from prometheus_client.core import GaugeMetricFamily

        p = "driftline_monitor_"
        labels = ["monitor", "deployment"]
        healthy = GaugeMetricFamily(
            f"{p}healthy", "1 when the latest evaluation is healthy", labels=labels
        )
        severity = GaugeMetricFamily(
            f"{p}check_severity",
            "Latest state of each check: 0 ok, 1 warning, 2 critical alert",
            labels=[*labels, "check"],
        )
        undelivered = GaugeMetricFamily(
            f"{p}undelivered_alerts", "Alert deliveries not yet made", labels=labels
        )
        last = GaugeMetricFamily(
            f"{p}last_evaluation_timestamp_seconds", "End of the latest window", labels=labels
        )
        for monitor, evaluation in self.monitors.status():
            if self.deployment is not None and monitor.deployment != self.deployment:
                continue
            if evaluation is None:
                continue
            key = [monitor.name, monitor.deployment]
            ok = evaluation.status in ("healthy", "insufficient_data")
            healthy.add_metric(key, 1.0 if ok else 0.0)
            for c in evaluation.checks:
                value = _SEVERITY.get(c.severity or "", 0.0) if c.status == "alert" else 0.0
                severity.add_metric([*key, c.check], value)
            undelivered.add_metric(key, float(len(self.monitors.store.undelivered(monitor.name))))
            last.add_metric(key, evaluation.window_end.timestamp())
        yield from (healthy, severity, undelivered, last)


def register_monitor_metrics(
    registry: Any, monitors: MonitorService, deployment: str | None = None
) -> MonitorCollector:
    """Add the monitors' gauges to a ``prometheus_client.CollectorRegistry``."""
    collector = MonitorCollector(monitors, deployment)
    registry.register(collector)
    return collector


def render_monitor_metrics(monitors: MonitorService, deployment: str | None = None) -> bytes:
    """The gauges alone, in the Prometheus text format."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    register_monitor_metrics(registry, monitors, deployment)
    return bytes(generate_latest(registry))


def serving_metrics(host: Host) -> Callable[[str], MonitorCollector] | None:
    """The contribution to a serving process's ``/metrics``: ``deployment -> collector``
    of that deployment's monitors (``None`` without local monitors: a remote
    workspace's are its server's)."""
    from driftline.monitoring.monitors import MonitorService
    from driftline.monitoring.service import MonitoringService

    service = host.service("monitoring", MonitoringService)
    try:
        monitors = service.monitors
    except InvalidArgumentError:
        return None
    if not isinstance(monitors, MonitorService):
        return None
    return lambda deployment: MonitorCollector(monitors, deployment)
