"""The checks a monitor runs on each window of a deployment's prediction log.

A check is a function ``(CheckContext) -> CheckVerdict`` registered in :data:`CHECKS` under
its name; a monitor lists the names it runs. Adding a check is one entry::

    CHECKS["latency"] = CheckSpec("latency", latency_check, "slow requests")

where ``latency_check`` reads what it needs from the context (the window's input and
prediction columns, the request ids to join labels on, the reference, the monitoring service)
and returns a :class:`CheckVerdict`: a status, a severity when it alerts, a one-line
message, the figures to keep as a time series and the details a report plots. (A
verdict is one check on one monitor window; :class:`.models.CheckResult` is what
``dl.monitoring.check`` returns for a range of windows.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.monitoring.monitor_models import Monitor, finite

if TYPE_CHECKING:
    from concurrent.futures import Future

    import pyarrow as pa

    from driftline.monitoring.models import DriftThresholds, PerformanceWindow, Reference
    from driftline.monitoring.quality import QualityThresholds
    from driftline.monitoring.service import MonitoringService

__all__ = [
    "CHECKS",
    "JOIN_WINDOW",
    "CheckContext",
    "CheckSpec",
    "CheckVerdict",
    "MonitorThresholds",
    "PerformanceThreshold",
    "get_check",
    "known_checks",
    "monitor_thresholds",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckVerdict:
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
        labels: Future[pa.Table] | None = None,
    ) -> None:
        self.monitor = monitor
        self.rows = rows  # the window's flattened traffic
        self.window_start = window_start
        self.window_end = window_end
        self.service = service
        # the window's labels (MonitoringService.window_labels), when read beside the rows
        self.labels = labels
        self._resolve_reference = resolve_reference
        self._reference: Reference | None = None
        self._model_inputs: list[str] | None = None

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
    def model_inputs(self) -> list[str]:
        """The model's input columns: the signature inputs of the model version that
        served the window's newest request when the registry knows them, else the input
        columns the window's traffic has. A reference fitted on training data also holds
        the target column, which no request carries: checks leave it out."""
        if self._model_inputs is None:
            self._model_inputs = self.service.model_inputs(
                self.monitor.deployment,
                self.window_start,
                self.window_end,
                self.inputs.column_names,
            )
        return self._model_inputs

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
        return monitor_thresholds(self.monitor.thresholds).drift

    @property
    def limits(self) -> MonitorThresholds:
        """Every section of the monitor's thresholds (drift, quality, performance)."""
        return monitor_thresholds(self.monitor.thresholds)


#: How much later than its prediction a label may arrive and still be joined, for the
#: performance check (the window its labels are read for, and scored with).
JOIN_WINDOW = "14d"


@dataclass(frozen=True, slots=True, kw_only=True)
class PerformanceThreshold:
    """When the ``performance`` check alerts: ``metric`` (e.g. ``roc_auc``) below
    ``below``. ``min_labels`` labelled rows are needed to score a window."""

    metric: str | None = None
    below: float | None = None
    min_labels: int = 100
    severity: str = "warning"

    def __post_init__(self) -> None:
        if (self.metric is None) != (self.below is None):
            raise InvalidArgumentError(
                "thresholds.performance needs both metric and below, e.g. "
                "{'performance': {'metric': 'roc_auc', 'below': 0.8}}"
            )
        if self.below is not None and (
            isinstance(self.below, bool) or not isinstance(self.below, int | float)
        ):
            raise InvalidArgumentError(
                f"thresholds.performance.below must be a number, got {self.below!r}"
            )
        if self.metric is not None and not isinstance(self.metric, str):
            raise InvalidArgumentError(
                f"thresholds.performance.metric must be a metric name, got {self.metric!r}"
            )
        if isinstance(self.min_labels, bool) or not isinstance(self.min_labels, int):
            raise InvalidArgumentError(
                f"thresholds.performance.min_labels must be an integer, got {self.min_labels!r}"
            )
        if self.min_labels < 1:
            raise InvalidArgumentError("thresholds.performance.min_labels must be at least 1")
        if self.severity not in ("warning", "critical"):
            raise InvalidArgumentError(
                f"thresholds.performance.severity must be 'warning' or 'critical', "
                f"got {self.severity!r}"
            )


@dataclass(frozen=True, slots=True)
class MonitorThresholds:
    """A monitor's ``thresholds``, by the check they apply to."""

    drift: DriftThresholds | None
    quality: QualityThresholds | None
    performance: PerformanceThreshold | None


def monitor_thresholds(value: Mapping[str, Any] | None) -> MonitorThresholds:
    """Read a monitor's ``thresholds``: the fields of :class:`DriftThresholds`, plus
    optional ``quality`` (fields of :class:`QualityThresholds`) and ``performance``
    (fields of :class:`PerformanceThreshold`) sections, e.g.
    ``{"psi": 0.25, "performance": {"metric": "roc_auc", "below": 0.8}}``.

    Raises:
        InvalidArgumentError: An unknown or invalid threshold (named).
    """
    from driftline.monitoring import _thresholds
    from driftline.monitoring.quality import QualityThresholds

    if value is None:
        return MonitorThresholds(None, None, None)
    if not isinstance(value, Mapping):
        raise InvalidArgumentError("thresholds must be a dict of DriftThresholds fields")
    rest = {k: v for k, v in value.items() if k not in ("quality", "performance")}
    sections: dict[str, Any] = {}
    for key, kind in (("quality", QualityThresholds), ("performance", PerformanceThreshold)):
        spec = value.get(key)
        if spec is None:
            sections[key] = None
            continue
        if not isinstance(spec, Mapping):
            raise InvalidArgumentError(f"thresholds.{key} must be a dict of {kind.__name__} fields")
        try:
            sections[key] = kind(**spec)
        except TypeError as exc:
            raise InvalidArgumentError(f"Unknown threshold in thresholds.{key}: {exc}") from None
    return MonitorThresholds(_thresholds(rest) if rest else None, **sections)


def drift_check(ctx: CheckContext) -> CheckVerdict:
    """Drift of the window's inputs against the reference.

    Alerts ``critical`` on dataset drift, ``warning`` when some columns drift but not
    enough for dataset drift. Figures: ``rows``, ``drift_share``, ``drifted_columns`` for
    the dataset; ``score``, ``psi``, ``p_adjusted``, ``drifted`` per column.
    """
    return _drift(ctx, ctx.inputs, "input")


def prediction_drift_check(ctx: CheckContext) -> CheckVerdict:
    """Drift of the window's predictions (``prediction``, ``prediction_0``, ...) against a
    reference that holds them: one fitted on a period of traffic
    (``fit_traffic_reference``). Figures and severities as for :func:`drift_check`."""
    return _drift(ctx, ctx.predictions, "prediction")


def _drift(ctx: CheckContext, frame: pa.Table, what: str) -> CheckVerdict:
    from driftline.monitoring._frames import Source
    from driftline.monitoring.drift import compare
    from driftline.monitoring.models import DriftThresholds

    thresholds = ctx.thresholds or DriftThresholds()
    rows = frame.num_rows
    if rows < thresholds.min_rows:
        return CheckVerdict(
            status="insufficient_data",
            message=f"{rows} rows in the window, fewer than {thresholds.min_rows}",
            figures=[(None, "rows", float(rows))],
            summary={"rows": rows},
        )
    reference = ctx.reference
    shared = [c for c in reference.columns if c in frame.column_names]
    if what == "input":
        model = set(ctx.model_inputs)
        shared = [c for c in reference.columns if c in model]
    if not shared and what == "prediction":
        raise InvalidArgumentError(
            f"The reference {reference.source!r} has no prediction column "
            f"({', '.join(frame.column_names) or 'none logged'}); fit one on a period of "
            f"the deployment's traffic, dl.monitoring.fit_traffic_reference("
            f"{ctx.monitor.deployment!r}, since='7d'), and name it in the monitor's reference"
        )
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
    label = "dataset drift" if what == "input" else "prediction drift"
    if not scored:
        status, severity = "insufficient_data", None
        message = "no column could be scored: " + ", ".join(
            sorted({c.status for c in report.columns.values()})
        )
    elif report.drifted:
        status, severity = "alert", "critical"
        message = (
            f"{label}: {len(report.drifted_columns)} of {len(scored)} columns drifted "
            f"({', '.join(report.drifted_columns)})"
        )
    elif report.drifted_columns:
        status, severity = "alert", "warning"
        message = f"columns drifted: {', '.join(report.drifted_columns)}"
    else:
        status, severity = "ok", None
        message = f"no drift in {len(scored)} columns"
    return CheckVerdict(
        status=status,
        severity=severity,
        message=message,
        figures=figures,
        summary=summary,
        details=report.to_dict(),
    )


#: Quality findings that mean the data no longer fits the model at all.
_CRITICAL_QUALITY = ("missing_column", "type_mismatch", "all_null")


def quality_check(ctx: CheckContext) -> CheckVerdict:
    """Data quality of the window against the reference (see :mod:`.quality`).

    The model's input columns (:attr:`CheckContext.model_inputs`) and the reference's
    prediction columns are assessed (an input the window lacks is a ``missing_column``
    finding); other reference columns, such as the target of a reference fitted on the
    training data, are left out. Alerts ``critical`` on a missing column,
    a type mismatch or an all-null column, ``warning`` on the other findings. Figures:
    ``rows`` and ``issues``; per column, one figure per finding kind (its measured share).
    """
    import dataclasses

    from driftline.monitoring._traffic import META, is_prediction
    from driftline.monitoring.quality import QualityThresholds, assess

    drift = ctx.thresholds
    limits = ctx.limits.quality or (
        QualityThresholds() if drift is None else QualityThresholds(min_rows=drift.min_rows)
    )
    frame = ctx.rows.drop_columns([c for c in META if c in ctx.rows.column_names])
    if frame.num_rows < limits.min_rows:
        return CheckVerdict(
            status="insufficient_data",
            message=f"{frame.num_rows} rows in the window, fewer than {limits.min_rows}",
            figures=[(None, "rows", float(frame.num_rows))],
            summary={"rows": frame.num_rows},
        )
    reference = ctx.reference
    model = set(ctx.model_inputs)
    columns = [c for c in reference.columns if c in model or is_prediction(c)]
    report = assess(
        reference, frame, columns=columns, thresholds=dataclasses.replace(limits, min_rows=1)
    )
    figures: list[tuple[str | None, str, float | None]] = [
        (None, "rows", float(report.rows)),
        (None, "issues", float(len(report.issues))),
    ]
    figures += [(i.column, i.kind, finite(i.value)) for i in report.issues]
    issues = [f"{i.column}: {i.kind}" for i in report.issues]
    summary = {"rows": report.rows, "issues": issues, "reference": reference.source}
    if not report.issues:
        return CheckVerdict(
            status="ok",
            message=f"no quality issue in {len(columns)} columns",
            figures=figures,
            summary=summary,
            details=report.to_dict(),
        )
    critical = any(i.kind in _CRITICAL_QUALITY for i in report.issues)
    return CheckVerdict(
        status="alert",
        severity="critical" if critical else "warning",
        message="quality: " + ", ".join(issues),
        figures=figures,
        summary=summary,
        details=report.to_dict(),
    )


def performance_check(ctx: CheckContext) -> CheckVerdict:
    """Performance of the window on the labels that arrived (realized), with its label
    coverage; without enough labels, a classifier's CBPE estimate (calibrated on
    the labelled traffic of the join window before it), marked ``estimated``.

    Figures: ``rows``, ``labelled``, ``label_coverage`` and each realized metric
    (``roc_auc``, ``accuracy``, ...), or ``estimated_<metric>`` with
    ``estimated_<metric>_lower``/``_upper`` for an estimate. Without a threshold the check
    records figures and is ``ok``; with ``thresholds={"performance": {"metric": "roc_auc",
    "below": 0.8}}`` it alerts when the metric (realized, else estimated) is below it.
    ``insufficient_data`` when neither can be scored (fewer than ``min_labels`` labels).
    """
    spec = ctx.limits.performance or PerformanceThreshold()
    rows = ctx.rows.num_rows
    if rows == 0:
        return CheckVerdict(
            status="insufficient_data",
            message="no predictions in the window",
            figures=[(None, "rows", 0.0)],
            summary={"rows": 0},
        )
    realized, estimated = ctx.service.window_performance(
        ctx.monitor.deployment,
        ctx.rows,
        ctx.window_start,
        ctx.window_end,
        min_labels=spec.min_labels,
        join_window=JOIN_WINDOW,
        labels=None if ctx.labels is None else ctx.labels.result(),
    )
    figures: list[tuple[str | None, str, float | None]] = [
        (None, "rows", float(realized.rows)),
        (None, "labelled", float(realized.labelled)),
        (None, "label_coverage", finite(realized.coverage)),
    ]
    summary: dict[str, Any] = {
        "rows": realized.rows,
        "labelled": realized.labelled,
        "label_coverage": realized.coverage,
        "task": realized.task,
    }
    used: PerformanceWindow | None = None
    if realized.status == "ok":
        used = realized
        figures += [(None, k, finite(v)) for k, v in sorted(realized.metrics.items())]
    elif estimated is not None and estimated.status == "ok":
        used = estimated
        for k, v in sorted(estimated.metrics.items()):
            figures += [
                (None, f"estimated_{k}", finite(v)),
                (None, f"estimated_{k}_lower", finite(estimated.lower.get(k))),
                (None, f"estimated_{k}_upper", finite(estimated.upper.get(k))),
            ]
    coverage = f"label coverage {realized.coverage:.0%}"
    if used is None:
        why = realized.status.replace("_", " ")
        return CheckVerdict(
            status="insufficient_data",
            message=f"{realized.labelled} labelled rows (need {spec.min_labels}), "
            f"{coverage}: {why}",
            figures=figures,
            summary=summary,
            details=realized.to_dict(),
        )
    summary.update(kind=used.kind, metrics=used.metrics)
    details = {"realized": realized.to_dict(), "estimated": None}
    if estimated is not None:
        details["estimated"] = estimated.to_dict()
    marked = " (estimated, CBPE)" if used.estimated else ""
    if spec.metric is None or spec.below is None:
        shown = ", ".join(f"{k} {v:.3g}" for k, v in sorted(used.metrics.items())[:4])
        return CheckVerdict(
            status="ok",
            message=f"{shown}{marked}; {coverage}",
            figures=figures,
            summary=summary,
            details=details,
        )
    value = used.metrics.get(spec.metric)
    if value is None:
        raise InvalidArgumentError(
            f"thresholds.performance.metric {spec.metric!r} is not a {used.task} metric "
            f"({', '.join(sorted(used.metrics))})"
        )
    summary.update(metric=spec.metric, value=value, below=spec.below)
    if value < spec.below:
        return CheckVerdict(
            status="alert",
            severity=spec.severity,
            message=f"{spec.metric} {value:.3g} below {spec.below:g}{marked}; {coverage}",
            figures=figures,
            summary=summary,
            details=details,
        )
    return CheckVerdict(
        status="ok",
        message=f"{spec.metric} {value:.3g} (threshold {spec.below:g}){marked}; {coverage}",
        figures=figures,
        summary=summary,
        details=details,
    )


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A named check: its function and one line saying what it looks at."""

    name: str
    run: Callable[[CheckContext], CheckVerdict]
    description: str


#: Every check a monitor can run, by name.
CHECKS: dict[str, CheckSpec] = {
    "drift": CheckSpec("drift", drift_check, "input drift against the model's reference"),
    "prediction_drift": CheckSpec(
        "prediction_drift", prediction_drift_check, "drift of the predictions"
    ),
    "quality": CheckSpec(
        "quality", quality_check, "missing columns and values, new categories, out of range"
    ),
    "performance": CheckSpec(
        "performance", performance_check, "realized metrics and label coverage, or CBPE"
    ),
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
