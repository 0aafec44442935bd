"""Monitoring: drift of any table against a reference fitted once; a deployment's traffic.

Example:
    >>> import driftline as dl
    >>> rep = dl.monitoring.drift(reference="customers@7", current=batch_df)  # doctest: +SKIP
    >>> rep.drifted, rep.columns["age"].verdict                               # doctest: +SKIP
    >>> rep.to_html("drift.html")                                             # doctest: +SKIP
    >>> dl.monitoring.fit_reference("customers@7", name="churn")              # doctest: +SKIP

On a deployment's traffic (the prediction log serving writes):

    >>> dl.monitoring.log_labels("churn", labels_df)   # request_id, label (+ row, time)
    ... # doctest: +SKIP
    >>> dl.monitoring.performance("churn", window="1d", label_delay="3d")  # doctest: +SKIP
    >>> dl.monitoring.check("churn", window="1d", since="14d").to_frame()  # doctest: +SKIP

``reference`` and ``current`` are pandas DataFrames, Arrow tables, Parquet/CSV paths or
dataset versions; a reference may also be a fitted :class:`Reference`. The statistics are
defined in :mod:`driftline.monitoring.drift` and :mod:`driftline.monitoring.reference`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from driftline.core.metric_direction import LOWER_IS_BETTER
from driftline.monitoring._traffic import window_memory_pool
from driftline.monitoring.labels import LabelIngest
from driftline.monitoring.models import (
    CheckResult,
    ColumnDrift,
    ColumnReference,
    ColumnThresholds,
    DriftReport,
    DriftThresholds,
    PerformanceReport,
    PerformanceWindow,
    QualityIssue,
    QualityReport,
    Reference,
    StoredReference,
    WindowCheck,
)
from driftline.monitoring.monitor_models import (
    Alert,
    CheckOutcome,
    Delivery,
    Evaluation,
    Figure,
    Monitor,
    MonitorRun,
)
from driftline.monitoring.quality import QualityThresholds
from driftline.monitoring.service import MonitoringService

__all__ = [
    "LOWER_IS_BETTER",
    "Alert",
    "CheckOutcome",
    "CheckResult",
    "ColumnDrift",
    "ColumnReference",
    "ColumnThresholds",
    "Delivery",
    "DriftReport",
    "DriftThresholds",
    "Evaluation",
    "Figure",
    "LabelIngest",
    "Monitor",
    "MonitorRun",
    "MonitoringService",
    "PerformanceReport",
    "PerformanceWindow",
    "QualityIssue",
    "QualityReport",
    "QualityThresholds",
    "Reference",
    "StoredReference",
    "WindowCheck",
    "alerts",
    "check",
    "create_monitor",
    "delete_monitor",
    "drift",
    "fit_reference",
    "fit_traffic_reference",
    "get_monitor",
    "get_reference",
    "list_monitors",
    "list_references",
    "log_labels",
    "monitor_history",
    "monitor_report",
    "monitor_series",
    "performance",
    "run_monitor",
    "service_for",
    "window_memory_pool",
]


def service_for(workspace: Any | None) -> MonitoringService:
    """The monitoring service of a workspace (None: no storage, references in memory)."""
    if workspace is None:
        return MonitoringService(None, None)
    service: MonitoringService = workspace.service("monitoring", MonitoringService)
    return service


def _service() -> MonitoringService:
    from driftline.core.session import default_workspace

    return service_for(default_workspace())


def _needs_workspace(data: Any) -> bool:
    from pathlib import Path

    return isinstance(data, str) and not Path(data).exists()


def drift(
    reference: Any,
    current: Any,
    *,
    columns: list[str] | None = None,
    thresholds: DriftThresholds | Mapping[str, Any] | None = None,
) -> DriftReport:
    """Drift of ``current`` against ``reference``, per column and for the dataset.

    Args:
        reference: A DataFrame, Arrow table, Parquet/CSV path, dataset version
            (``customers@7``: its reference is fitted once and stored), or a
            :class:`Reference`.
        current: A DataFrame, Arrow table, Parquet/CSV path or dataset version.
        columns: Columns to compare (default: every column of the reference).
        thresholds: :class:`DriftThresholds`, or a dict of its fields with ``columns``
            mapping a column name to a dict of :class:`ColumnThresholds` fields.

    Example:
        >>> rep = dl.monitoring.drift(reference=train_df, current=batch_df,
        ...                           thresholds={"columns": {"age": {"wasserstein": 0.05}}})
        ... # doctest: +SKIP
        >>> rep.columns["age"].p_adjusted  # doctest: +SKIP
    """
    needs = _needs_workspace(reference) or _needs_workspace(current)
    service = _service() if needs else MonitoringService(None, None)
    return service.drift(reference, current, columns=columns, thresholds=_thresholds(thresholds))


def fit_reference(source: Any, *, name: str | None = None, refit: bool = False) -> Reference:
    """Fit the drift reference of ``source`` once and store it under ``name``.

    A reference already stored for the same data (dataset version or file contents) and
    settings is reused instead of refitted, unless ``refit``.

    Example:
        >>> ref = dl.monitoring.fit_reference("customers@7", name="churn")  # doctest: +SKIP
        >>> dl.monitoring.drift(reference=ref, current="batch.parquet")     # doctest: +SKIP
    """
    return _service().fit_reference(source, name=name, refit=refit)[1]


def get_reference(name: str) -> Reference:
    """The newest reference stored under ``name`` (``NotFoundError`` says how to fit one)."""
    return _service().get_reference(name)


def list_references() -> list[StoredReference]:
    """Every stored reference record, newest first."""
    return _service().list_references()


def log_labels(deployment: str, labels: Any) -> LabelIngest:
    """Store the labels (ground truth) of ``deployment``'s served requests.

    Args:
        deployment: The deployment whose prediction log the labels join.
        labels: A DataFrame, Arrow table or Parquet/CSV path with ``request_id`` (the id
            serving answered with), ``label`` (number, boolean or text), and optionally
            ``row`` (position in a multi-row request, default 0) and ``time`` (when the
            outcome was known, default now).

    A later label of the same request row replaces the earlier one (``replaced``);
    labels of request ids the prediction log does not hold are stored and counted
    (``unknown``, with examples), never dropped silently.

    Raises:
        InvalidArgumentError: A column is missing or holds the wrong type (named).
        NotFoundError: The deployment has logged no predictions.

    Example:
        >>> dl.monitoring.log_labels("churn", pd.DataFrame({"request_id": ids, "label": y}))
        ... # doctest: +SKIP
    """
    return _service().log_labels(deployment, labels)


def performance(
    deployment: str,
    *,
    window: str | timedelta = "1d",
    since: str | timedelta | datetime = "14d",
    until: datetime | None = None,
    segment: str | None = None,
    task: str = "auto",
    threshold: float = 0.5,
    label_delay: str | timedelta = "0s",
    join_window: str | timedelta = "14d",
    min_rows: int = 100,
    estimate: bool = True,
) -> PerformanceReport:
    """Performance of ``deployment`` per window: realized on labels, estimated by CBPE.

    Predictions of the prediction log are joined with the labels stored by
    :func:`log_labels` (a label counts when it came within ``join_window`` of its
    prediction); every figure comes with the window's label coverage. Windows that ended
    less than ``label_delay`` ago get no realized figures (status ``label_delay``).
    Binary and multiclass classifiers also get CBPE estimates (``kind="estimated"``; for
    multiclass: accuracy, macro precision, recall, F1 and one-vs-rest ROC AUC) with a 95 % band,
    calibrated on the labelled, mature windows of the range. The definitions are in
    :mod:`driftline.monitoring.scoring` and :mod:`driftline.monitoring.metrics`.

    Args:
        deployment: The deployment's name.
        window: Window length (``"1h"``, ``"1d"``, ``"1w"``); windows are aligned to it.
        since: Start of the range: a datetime or a duration back from now (``"14d"``).
        until: End of the range (default now).
        segment: A column of the inputs: figures per value too (its 20 most frequent).
        task: ``auto``, ``binary``, ``multiclass``, ``classification`` or ``regression``.
        threshold: Binary decision threshold on the score.
        label_delay: How long labels take to arrive.
        join_window: How long after a prediction its label may come.
        min_rows: Fewer labelled rows (or scored rows, for estimates) in a window is
            ``insufficient_data``.
        estimate: Also estimate classifiers' performance without labels (CBPE).

    Example:
        >>> rep = dl.monitoring.performance("churn", window="1d", label_delay="3d")
        ... # doctest: +SKIP
        >>> rep.to_frame().query("metric == 'roc_auc'")  # doctest: +SKIP
    """
    from driftline.monitoring.options import PerformanceOptions

    options = PerformanceOptions(
        window=window,
        since=since,
        until=until,
        segment=segment,
        task=task,
        threshold=threshold,
        label_delay=label_delay,
        join_window=join_window,
        min_rows=min_rows,
        estimate=estimate,
    )
    return _service().performance(deployment, options)


def fit_traffic_reference(
    deployment: str,
    *,
    since: str | timedelta | datetime,
    until: datetime | None = None,
    name: str | None = None,
) -> Reference:
    """Fit and store the reference of a period of a deployment's traffic (inputs and
    predictions), under ``name`` (default: the deployment's name), for :func:`check`.

    Example:
        >>> dl.monitoring.fit_traffic_reference("churn", since=launch, until=launch + week)
        ... # doctest: +SKIP
    """
    return _service().fit_traffic_reference(deployment, since=since, until=until, name=name)[1]


def check(
    deployment: str,
    *,
    window: str | timedelta = "1d",
    since: str | timedelta | datetime = "14d",
    until: datetime | None = None,
    reference: str | Reference | None = None,
    checks: tuple[str, ...] = ("drift", "prediction_drift", "quality", "performance"),
    thresholds: DriftThresholds | Mapping[str, Any] | None = None,
    quality: QualityThresholds | None = None,
    task: str = "auto",
    threshold: float = 0.5,
    label_delay: str | timedelta = "0s",
    join_window: str | timedelta = "14d",
    min_labels: int = 100,
) -> CheckResult:
    """Drift, prediction drift, data quality and performance of a deployment, per window.

    The prediction log is read once for the range; each window's inputs are compared
    with the stored reference (``reference``, default the deployment's name: fit it with
    :func:`fit_reference` or :func:`fit_traffic_reference`), its prediction columns with
    the reference's (prediction drift, its own check), its data quality checked
    (:mod:`driftline.monitoring.quality`), and its performance computed as by
    :func:`performance`. A window with fewer rows than ``thresholds.min_rows`` has
    status ``insufficient_data``.

    Raises:
        NotFoundError: No reference of that name (the message says how to fit one).

    Example:
        >>> res = dl.monitoring.check("churn", window="1d", since="14d")  # doctest: +SKIP
        >>> res.to_frame().query("flagged == True")                         # doctest: +SKIP
    """
    from driftline.monitoring.options import CheckOptions

    options = CheckOptions(
        window=window,
        since=since,
        until=until,
        reference=reference,
        checks=tuple(checks),
        thresholds=_thresholds(thresholds),
        quality=quality,
        task=task,
        threshold=threshold,
        label_delay=label_delay,
        join_window=join_window,
        min_labels=min_labels,
    )
    return _service().check(deployment, options)


# -- monitors and alerts ----------------------------------------------------------------


def create_monitor(
    name: str,
    *,
    deployment: str,
    window: str | int = "1d",
    checks: Sequence[str] = ("drift",),
    alerts: Sequence[str] = (),
    cooldown: str | int = "6h",
    reference: str | None = None,
    thresholds: Mapping[str, Any] | None = None,
    replace: bool = False,
) -> Monitor:
    """Create a monitor of a deployment's traffic (a record in the metadata database).

    Args:
        name: Unique name, e.g. ``churn-prod``.
        deployment: The deployment whose prediction log is checked.
        window: Each run checks the requests of the last window (``30m``, ``6h``, ``1d``).
        checks: Check names: ``drift``, ``prediction_drift``, ``quality``,
            ``performance`` (see ``driftline.monitoring.checks.CHECKS``).
        alerts: Channels: ``"log"``, ``"webhook:https://..."``.
        cooldown: The same check and severity alerts at most once per cooldown.
        reference: A dataset version (or stored reference name) to compare with; default:
            the training data recorded for the served model version.
        thresholds: Drift thresholds, as for :func:`drift`, plus optional ``quality``
            (fields of :class:`QualityThresholds`) and ``performance`` sections, e.g.
            ``{"psi": 0.25, "performance": {"metric": "roc_auc", "below": 0.8}}``: the
            performance check then alerts when the metric (realized, else the CBPE
            estimate) falls below it.
        replace: Redefine an existing monitor of that name (its history is kept).

    Example:
        >>> dl.monitoring.create_monitor("churn-prod", deployment="churn", window="1d",
        ...     checks=["drift", "quality", "performance"],
        ...     alerts=["webhook:http://127.0.0.1:9000/hook", "log"])  # doctest: +SKIP
    """
    return _service().monitors.create(
        name,
        deployment=deployment,
        window=window,
        checks=checks,
        alerts=alerts,
        cooldown=cooldown,
        reference=reference,
        thresholds=thresholds,
        replace=replace,
    )


def run_monitor(name: str, *, at: datetime | None = None) -> MonitorRun:
    """Run a monitor once on the window ending at ``at`` (default now).

    Stores the evaluation, raises alerts (deduplicated within the cooldown) and delivers
    them, retrying deliveries earlier runs could not make. ``.healthy`` is False when a
    check alerted.

    Example:
        >>> run = dl.monitoring.run_monitor("churn-prod")   # doctest: +SKIP
        >>> run.healthy, [a.message for a in run.raised]    # doctest: +SKIP
    """
    return _service().monitors.run(name, at=at)


def alerts(
    *,
    since: datetime | None = None,
    monitor: str | None = None,
    severity: str | None = None,
    limit: int | None = None,
) -> list[Alert]:
    """Alerts raised at or after ``since``, oldest first (a stable query API).

    Example:
        >>> for a in dl.monitoring.alerts(since=last_seen, monitor="churn-prod"):  # doctest: +SKIP
        ...     retrain(a.deployment)
    """
    return _service().monitors.alerts(since=since, monitor=monitor, severity=severity, limit=limit)


def monitor_history(
    name: str, *, since: datetime | None = None, limit: int | None = None
) -> list[Evaluation]:
    """A monitor's evaluations, oldest first, each with its figures."""
    return _service().monitors.history(name, since=since, limit=limit)


def monitor_series(
    name: str,
    *,
    check: str | None = None,
    column: str | None = None,
    metric: str | None = None,
    since: datetime | None = None,
) -> list[Figure]:
    """A monitor's figures as a time series, e.g. one column's drift score per window.

    Example:
        >>> pts = dl.monitoring.monitor_series("churn-prod", check="drift", column="age",
        ...                                    metric="score")  # doctest: +SKIP
        >>> [(p.window_end, p.value) for p in pts]                 # doctest: +SKIP
    """
    return _service().monitors.series(name, check=check, column=column, metric=metric, since=since)


def get_monitor(name: str) -> Monitor:
    """The monitor named ``name``."""
    return _service().monitors.get(name)


def list_monitors() -> list[Monitor]:
    """Every monitor, by name."""
    return _service().monitors.list_monitors()


def delete_monitor(name: str) -> None:
    """Remove a monitor (its evaluations and alerts are kept)."""
    _service().monitors.delete(name)


def monitor_report(name: str, *, since: datetime | None = None, path: str | None = None) -> str:
    """The monitor's over-time HTML report (self-contained); written to ``path`` if given."""
    return _service().monitors.report(name, since=since, path=path)


def _thresholds(value: DriftThresholds | Mapping[str, Any] | None) -> DriftThresholds | None:
    from driftline.monitoring.options import drift_thresholds

    return drift_thresholds(value)
