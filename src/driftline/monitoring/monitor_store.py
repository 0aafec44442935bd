"""The narrow store protocol of monitors, evaluations, figures, alerts and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from driftline.monitoring.monitor_models import Alert, Delivery, Evaluation, Figure, Monitor

__all__ = ["MonitorStore"]


class MonitorStore(Protocol):
    """Monitor records and what their runs produced (SQL: :mod:`._monitor_sql`)."""

    def add_monitor(self, monitor: Monitor, *, replace: bool) -> Monitor:
        """Store a monitor; ``AlreadyExistsError`` when the name is taken, unless
        ``replace`` (history and alerts are kept: they are filed by name)."""
        ...

    def get_monitor(self, name: str) -> Monitor | None:
        """The monitor of that name, or None."""
        ...

    def list_monitors(self) -> list[Monitor]:
        """Every monitor, by name."""
        ...

    def delete_monitor(self, name: str) -> bool:
        """Remove a monitor (its history and alerts stay); whether it existed."""
        ...

    def add_evaluation(self, evaluation: Evaluation) -> None:
        """Store an evaluation with its figures, in one transaction."""
        ...

    def evaluations(
        self, monitor: str, *, since: datetime | None = None, limit: int | None = None
    ) -> list[Evaluation]:
        """A monitor's evaluations, oldest first (the newest ``limit`` when given), with
        their figures."""
        ...

    def figures(
        self,
        monitor: str,
        *,
        check: str | None = None,
        column: str | None = None,
        metric: str | None = None,
        since: datetime | None = None,
    ) -> list[Figure]:
        """A monitor's time series, filtered, by window end then check, column, metric.
        ``column=""`` selects the dataset-level figures."""
        ...

    def raise_alert(self, alert: Alert, *, since: datetime) -> tuple[Alert, bool]:
        """Store ``alert`` unless an alert of its monitor, check and severity was raised
        at or after ``since`` (the cooldown's start): then count one more sighting of that
        one instead (``repeats`` + 1, ``last_seen_at``). Atomic: of concurrent calls for
        one monitor, exactly one raises. ``(the alert, whether it is new)``."""
        ...

    def add_alert(self, alert: Alert) -> None:
        """Store a new alert and its pending deliveries, in one transaction (no
        deduplication: :meth:`raise_alert` is how runs raise alerts)."""
        ...

    def alerts(
        self,
        *,
        since: datetime | None = None,
        monitor: str | None = None,
        severity: str | None = None,
        limit: int | None = None,
    ) -> list[Alert]:
        """Alerts raised at or after ``since``, oldest first (the newest ``limit``)."""
        ...

    def undelivered(self, monitor: str) -> list[tuple[Alert, Delivery]]:
        """Deliveries of a monitor's alerts not yet delivered, oldest alert first."""
        ...

    def update_delivery(self, alert_id: str, delivery: Delivery) -> None:
        """Record the outcome of a delivery attempt."""
        ...
