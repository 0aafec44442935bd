"""Data quality of current data against a fitted reference: what changed in kind, not drift.

Per column of the reference (findings are :class:`~.models.QualityIssue`):

- ``missing_column``: the column is not in the current data;
- ``type_mismatch``: numbers where the reference had text, or the other way round;
- ``all_null``: every current value is missing while the reference had values;
- ``missing_rate_jump``: the missing share rose by at least ``missing_jump`` (absolute,
  default 0.1) over the reference's;
- ``out_of_range``: at least ``out_of_range`` (default 1 %) of the finite current values
  lie outside the reference's ``[min, max]``; infinite values count as outside;
- ``new_categories``: values of a categorical column the reference never saw, when the
  reference kept all its categories (at most 50 distinct); at least ``new_categories``
  (default 1 %) of the rows.

The reference already holds what these need (type, missing share, min and max, the
categories), fitted once; the data stage's schema validation answers a different
question (does a batch meet a declared schema) and needs a schema per dataset, so the
checks here read the reference instead of inferring a schema from it. Every finding
reports the measured value, its threshold, the reference's value and up to five example
values. Shares are of the window's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftline.monitoring._frames import column_names, logical_type, numbers, row_count
from driftline.monitoring.models import QualityIssue, QualityReport, Reference

__all__ = ["QualityThresholds", "assess"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityThresholds:
    """When a data-quality finding is raised (see the module docstring)."""

    missing_jump: float = 0.1
    out_of_range: float = 0.01
    new_categories: float = 0.01
    min_rows: int = 100


def assess(
    reference: Reference,
    table: Any,
    *,
    columns: list[str] | None = None,
    thresholds: QualityThresholds | None = None,
) -> QualityReport:
    """Quality findings of ``table`` (pandas or Arrow) against ``reference``."""
    t = thresholds or QualityThresholds()
    rows = row_count(table)
    if rows < t.min_rows:
        return QualityReport(rows=rows, status="insufficient_data", issues=())
    present = set(column_names(table))
    issues: list[QualityIssue] = []
    for name in list(reference.columns) if columns is None else columns:
        ref = reference.columns[name]
        if ref.kind == "unsupported":
            continue
        if name not in present:
            issues.append(QualityIssue(column=name, kind="missing_column", value=1.0))
            continue
        kind = logical_type(table, name)
        numeric = kind in ("int", "float")
        if (ref.kind == "numeric") != numeric or kind == "other":
            issues.append(
                QualityIssue(column=name, kind="type_mismatch", value=1.0, examples=(kind,))
            )
            continue
        issues += (
            _numeric(name, ref, numbers(table, name), t)
            if numeric
            else _categorical(name, ref, table, t)
        )
    return QualityReport(rows=rows, status="ok", issues=tuple(issues))


def _missing(name: str, ref: Any, missing: int, rows: int, t: QualityThresholds) -> list[Any]:
    share = missing / rows if rows else 0.0
    if rows and missing == rows and ref.missing_share < 1:
        return [QualityIssue(column=name, kind="all_null", value=1.0, reference=ref.missing_share)]
    if share - ref.missing_share >= t.missing_jump:
        return [
            QualityIssue(
                column=name,
                kind="missing_rate_jump",
                value=share,
                threshold=ref.missing_share + t.missing_jump,
                reference=ref.missing_share,
            )
        ]
    return []


def _numeric(name: str, ref: Any, x: Any, t: QualityThresholds) -> list[QualityIssue]:
    import numpy as np

    rows = len(x)
    nan = np.isnan(x)
    issues = _missing(name, ref, int(nan.sum()), rows, t)
    if ref.min is None or ref.max is None:
        return issues
    valid = x[~nan]
    outside = valid[(valid < ref.min) | (valid > ref.max)]
    share = len(outside) / rows if rows else 0.0
    if outside.size and share >= t.out_of_range:
        issues.append(
            QualityIssue(
                column=name,
                kind="out_of_range",
                value=share,
                threshold=t.out_of_range,
                examples=tuple(f"{v:.6g}" for v in np.unique(outside)[:5]),
                reference_range=(ref.min, ref.max),
            )
        )
    return issues


def _categorical(name: str, ref: Any, table: Any, t: QualityThresholds) -> list[QualityIssue]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from driftline.monitoring._frames import value_counts

    values, counts, missing = value_counts(table, name)
    rows = int(counts.sum()) + missing
    issues = _missing(name, ref, missing, rows, t)
    complete = ref.distinct is not None and ref.distinct <= len(ref.categories)
    if not complete or not len(counts):
        return issues
    known = pc.is_in(values, value_set=pa.array(list(ref.categories), pa.string()))
    new = ~np.asarray(known.to_numpy(zero_copy_only=False), dtype=bool)
    share = float(counts[new].sum()) / rows if rows else 0.0
    if new.any() and share >= t.new_categories:
        order = np.argsort(-counts[new], kind="stable")[:5]
        examples = values.filter(pa.array(new)).take(pa.array(order)).to_pylist()
        issues.append(
            QualityIssue(
                column=name,
                kind="new_categories",
                value=share,
                threshold=t.new_categories,
                examples=tuple(str(v) for v in examples),
            )
        )
    return issues
