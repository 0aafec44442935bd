"""The monitoring stage's records: a fitted reference, drift thresholds, drift reports.

Records are frozen and JSON-round-trippable (``to_dict`` / ``from_dict``), so a report can
be stored beside a monitor's time series (next increment) and served over the REST API.
Scores that could not be computed are ``None``, never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = [
    "COLUMN_KINDS",
    "COLUMN_STATUSES",
    "MISSING",
    "OTHER",
    "CheckResult",
    "ColumnDrift",
    "ColumnReference",
    "ColumnThresholds",
    "DriftReport",
    "DriftThresholds",
    "PerformanceReport",
    "PerformanceWindow",
    "QualityIssue",
    "QualityReport",
    "Reference",
    "StoredReference",
    "WindowCheck",
]

REFERENCE_FORMAT = "driftline.reference/1"
REPORT_FORMAT = "driftline.drift-report/1"
#: How a column is compared: binned numbers, counted categories, or not at all.
COLUMN_KINDS = ("numeric", "categorical", "unsupported")
#: ``ok`` means scored; every other status explains why a column has no verdict.
COLUMN_STATUSES = (
    "ok",
    "insufficient_data",
    "missing_column",
    "type_mismatch",
    "empty_reference",
    "unsupported_type",
)
OTHER = "__other__"
MISSING = "__missing__"


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnReference:
    """What the reference knows about one column, fitted once.

    Numeric columns: bins ``(-inf, e1], (e1, e2], ..., (ek, +inf)`` over the inner ``edges``
    (deciles, duplicates merged, see :mod:`.reference`), ``proportions`` of all rows per bin
    and ``missing_share`` for null/NaN; a quantile ``sketch`` of the finite values
    (``sketch[i]`` is the ``i/(len-1)`` quantile) with the exact reference CDF at each
    point, ``sketch_cdf`` (share <= the point) and ``sketch_cdf_left`` (share < it).
    Categorical columns: ``categories`` (the top 50) with their ``proportions``, then
    ``other_share`` and ``missing_share``.
    """

    name: str
    kind: str
    type: str
    rows: int
    missing: int
    infinite: int = 0
    distinct: int | None = None
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    edges: tuple[float, ...] = ()
    proportions: tuple[float, ...] = ()
    missing_share: float = 0.0
    sketch: tuple[float, ...] = ()
    sketch_cdf: tuple[float, ...] = ()
    sketch_cdf_left: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    other_share: float = 0.0

    @property
    def values(self) -> int:
        """Rows that hold a value (not null, not NaN)."""
        return self.rows - self.missing


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """A fitted reference: one :class:`ColumnReference` per column, stored as JSON.

    Attributes:
        rows: Rows of the data it was fitted on.
        columns: Per column, in table order.
        source: Where the data came from (``customers@7``, a file name, ``dataframe``).
        source_key: The data's identity when known (a dataset version id, a file digest).
        settings: The fitting parameters (bins, sketch size, top categories).
    """

    rows: int
    columns: dict[str, ColumnReference]
    source: str = "dataframe"
    source_key: str | None = None
    settings: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (infinite floats as strings), read by :meth:`from_dict`."""
        return {
            "format": REFERENCE_FORMAT,
            "rows": self.rows,
            "source": self.source,
            "source_key": self.source_key,
            "settings": dict(self.settings),
            "columns": [_plain(c) for c in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Reference:
        """Rebuild a reference from :meth:`to_dict` output."""
        if not isinstance(d, Mapping) or d.get("format") != REFERENCE_FORMAT:
            raise InvalidArgumentError(
                f"Not a driftline reference (no format {REFERENCE_FORMAT!r}); "
                "fit one with dl.monitoring.fit_reference(source, name=...)"
            )
        try:
            columns = [_column_from_dict(c) for c in d["columns"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"Malformed reference: {exc!r}") from None
        return cls(
            rows=int(d["rows"]),
            columns={c.name: c for c in columns},
            source=str(d.get("source", "dataframe")),
            source_key=d.get("source_key"),
            settings={str(k): int(v) for k, v in (d.get("settings") or {}).items()},
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredReference:
    """The metadata record of a reference kept in the artifact store.

    Attributes:
        id: Sortable id of the record.
        name: The name it is found by (several records may share a digest).
        digest: Content address of the reference JSON.
        source: Where the data came from, e.g. ``customers@7``.
        source_key: The data's identity (dataset version id, file digest), if known.
        settings_key: The fitting parameters, as ``bins=10,sketch=1001,top=50``.
        rows: Rows fitted on.
        created_at: Epoch milliseconds (UTC).
    """

    id: str
    name: str
    digest: str
    source: str
    source_key: str | None
    settings_key: str
    rows: int
    created_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnThresholds:
    """Per-column overrides of :class:`DriftThresholds`; ``None`` keeps the default.

    ``method`` picks the effect size that gates the verdict: ``"wasserstein"`` (numeric
    default), ``"jensen_shannon"`` (categorical default) or ``"psi"`` (either kind).
    """

    psi: float | None = None
    wasserstein: float | None = None
    jensen_shannon: float | None = None
    alpha: float | None = None
    min_rows: int | None = None
    method: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftThresholds:
    """When a column, and the dataset, count as drifted (see :mod:`.drift`).

    A column drifts when its primary effect size is at or above its threshold **and** its
    Benjamini-Hochberg adjusted p-value is below ``alpha``; the dataset drifts when the
    share of drifted columns among the scored ones is at least ``drift_share``.

    Example::

        DriftThresholds(columns={"age": ColumnThresholds(wasserstein=0.05)})
    """

    psi: float = 0.2
    wasserstein: float = 0.1
    jensen_shannon: float = 0.1
    alpha: float = 0.05
    min_rows: int = 100
    drift_share: float = 0.5
    columns: Mapping[str, ColumnThresholds] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("psi", "wasserstein", "jensen_shannon"):
            _check_positive(name, getattr(self, name))
        _check_unit("alpha", self.alpha)
        _check_unit("drift_share", self.drift_share)
        if self.min_rows < 1:
            raise InvalidArgumentError(f"min_rows must be at least 1, got {self.min_rows}")
        for column, t in self.columns.items():
            if t.method not in (None, "psi", "wasserstein", "jensen_shannon"):
                raise InvalidArgumentError(
                    f"Unknown drift method {t.method!r} for column {column!r}; "
                    "use psi, wasserstein or jensen_shannon"
                )

    def for_column(self, name: str) -> DriftThresholds:
        """The thresholds that apply to one column (its overrides over the defaults)."""
        t = self.columns.get(name)
        if t is None:
            return self
        values = {f.name: getattr(t, f.name) for f in fields(t) if f.name != "method"}
        return DriftThresholds(
            **{k: (getattr(self, k) if v is None else v) for k, v in values.items()},
            drift_share=self.drift_share,
        )

    def method_for(self, name: str, kind: str) -> str:
        """The effect size that gates a column's verdict."""
        t = self.columns.get(name)
        if t is not None and t.method is not None:
            if t.method == "wasserstein" and kind != "numeric":
                raise InvalidArgumentError(f"{name!r} is {kind}: wasserstein needs numbers")
            if t.method == "jensen_shannon" and kind != "categorical":
                raise InvalidArgumentError(f"{name!r} is {kind}: jensen_shannon needs categories")
            return t.method
        return "wasserstein" if kind == "numeric" else "jensen_shannon"

    def threshold(self, method: str) -> float:
        """The threshold of one method."""
        return float(getattr(self, method))


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnDrift:
    """The drift of one column.

    Attributes:
        column: Column name.
        kind: ``numeric``, ``categorical`` or ``unsupported``.
        method: The effect size that gates the verdict (``wasserstein``, ``jensen_shannon``
            or ``psi``).
        score: That effect size, or None when the column was not scored.
        threshold: Its threshold.
        p_value: The raw test p-value (KS for numeric, chi-square for categorical).
        p_adjusted: Benjamini-Hochberg adjusted across the scored columns.
        verdict: ``drift``, ``no_drift`` or ``not_scored``.
        status: ``ok`` or why the column was not scored (:data:`COLUMN_STATUSES`).
        n_ref: Reference rows holding a value (numeric: finite values).
        n_cur: Current rows holding a value, likewise.
        scores: Every score computed (psi, wasserstein, jensen_shannon, ks, chi2).
        anomalies: Named findings, e.g. ``infinite_values``, ``all_null``,
            ``high_cardinality``, ``new_categories``, ``constant_reference``.
        bins: Bin labels for the plots, with ``ref_shares`` and ``cur_shares`` per bin.
        cdf_x: Numeric columns: up to 101 sketch points, with both CDFs there
            (``cdf_ref``, ``cdf_cur``), for the plots.
    """

    column: str
    kind: str
    method: str
    score: float | None
    threshold: float
    p_value: float | None
    p_adjusted: float | None
    verdict: str
    status: str
    n_ref: int
    n_cur: int
    scores: dict[str, float] = field(default_factory=dict)
    anomalies: tuple[str, ...] = ()
    bins: tuple[str, ...] = ()
    ref_shares: tuple[float, ...] = ()
    cur_shares: tuple[float, ...] = ()
    cdf_x: tuple[float, ...] = ()
    cdf_ref: tuple[float, ...] = ()
    cdf_cur: tuple[float, ...] = ()

    @property
    def drifted(self) -> bool:
        """Whether the verdict is ``drift``."""
        return self.verdict == "drift"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return _plain(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftReport:
    """Drift between a reference and current data, per column and for the dataset.

    Example::

        rep = dl.monitoring.drift(reference="customers@7", current=batch_df)
        rep.drifted, rep.columns["age"].verdict
        rep.to_html("drift.html")
    """

    drifted: bool
    drift_share: float
    threshold_share: float
    n_ref: int
    n_cur: int
    columns: dict[str, ColumnDrift]
    reference: str
    current: str
    created_at: int
    window_start: int | None = None
    window_end: int | None = None

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted columns, in table order."""
        return [c.column for c in self.columns.values() if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data, read by :meth:`from_dict`."""
        out = _plain(self)
        out["columns"] = [c.to_dict() for c in self.columns.values()]
        return {"format": REPORT_FORMAT, **out}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftReport:
        """Rebuild a report from :meth:`to_dict` output."""
        if d.get("format") != REPORT_FORMAT:
            raise InvalidArgumentError(f"Not a drift report (no format {REPORT_FORMAT!r})")
        cols = [_record(ColumnDrift, c) for c in d["columns"]]
        rest = {k: v for k, v in d.items() if k not in ("format", "columns")}
        return cls(**rest, columns={c.column: c for c in cols})

    def to_html(self, path: str | None = None) -> str:
        """A self-contained HTML page (inline SVG plots); written to ``path`` if given."""
        from driftline.monitoring.report import render_html

        html: str = render_html(self)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(html)
        return html


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InvalidArgumentError(f"Threshold {name} must be a positive number, got {value!r}")


def _check_unit(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0 < value <= 1):
        raise InvalidArgumentError(f"{name} must be in (0, 1], got {value!r}")


def _enc(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, tuple | list):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        return {k: _enc(x) for k, x in v.items()}
    return v


def _dec(v: Any) -> Any:
    if v in ("NaN", "Infinity", "-Infinity"):
        return float(v)
    if isinstance(v, list):
        return tuple(_dec(x) for x in v)
    return v


def _plain(record: Any) -> dict[str, Any]:
    return {f.name: _enc(getattr(record, f.name)) for f in fields(record)}


def _record(kind: Any, d: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(kind)}
    return kind(**{k: _dec(v) for k, v in d.items() if k in names})


def _column_from_dict(d: Mapping[str, Any]) -> ColumnReference:
    column: ColumnReference = _record(ColumnReference, d)
    return column


#: The figure dicts of a :class:`PerformanceWindow`.
_FIGURES = ("metrics", "lower", "upper")

#: Why a window has no figures of a kind: ``label_delay`` (younger than the label delay,
#: realized only), ``insufficient_data`` (too few rows or labelled rows), ``no_calibration``
#: (estimated only: too few labelled reference rows, or one class).
WINDOW_STATUSES = ("ok", "insufficient_data", "label_delay", "no_calibration")


@dataclass(frozen=True, slots=True, kw_only=True)
class PerformanceWindow:
    """Realized or estimated performance of one window (and segment) of a deployment.

    Attributes:
        start: Window start, epoch milliseconds (UTC), inclusive.
        end: Window end, exclusive.
        kind: ``realized`` (from labels) or ``estimated`` (CBPE, no labels used).
        status: ``ok`` or why there are no figures (:data:`WINDOW_STATUSES`).
        task: ``binary``, ``multiclass``, ``classification`` (predicted labels only),
            ``regression``, or ``unknown`` (no traffic in the range to tell).
        rows: Predicted rows in the window.
        labelled: Rows with a label that arrived within the join window.
        coverage: ``labelled / rows`` (0 for an empty window): reported with every figure.
        metrics: The figures (metrics that are undefined on the data are left out).
        lower: Estimated only: the lower end of each figure's 95 % band.
        upper: Estimated only: the upper end.
        segment: The segmenting column, if any.
        segment_value: That column's value (``__other__``, ``__missing__`` for the rest).
    """

    start: int
    end: int
    kind: str
    status: str
    task: str
    rows: int
    labelled: int
    coverage: float
    metrics: dict[str, float] = field(default_factory=dict)
    lower: dict[str, float] = field(default_factory=dict)
    upper: dict[str, float] = field(default_factory=dict)
    segment: str | None = None
    segment_value: str | None = None

    @property
    def estimated(self) -> bool:
        """Whether the figures are estimates (CBPE) rather than measured on labels."""
        return self.kind == "estimated"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data, read by :meth:`from_dict`."""
        return _plain(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PerformanceWindow:
        """Rebuild a window from :meth:`to_dict` output."""

        def figures(key: str) -> dict[str, float]:
            return {m: float(_dec(v)) for m, v in d.get(key, {}).items()}

        rest = {k: v for k, v in d.items() if k not in _FIGURES}
        window: PerformanceWindow = _record(cls, rest)
        return replace(
            window, metrics=figures("metrics"), lower=figures("lower"), upper=figures("upper")
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PerformanceReport:
    """Performance of a deployment per window (and segment), realized and estimated.

    Example::

        rep = dl.monitoring.performance("churn", window="1d", since="14d")
        rep.to_frame()        # one row per window, kind, segment and metric
    """

    deployment: str
    task: str
    window_ms: int
    label_delay_ms: int
    join_window_ms: int
    windows: tuple[PerformanceWindow, ...]
    calibration_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data, read by :meth:`from_dict`."""
        out = _plain(self)
        out["windows"] = [w.to_dict() for w in self.windows]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PerformanceReport:
        """Rebuild a report from :meth:`to_dict` output."""
        rest = {k: v for k, v in d.items() if k != "windows"}
        windows = tuple(PerformanceWindow.from_dict(w) for w in d["windows"])
        report: PerformanceReport = _record(cls, {**rest, "windows": []})
        return replace(report, windows=windows)

    def to_frame(self) -> Any:
        """A long pandas DataFrame: one row per window, segment, kind and metric.

        Columns: ``window_start``, ``window_end`` (UTC timestamps), ``segment``,
        ``segment_value``, ``kind``, ``status``, ``metric``, ``value``, ``lower``,
        ``upper``, ``rows``, ``labelled``, ``coverage``. A window without figures has one
        row with ``metric`` None, so its status shows.
        """
        return _frame(self.windows)


def _frame(windows: Any) -> Any:
    import pandas as pd

    rows = []
    for w in windows:
        base = {
            "window_start": w.start,
            "window_end": w.end,
            "segment": w.segment,
            "segment_value": w.segment_value,
            "kind": w.kind,
            "status": w.status,
            "rows": w.rows,
            "labelled": w.labelled,
            "coverage": w.coverage,
        }
        names: list[str | None] = [*w.metrics] or [None]
        for name in names:
            rows.append(
                {
                    **base,
                    "metric": name,
                    "value": w.metrics.get(name) if name else None,
                    "lower": w.lower.get(name) if name else None,
                    "upper": w.upper.get(name) if name else None,
                }
            )
    frame = pd.DataFrame(rows, columns=[*_FRAME_COLUMNS])
    for col in ("window_start", "window_end"):
        frame[col] = pd.to_datetime(frame[col], unit="ms", utc=True)
    return frame


_FRAME_COLUMNS = (
    "window_start", "window_end", "segment", "segment_value", "kind", "status", "metric",
    "value", "lower", "upper", "rows", "labelled", "coverage",
)  # fmt: skip


#: Data-quality findings (see :mod:`driftline.monitoring.quality`).
QUALITY_KINDS = (
    "missing_column", "type_mismatch", "all_null", "missing_rate_jump", "out_of_range",
    "new_categories",
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityIssue:
    """One data-quality finding on one column.

    Attributes:
        column: The column.
        kind: One of :data:`QUALITY_KINDS`.
        value: The measured share (1.0 for a missing column or a type mismatch).
        threshold: The value at which it is raised.
        reference: The reference's value (missing share), when there is one.
        reference_range: ``(min, max)`` of the reference, for ``out_of_range``.
        examples: Up to five offending values (or the current type, for a mismatch).
    """

    column: str
    kind: str
    value: float
    threshold: float | None = None
    reference: float | None = None
    reference_range: tuple[float, float] | None = None
    examples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return _plain(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QualityIssue:
        """Rebuild a finding from :meth:`to_dict` output."""
        issue: QualityIssue = _record(cls, d)
        return issue


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityReport:
    """Data-quality findings of a window: ``status`` is ``ok`` or ``insufficient_data``."""

    rows: int
    status: str
    issues: tuple[QualityIssue, ...] = ()

    @property
    def failed(self) -> bool:
        """Whether any finding was raised."""
        return bool(self.issues)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "rows": self.rows,
            "status": self.status,
            "issues": [i.to_dict() for i in self.issues],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QualityReport:
        """Rebuild a report from :meth:`to_dict` output."""
        issues = tuple(QualityIssue.from_dict(i) for i in d["issues"])
        return cls(rows=d["rows"], status=d["status"], issues=issues)


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowCheck:
    """Drift, prediction drift, data quality and performance of one window.

    Attributes:
        start: Window start, epoch milliseconds (UTC).
        end: Window end (exclusive).
        rows: Predicted rows in the window.
        status: ``ok``, or ``insufficient_data`` when the window has fewer rows than the
            drift thresholds' ``min_rows`` (drift, prediction drift and quality are then
            None; performance reports its own statuses).
        drift: Drift of the input columns against the reference.
        prediction_drift: Drift of the prediction columns against the reference's, or
            None when the reference has no prediction column (fit it on traffic:
            :func:`driftline.monitoring.fit_traffic_reference`).
        quality: Data-quality findings.
        performance: Realized and estimated performance (no segments).
    """

    start: int
    end: int
    rows: int
    status: str
    drift: DriftReport | None = None
    prediction_drift: DriftReport | None = None
    quality: QualityReport | None = None
    performance: tuple[PerformanceWindow, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "start": self.start,
            "end": self.end,
            "rows": self.rows,
            "status": self.status,
            "drift": None if self.drift is None else self.drift.to_dict(),
            "prediction_drift": None
            if self.prediction_drift is None
            else self.prediction_drift.to_dict(),
            "quality": None if self.quality is None else self.quality.to_dict(),
            "performance": [p.to_dict() for p in self.performance],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WindowCheck:
        """Rebuild a window from :meth:`to_dict` output."""

        def drift(key: str) -> DriftReport | None:
            return None if d.get(key) is None else DriftReport.from_dict(d[key])

        return cls(
            start=d["start"],
            end=d["end"],
            rows=d["rows"],
            status=d["status"],
            drift=drift("drift"),
            prediction_drift=drift("prediction_drift"),
            quality=None if d.get("quality") is None else QualityReport.from_dict(d["quality"]),
            performance=tuple(PerformanceWindow.from_dict(p) for p in d.get("performance", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """Every check of a deployment's traffic, per window.

    Example::

        res = dl.monitoring.check("churn", window="1d", since="14d")
        res.windows[-1].drift.drifted
        res.to_frame().query("check == 'performance'")
    """

    deployment: str
    reference: str
    window_ms: int
    windows: tuple[WindowCheck, ...]
    task: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "deployment": self.deployment,
            "reference": self.reference,
            "window_ms": self.window_ms,
            "task": self.task,
            "windows": [w.to_dict() for w in self.windows],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckResult:
        """Rebuild a result from :meth:`to_dict` output."""
        return cls(
            deployment=d["deployment"],
            reference=d["reference"],
            window_ms=d["window_ms"],
            task=d.get("task"),
            windows=tuple(WindowCheck.from_dict(w) for w in d["windows"]),
        )

    def to_frame(self) -> Any:
        """A long pandas DataFrame, one row per window, check and figure.

        Columns: ``window_start``, ``window_end`` (UTC timestamps), ``check`` (``drift``,
        ``prediction_drift``, ``quality``, ``performance``), ``name`` (a column, a metric,
        or ``dataset`` for a drift verdict), ``kind`` (the drift method, the quality
        finding, or ``realized``/``estimated``), ``value``, ``threshold``, ``lower``,
        ``upper``, ``flagged`` (drifted / raised), ``status``, ``rows``, ``coverage``
        (performance only). A window with too little data has one row with status
        ``insufficient_data``.
        """
        import pandas as pd

        out: list[dict[str, Any]] = []
        for w in self.windows:
            base = {"window_start": w.start, "window_end": w.end, "rows": w.rows}
            if w.status != "ok":
                out.append({**base, "check": "window", "status": w.status})
            for check, rep in (("drift", w.drift), ("prediction_drift", w.prediction_drift)):
                if rep is None:
                    continue
                out.append(
                    {
                        **base,
                        "check": check,
                        "name": "dataset",
                        "kind": "drift_share",
                        "value": rep.drift_share,
                        "threshold": rep.threshold_share,
                        "flagged": rep.drifted,
                        "status": "ok",
                    }
                )
                for c in rep.columns.values():
                    out.append(
                        {
                            **base,
                            "check": check,
                            "name": c.column,
                            "kind": c.method,
                            "value": c.score,
                            "threshold": c.threshold,
                            "flagged": c.drifted,
                            "status": c.status,
                        }
                    )
            if w.quality is not None:
                for i in w.quality.issues:
                    out.append(
                        {
                            **base,
                            "check": "quality",
                            "name": i.column,
                            "kind": i.kind,
                            "value": i.value,
                            "threshold": i.threshold,
                            "flagged": True,
                            "status": "ok",
                        }
                    )
            for p in w.performance:
                names: list[str | None] = [*p.metrics] or [None]
                for name in names:
                    out.append(
                        {
                            **base,
                            "check": "performance",
                            "name": name,
                            "kind": p.kind,
                            "value": p.metrics.get(name) if name else None,
                            "lower": p.lower.get(name) if name else None,
                            "upper": p.upper.get(name) if name else None,
                            "status": p.status,
                            "coverage": p.coverage,
                        }
                    )
        frame = pd.DataFrame(out, columns=list(_CHECK_COLUMNS))
        for col in ("window_start", "window_end"):
            frame[col] = pd.to_datetime(frame[col], unit="ms", utc=True)
        return frame


_CHECK_COLUMNS = (
    "window_start", "window_end", "check", "name", "kind", "value", "threshold", "lower",
    "upper", "flagged", "status", "rows", "coverage",
)  # fmt: skip
