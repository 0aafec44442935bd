"""The rules of monitors: create them, run their checks on a window, raise and deliver alerts.

A run reads the window ``[at - window, at)`` of the deployment's traffic once (one row per
predicted row, see :meth:`.service.MonitoringService.traffic`), runs
each check of the monitor (see :mod:`.checks`) on it, and stores one evaluation with
every figure the checks produced (a queryable time series). A check in ``alert`` state
raises an alert, unless the same monitor, check and severity raised one within the
cooldown: then that alert's ``repeats`` grows and nothing is delivered again (an alert of
a higher severity is a new alert). Then every undelivered delivery of the monitor's
alerts, new or left over from earlier runs, is attempted: a webhook that is down is
retried with backoff and its failure recorded, and the next run tries it again.

A check that fails (no reference, unreadable data) is an ``error`` outcome recorded in
the evaluation, so one broken check never hides the others' results.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from driftline.core.clock import from_ms, now_ms, to_ms
from driftline.core.notify import DeliveryPolicy, parse_channel
from driftline.errors import DriftlineError, InvalidArgumentError, NotFoundError
from driftline.monitoring.channels import deliver
from driftline.monitoring.checks import (
    JOIN_WINDOW,
    CheckContext,
    CheckVerdict,
    get_check,
    lineage_reference,
    monitor_thresholds,
)
from driftline.monitoring.monitor_models import (
    Alert,
    CheckOutcome,
    Delivery,
    Evaluation,
    Figure,
    Monitor,
    MonitorRun,
    check_name,
)
from driftline.monitoring.windows import parse_duration

if TYPE_CHECKING:
    from driftline.monitoring.monitor_store import MonitorStore
    from driftline.monitoring.service import MonitoringService

__all__ = ["MonitorService"]

log = logging.getLogger("driftline.monitoring")

DEFAULT_COOLDOWN = "6h"


class MonitorService:
    """Monitors of one workspace: records in ``store``, traffic from the prediction log.

    Example:
        >>> svc = ws.service("monitoring", MonitoringService).monitors       # doctest: +SKIP
        >>> svc.create("churn-prod", deployment="churn", alerts=["log"])    # doctest: +SKIP
        >>> svc.run("churn-prod").healthy                                   # doctest: +SKIP
    """

    def __init__(
        self,
        monitoring: MonitoringService,
        store: MonitorStore,
        prediction_root: str,
        delivery: DeliveryPolicy | None = None,
    ) -> None:
        self.monitoring = monitoring
        self.store = store
        self.prediction_root = prediction_root
        #: How hard alerts' webhooks are tried, and where they may go.
        self.delivery = delivery or DeliveryPolicy()

    # -- records ----------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        deployment: str,
        window: str | int = "1d",
        checks: Sequence[str] = ("drift",),
        alerts: Sequence[str] = (),
        cooldown: str | int = DEFAULT_COOLDOWN,
        reference: str | None = None,
        thresholds: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> Monitor:
        """Create (or with ``replace``, redefine) a monitor; every field is checked first.

        Raises:
            InvalidArgumentError: A bad name, window, cooldown, check, channel (or a
                webhook the ``webhook_allow`` setting refuses) or threshold (the
                message names the field).
            NotFoundError: No prediction log of ``deployment`` (the message lists the
                deployments that have one).
            AlreadyExistsError: The name is taken and ``replace`` is false.
        """
        from driftline.core.ids import new_id

        check_name(name)
        check_name(deployment, "deployment")
        window_seconds = _seconds(window, "window")
        cooldown_seconds = _seconds(cooldown, "cooldown")
        if isinstance(checks, str):
            checks = [c.strip() for c in checks.split(",") if c.strip()]
        if not checks:
            raise InvalidArgumentError("A monitor runs at least one check (checks=['drift'])")
        for c in checks:
            get_check(c)
        channels = tuple(dict.fromkeys(parse_channel(a) for a in alerts))
        existing = self.store.get_monitor(name) if replace else None
        # this process's webhook_allow, on the channels a redefined monitor adds
        self.delivery.allow.check_new(channels, existing.channels if existing else ())
        if thresholds is not None:
            monitor_thresholds(thresholds)  # validated now, applied on each run
        if reference is not None and (not isinstance(reference, str) or not reference.strip()):
            raise InvalidArgumentError(f"Invalid reference {reference!r}: name a dataset version")
        known = self.deployments()
        if deployment not in known:
            listed = ", ".join(known) if known else "none yet"
            raise NotFoundError(
                f"Unknown deployment {deployment!r}: it has no prediction log (deployments "
                f"with traffic: {listed}); serve it first, e.g. driftline serve "
                f"{deployment}@champion, then create the monitor"
            )
        monitor = Monitor(
            id=new_id(),
            name=name,
            deployment=deployment,
            window_seconds=window_seconds,
            checks=tuple(dict.fromkeys(checks)),
            channels=channels,
            cooldown_seconds=cooldown_seconds,
            reference=reference.strip() if reference else None,
            thresholds=dict(thresholds) if thresholds is not None else None,
            created_at=_now(),
        )
        return self.store.add_monitor(monitor, replace=replace)

    def get(self, name: str) -> Monitor:
        """The monitor named ``name`` (``NotFoundError`` lists the existing ones)."""
        found = self.store.get_monitor(name)
        if found is None:
            names = [m.name for m in self.store.list_monitors()]
            raise NotFoundError(
                f"No monitor named {name!r} (monitors: {', '.join(names) or 'none'}); "
                "create one with driftline monitor create NAME --deployment D"
            )
        return found

    def list_monitors(self) -> list[Monitor]:
        """Every monitor, by name."""
        return self.store.list_monitors()

    def delete(self, name: str) -> None:
        """Remove a monitor; its evaluations and alerts are kept."""
        if not self.store.delete_monitor(name):
            self.get(name)  # raises the NotFoundError listing the monitors

    def deployments(self) -> list[str]:
        """Deployments that have a prediction log, by name."""
        from driftline.monitoring._traffic import deployments

        return deployments(self.prediction_root)

    # -- runs -------------------------------------------------------------------------

    def run(self, name: str, *, at: datetime | None = None) -> MonitorRun:
        """Evaluate the window ending at ``at`` (default now), raise and deliver alerts."""
        from driftline.core.ids import new_id

        monitor = self.get(name)
        end = _now() if at is None else from_ms(to_ms(_check_time(at)))
        start = end - timedelta(seconds=monitor.window_seconds)
        with ThreadPoolExecutor(1, thread_name_prefix="driftline-monitor") as pool:
            # The performance check, the longest (its labels, a join, CBPE), reads its
            # labels beside the window's read and runs beside the other checks: SQLite,
            # Arrow and numpy release the GIL (`monitor run` of a 10M-row window: 6.6 s ->
            # 5.8 s, median of three).
            scored = "performance" in monitor.checks
            labels = (
                pool.submit(
                    self.monitoring.window_labels, monitor.deployment, start, end, JOIN_WINDOW
                )
                if scored
                else None
            )
            rows = self.monitoring.traffic(monitor.deployment, start, end)
            ctx = CheckContext(
                monitor, rows, start, end, self.monitoring, lineage_reference, labels
            )
            performance = pool.submit(_run_check, "performance", ctx) if scored else None
            results = {c: _run_check(c, ctx) for c in monitor.checks if c != "performance"}
            if performance is not None:
                results["performance"] = performance.result()
        evaluation_id = new_id()
        outcomes: list[CheckOutcome] = []
        figures: list[Figure] = []
        for check in monitor.checks:
            result = results[check]
            outcomes.append(
                CheckOutcome(
                    check=check,
                    status=result.status,
                    severity=result.severity,
                    message=result.message,
                    summary=result.summary,
                    details=result.details,
                )
            )
            figures += [
                Figure(
                    monitor=monitor.name,
                    evaluation_id=evaluation_id,
                    check=check,
                    column=column,
                    metric=metric,
                    value=value,
                    window_start=start,
                    window_end=end,
                )
                for column, metric, value in result.figures
            ]
        evaluation = Evaluation(
            id=evaluation_id,
            monitor=monitor.name,
            window_start=start,
            window_end=end,
            status=_status(outcomes),
            rows=ctx.requests,
            checks=tuple(outcomes),
            created_at=_now(),
            figures=tuple(sorted(figures, key=lambda f: f.order)),
        )
        self.store.add_evaluation(evaluation)
        raised, repeated = self._raise(monitor, evaluation, end)
        deliveries = self.deliver_pending(monitor.name)
        return MonitorRun(
            monitor=monitor,
            evaluation=evaluation,
            raised=tuple(raised),
            repeated=tuple(repeated),
            deliveries=tuple(deliveries),
        )

    def _raise(
        self, monitor: Monitor, evaluation: Evaluation, now: datetime
    ) -> tuple[list[Alert], list[Alert]]:
        from driftline.core.ids import new_id

        raised: list[Alert] = []
        repeated: list[Alert] = []
        cooldown_start = now - timedelta(seconds=monitor.cooldown_seconds)
        for outcome in evaluation.checks:
            if outcome.status != "alert":
                continue
            severity = outcome.severity or "warning"
            alert = Alert(
                id=new_id(),
                monitor=monitor.name,
                deployment=monitor.deployment,
                check=outcome.check,
                severity=severity,
                message=outcome.message,
                figures=outcome.summary,
                evaluation_id=evaluation.id,
                created_at=now,
                last_seen_at=now,
                deliveries=tuple(Delivery(channel=c, state="pending") for c in monitor.channels),
            )
            stored, new = self.store.raise_alert(alert, since=cooldown_start)
            (raised if new else repeated).append(stored)
        return raised, repeated

    def deliver_pending(self, monitor: str) -> list[tuple[str, Delivery]]:
        """Attempt every undelivered delivery of a monitor's alerts, oldest first."""
        done = []
        for alert, delivery in self.store.undelivered(monitor):
            outcome = deliver(alert, delivery, self.delivery)
            self.store.update_delivery(alert.id, outcome)
            done.append((alert.id, outcome))
        return done

    # -- queries ----------------------------------------------------------------------

    def history(
        self, name: str, *, since: datetime | None = None, limit: int | None = None
    ) -> list[Evaluation]:
        """A monitor's evaluations, oldest first, with their figures."""
        self.get(name)
        return self.store.evaluations(name, since=_utc(since), limit=limit)

    def series(
        self,
        name: str,
        *,
        check: str | None = None,
        column: str | None = None,
        metric: str | None = None,
        since: datetime | None = None,
    ) -> list[Figure]:
        """A monitor's figures as a time series (``column=""``: dataset-level ones)."""
        self.get(name)
        return self.store.figures(
            name, check=check, column=column, metric=metric, since=_utc(since)
        )

    def alerts(
        self,
        *,
        since: datetime | None = None,
        monitor: str | None = None,
        severity: str | None = None,
        limit: int | None = None,
    ) -> list[Alert]:
        """Alerts raised at or after ``since``, oldest first."""
        if severity is not None and severity not in ("warning", "critical"):
            raise InvalidArgumentError(
                f"Invalid severity {severity!r}: use 'warning' or 'critical'"
            )
        if limit is not None and limit < 1:
            raise InvalidArgumentError(f"limit must be at least 1, got {limit}")
        return self.store.alerts(since=_utc(since), monitor=monitor, severity=severity, limit=limit)

    def status(self) -> list[tuple[Monitor, Evaluation | None]]:
        """Every monitor with its latest evaluation (None before its first run)."""
        out = []
        for monitor in self.store.list_monitors():
            latest = self.store.evaluations(monitor.name, limit=1)
            out.append((monitor, latest[-1] if latest else None))
        return out

    def report(self, name: str, *, since: datetime | None = None, path: str | None = None) -> str:
        """The over-time HTML report of a monitor (written to ``path`` if given)."""
        from driftline.monitoring.history_report import render_history

        monitor = self.get(name)
        evaluations = self.store.evaluations(name, since=_utc(since))
        alerts = self.store.alerts(since=_utc(since), monitor=name)
        html: str = render_history(monitor, evaluations, alerts)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(html)
        return html


def _run_check(check: str, ctx: CheckContext) -> CheckVerdict:
    try:
        return get_check(check).run(ctx)
    except DriftlineError as exc:
        return CheckVerdict(status="error", message=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a failing check must not hide the other checks' results
        log.exception("check %s of monitor %s failed", check, ctx.monitor.name)
        return CheckVerdict(status="error", message=f"{type(exc).__name__}: {exc}")


def _seconds(value: str | int, what: str) -> int:
    """A monitor's window or cooldown in whole seconds (what the record keeps)."""
    seconds = parse_duration(value, what, positive=True).total_seconds()
    if seconds != int(seconds):
        raise InvalidArgumentError(f"Invalid {what} {value!r}: use whole seconds, e.g. 90s")
    return int(seconds)


def _status(outcomes: list[CheckOutcome]) -> str:
    states = {o.status for o in outcomes}
    if "alert" in states:
        return "alert"
    if "error" in states:
        return "error"
    if states == {"insufficient_data"}:
        return "insufficient_data"
    return "healthy"


def _now() -> datetime:
    """Now, to the millisecond the database keeps (a record reads back equal)."""
    return from_ms(now_ms())


def _check_time(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"Expected a datetime, got {value!r}")
    return value


def _utc(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"Expected a datetime, got {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
