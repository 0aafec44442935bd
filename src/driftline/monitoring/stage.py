"""The monitoring stage's declaration (see :mod:`driftline.core.stage`).

Fitted drift references are JSON objects in the content store, recorded in the
``monitoring_references`` table (its own migration branch); those objects are its gc
roots. Labels of served requests are rows of ``monitoring_labels``; the prediction log
they join is serving's, read from where serving writes it. Monitors, their evaluations
and figures, alerts and deliveries are rows of the ``monitoring_*`` tables of the same
branch (no stored objects); the team server serves them under ``/api/v1/monitoring``. A
remote workspace has no reference store yet (references live in memory there); its
monitors, labels, performance and checks are the server's, over HTTP.

It extends serving (which cannot import it) through serving's extension points: the
live metric from labels in every canary check (:mod:`driftline.monitoring.canary`), and
the monitors' alert gauges on a serving process's ``/metrics``
(:func:`driftline.monitoring.prometheus.serving_metrics`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.core.stage import Host, Kernel, Services, Stage

if TYPE_CHECKING:
    from driftline.monitoring.service import MonitoringService

__all__ = ["STAGE"]


def _build(kernel: Kernel, uses: Services) -> MonitoringService:
    from driftline.monitoring.service import MonitoringService

    if kernel.database is None:
        from driftline.monitoring._http import HttpMonitorService, HttpTrafficService

        client = kernel.client
        return MonitoringService(
            None,
            None,
            remote_monitors=HttpMonitorService(client) if client else None,
            remote_traffic=HttpTrafficService(client) if client else None,
        )
    from driftline.core.notify import DeliveryPolicy
    from driftline.monitoring._monitor_sql import SqlMonitorStore
    from driftline.monitoring._sql import SqlLabelStore, SqlReferenceStore
    from driftline.monitoring._traffic import log_root
    from driftline.registry import RegistryService

    settings = kernel.settings
    return MonitoringService(
        SqlReferenceStore(kernel.database),
        kernel.content,
        labels=SqlLabelStore(kernel.database),
        log_root=log_root(settings.home, settings.artifact_root),
        cache=settings.home / "monitoring" / "traffic",
        monitor_store=SqlMonitorStore(kernel.database),
        registry=uses.get("registry", RegistryService),
        delivery=DeliveryPolicy.from_settings(settings),
    )


def _roots(service: MonitoringService) -> Iterable[str]:
    return service.referenced_digests()


def _example(host: Host, _tmp_path: Path) -> Iterable[str]:
    import pandas as pd

    from driftline.monitoring.service import MonitoringService

    frame = pd.DataFrame({"x": [float(i % 17) for i in range(300)], "c": ["a", "b", "c"] * 100})
    stored, _ = host.service("monitoring", MonitoringService).fit_reference(frame, name="contract")
    return {stored.digest}


STAGE: Stage[MonitoringService] = Stage(
    name="monitoring",
    uses=("data", "registry"),
    build=_build,
    gc_roots=_roots,
    tables=("driftline.monitoring._tables", "driftline.monitoring._monitor_tables"),
    migrations="driftline.monitoring.migrations",
    routes=("driftline.server.routes.monitoring:router",),
    cli="driftline.cli.monitoring:register",
    api="driftline.monitoring",
    example=_example,
    # Serving's extension points (named in driftline.serving.analysis and .metrics).
    extends={
        "serving.canary_checks": "driftline.monitoring.canary:live_metric_check",
        "serving.metrics": "driftline.monitoring.prometheus:serving_metrics",
    },
)
