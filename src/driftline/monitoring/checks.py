"""The checks a monitor runs on each window of a deployment's prediction log.

A check is a function ``(CheckContext) -> CheckResult`` registered in :data:`CHECKS` under
its name; a monitor lists the names it runs. Adding a check is one entry::

    CHECKS["quality"] = CheckSpec("quality", quality_check, "missing rates, new categories")

where ``quality_check`` reads what it needs from the context (the window's input and
prediction columns, the request ids to join labels on, the reference, the monitoring service)
and returns a :class:`CheckResult`: a status, a severity when it alerts, a one-line
message, the figures to keep as a time series and the details a report plots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.monitoring.monitor_models import Monitor, finite

if TYPE_CHECKING:
    import pyarrow as pa

    from driftline.monitoring.models import DriftThresholds, Reference
    from driftline.monitoring.service import MonitoringService

__all__ = ["CHECKS", "CheckContext", "CheckResult", "CheckSpec", "get_check", "known_checks"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """What a check returns.

    Attributes:
        status: ``ok``, ``alert``, ``insufficient_data`` or ``error``.
        severity: ``warning`` or ``critical`` when ``status`` is ``alert``.
        message: One line for people.
        figures: ``(column or None, metric, value)`` points of the monitor's time series.
        summary: The few figures an alert carries (JSON-ready).
        details: The full result for reports (JSON-ready), e.g. a drift report's dict.
    """

    status: str
    severity: str | None = None
    message: str = ""
    figures: list[tuple[str | None, str, float | None]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] | None = None


class CheckContext:
    """One window of a deployment's traffic, as the checks see it.

    The window is read once, one row per predicted row with the inputs and predictions
    as columns (see :mod:`._traffic`: successful requests only, shadow copies left out);
    the reference is resolved on first use and shared by every check of the run.
    """

    def __init__(
        self,
        monitor: Monitor,
        rows: pa.Table,
        window_start: datetime,
        window_end: datetime,
        service: MonitoringService,
        resolve_reference: Callable[[CheckContext], Reference],
    ) -> None:
        self.monitor = monitor
        self.rows = rows  # the window's flattened traffic
        self.window_start = window_start
        self.window_end = window_end
        self.service = service
        self._resolve_reference = resolve_reference
        self._reference: Reference | None = None

    @property
    def requests(self) -> int:
        """How many requests the window's rows come from."""
        import pyarrow.compute as pc

        if self.rows.num_rows == 0:
            return 0
        return len(pc.unique(self.rows["request_id"]))

    @property
    def inputs(self) -> pa.Table:
        """The input columns of the window's rows (a request of n rows gives n)."""
        from driftline.monitoring._traffic import META, is_prediction

        keep = [c for c in self.rows.column_names if c not in META and not is_prediction(c)]
        return self.rows.select(keep)

    @property
    def predictions(self) -> pa.Table:
        """The prediction columns of the window's rows."""
        from driftline.monitoring._traffic import is_prediction

        return self.rows.select([c for c in self.rows.column_names if is_prediction(c)])

    @property
    def reference(self) -> Reference:
        """The reference the window is compared with (fitted once, stored, reused)."""
        if self._reference is None:
            self._reference = self._resolve_reference(self)
        return self._reference

    @property
    def thresholds(self) -> DriftThresholds | None:
        """The monitor's drift thresholds, or None for the defaults."""
        from driftline.monitoring import _thresholds

        return _thresholds(self.monitor.thresholds)


def drift_check(ctx: CheckContext) -> CheckResult:
    """Drift of the served inputs against the deployment model's reference.

    Alerts ``critical`` on dataset drift, ``warning`` when some columns drift but not
    enough for dataset drift. Figures: ``rows``, ``drift_share``, ``drifted_columns`` for
    the dataset; ``score``, ``psi``, ``p_adjusted``, ``drifted`` per column.
    """
    from driftline.monitoring._frames import Source
    from driftline.monitoring.drift import compare
    from driftline.monitoring.models import DriftThresholds

    thresholds = ctx.thresholds or DriftThresholds()
    frame = ctx.inputs
    rows = frame.num_rows
    if rows < thresholds.min_rows:
        return CheckResult(
            status="insufficient_data",
            message=f"{rows} input rows in the window, fewer than {thresholds.min_rows}",
            figures=[(None, "rows", float(rows))],
            summary={"rows": rows},
        )
    reference = ctx.reference
    shared = [c for c in reference.columns if c in frame.column_names]
    if not shared:
        raise InvalidArgumentError(
            f"No input column of deployment {ctx.monitor.deployment!r} "
            f"({', '.join(frame.column_names)}) is in its reference "
            f"({reference.source}: {', '.join(reference.columns)}); give the monitor the "
            "reference of the model's inputs (reference=...)"
        )
    report = compare(
        reference,
        Source("prediction log", None, table=frame),
        columns=shared,
        thresholds=thresholds,
        reference_label=reference.source,
    )
    figures: list[tuple[str | None, str, float | None]] = [
        (None, "rows", float(rows)),
        (None, "drift_share", finite(report.drift_share)),
        (None, "drifted_columns", float(len(report.drifted_columns))),
    ]
    for c in report.columns.values():
        figures += [
            (c.column, "score", finite(c.score)),
            (c.column, "psi", finite(c.scores.get("psi"))),
            (c.column, "p_adjusted", finite(c.p_adjusted)),
            (c.column, "drifted", 1.0 if c.drifted else 0.0),
        ]
    summary = {
        "rows": rows,
        "drift_share": report.drift_share,
        "drifted_columns": report.drifted_columns,
        "reference": reference.source,
    }
    scored = [c for c in report.columns.values() if c.status == "ok"]
    if not scored:
        status, severity = "insufficient_data", None
        message = "no column could be scored: " + ", ".join(
            sorted({c.status for c in report.columns.values()})
        )
    elif report.drifted:
        status, severity = "alert", "critical"
        message = (
            f"dataset drift: {len(report.drifted_columns)} of {len(scored)} columns drifted "
            f"({', '.join(report.drifted_columns)})"
        )
    elif report.drifted_columns:
        status, severity = "alert", "warning"
        message = f"columns drifted: {', '.join(report.drifted_columns)}"
    else:
        status, severity = "ok", None
        message = f"no drift in {len(scored)} columns"
    return CheckResult(
        status=status,
        severity=severity,
        message=message,
        figures=figures,
        summary=summary,
        details=report.to_dict(),
    )


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A named check: its function and one line saying what it looks at."""

    name: str
    run: Callable[[CheckContext], CheckResult]
    description: str


#: Every check a monitor can run, by name.
CHECKS: dict[str, CheckSpec] = {
    "drift": CheckSpec("drift", drift_check, "input drift against the model's reference"),
}


def known_checks() -> list[str]:
    """The names of the registered checks, sorted."""
    return sorted(CHECKS)


def get_check(name: str) -> CheckSpec:
    """The check registered under ``name``.

    Raises:
        InvalidArgumentError: Naming the ``checks`` field and listing the known checks.
    """
    spec = CHECKS.get(name)
    if spec is None:
        raise InvalidArgumentError(
            f"Unknown check {name!r} in checks: the known checks are {', '.join(known_checks())}"
        )
    return spec


def lineage_reference(ctx: CheckContext) -> Reference:
    """The reference fitted on the training data of the model version that served the
    newest request of the window (recorded by lineage), or the monitor's own reference."""
    service = ctx.service
    named = ctx.monitor.reference
    if named is not None:
        store = service.store
        if store is not None and store.find_reference(named) is not None:
            return service.get_reference(named)
        return service.fit_reference(named)[1]
    from driftline.monitoring._traffic import newest_model

    root = service.log_root
    found = (
        None
        if root is None
        else newest_model(root, ctx.monitor.deployment, ctx.window_start, ctx.window_end)
    )
    if found is None:
        raise NotFoundError(f"No request of deployment {ctx.monitor.deployment!r} to compare")
    model, version = found
    training = service.training_data(model, version)
    if training is None:
        raise NotFoundError(
            f"Model {model}/{version} has no recorded training data to fit a reference on; "
            f"give the monitor one: create_monitor(..., reference='customers@7') or "
            "driftline monitor create ... --reference customers@7"
        )
    return service.fit_reference(training)[1]
