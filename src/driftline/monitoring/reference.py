"""Fit a drift reference once: bins, a quantile sketch and top categories per column.

Numeric columns (int and float):

- **Bins**: the deciles of the finite values, taken as values that occur in the data
  (``inverted_cdf``), with duplicates merged and any edge at or above the maximum dropped.
  Bins are closed on the right, ``(-inf, e1], (e1, e2], ..., (ek, +inf)``, so every bin
  holds reference values: a column of a few tied integers gets one bin per value, a
  zero-inflated one a single bin for its zeros, and no bin is empty by construction
  (empty bins are what make PSI explode on noise). A constant column ``c`` gets the bins
  ``(-inf, c^-], (c^-, c], (c, +inf)`` (``c^-`` the next float below), so any change shows.
  Infinite values fall in the outer bins; null and NaN in a separate missing share.
- **Sketch**: the ``0, 1/1000, ..., 1`` quantiles of the finite values and the exact
  reference CDF at each (and just below each, which tells atoms from spread), from which
  drift computes Wasserstein distance and the KS statistic without re-reading the
  reference.
- mean and (sample) std of the finite values, for normalizing Wasserstein distance.

Categorical columns (string, bool, dictionary): the 50 most frequent values (ties by
value) with their shares of all rows, ``__other__`` for the rest, ``__missing__`` for
nulls. Other types (timestamps, binary, nested) are kept as ``unsupported``.

The data stage's :func:`~driftline.data.profile` does equal-width histograms and seven
quantiles through DuckDB for dataset versions; drift needs decile edges that hold mass and
a fine sketch, computed from the same column arrays drift reads, so the two use one
reading of the data (:mod:`._frames`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError
from driftline.monitoring._frames import (
    Source,
    column_names,
    logical_type,
    numbers,
    row_count,
    value_counts,
)
from driftline.monitoring.models import ColumnReference, Reference

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BINS", "SKETCH_SIZE", "TOP_CATEGORIES", "fit", "settings_key"]

BINS = 10
SKETCH_SIZE = 1001
TOP_CATEGORIES = 50


def settings_key(bins: int = BINS, sketch: int = SKETCH_SIZE, top: int = TOP_CATEGORIES) -> str:
    """The fitting parameters as one string, part of a stored reference's identity."""
    return f"bins={bins},sketch={sketch},top={top}"


def fit(
    source: Source,
    *,
    columns: list[str] | None = None,
    bins: int = BINS,
    sketch: int = SKETCH_SIZE,
    top: int = TOP_CATEGORIES,
) -> Reference:
    """Fit a :class:`Reference` on a table.

    Example::

        ref = fit(open_source(df))
        ref.columns["age"].edges
    """
    if bins < 2 or sketch < 3 or top < 1:
        raise InvalidArgumentError("Need bins >= 2, sketch >= 3 and top >= 1")
    table = source.table
    names = column_names(table)
    chosen = names if columns is None else columns
    unknown = [c for c in chosen if c not in names]
    if unknown:
        raise InvalidArgumentError(f"Columns {unknown} are not in the reference data {names}")
    rows = row_count(table)
    fitted = {}
    for name in chosen:
        type_ = logical_type(table, name)
        if type_ in ("int", "float"):
            fitted[name] = _fit_numeric(name, type_, numbers(table, name), bins, sketch)
        elif type_ in ("string", "bool"):
            fitted[name] = _fit_categorical(name, type_, table, rows, top)
        else:
            fitted[name] = ColumnReference(
                name=name, kind="unsupported", type=type_, rows=rows, missing=0
            )
    return Reference(
        rows=rows,
        columns=fitted,
        source=source.label,
        source_key=source.key,
        settings={"bins": bins, "sketch": sketch, "top": top},
    )


def _fit_numeric(name: str, type_: str, x: np.ndarray, bins: int, size: int) -> ColumnReference:
    import numpy as np

    rows = len(x)
    missing = int(np.count_nonzero(np.isnan(x)))
    finite = np.sort(x[np.isfinite(x)])
    infinite = rows - missing - len(finite)
    base = ColumnReference(name=name, kind="numeric", type=type_, rows=rows, missing=missing)
    if not len(finite):
        return _with(base, infinite=infinite, missing_share=missing / rows if rows else 0.0)
    lo, hi = float(finite[0]), float(finite[-1])
    edges = _edges(finite, bins)
    # Right-closed bins: searchsorted(side="left") counts the edges below a value.
    idx = np.searchsorted(edges, x[~np.isnan(x)], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    probs = np.linspace(0.0, 1.0, size)
    sketch = np.quantile(finite, probs, method="inverted_cdf")
    cdf = np.searchsorted(finite, sketch, side="right") / len(finite)
    cdf_left = np.searchsorted(finite, sketch, side="left") / len(finite)
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    return _with(
        base,
        infinite=infinite,
        distinct=None,
        mean=float(np.mean(finite)),
        std=std if np.isfinite(std) else 0.0,
        min=lo,
        max=hi,
        edges=tuple(float(e) for e in edges),
        proportions=tuple(float(c) / rows for c in counts),
        missing_share=missing / rows,
        sketch=tuple(float(v) for v in sketch),
        sketch_cdf=tuple(float(v) for v in cdf),
        sketch_cdf_left=tuple(float(v) for v in cdf_left),
    )


def _edges(finite: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges that each close a bin holding reference values (module docstring)."""
    import numpy as np

    lo, hi = finite[0], finite[-1]
    if lo == hi:
        return np.array([np.nextafter(lo, -np.inf), lo])
    q = np.quantile(finite, np.arange(1, bins) / bins, method="inverted_cdf")
    edges = np.unique(q)
    kept: np.ndarray = edges[edges < hi]
    return kept


def _fit_categorical(name: str, type_: str, table: Any, rows: int, top: int) -> ColumnReference:
    import numpy as np

    values, counts, missing = value_counts(table, name)
    kept: list[tuple[str, int]] = []
    if len(counts):
        import pyarrow as pa
        import pyarrow.compute as pc

        # Only values as frequent as the top-th can make the cut; ties go by value, so
        # that two fits of one table keep the same categories.
        floor = np.partition(counts, -min(top, len(counts)))[-min(top, len(counts))]
        pick = np.flatnonzero(counts >= floor)
        t = pa.table({"v": values.take(pick), "n": counts[pick]})
        order = pc.sort_indices(t, sort_keys=[("n", "descending"), ("v", "ascending")])
        t = t.take(order.slice(0, top))
        kept = list(zip(t.column("v").to_pylist(), t.column("n").to_pylist(), strict=True))
    total_kept = sum(c for _, c in kept)
    return ColumnReference(
        name=name,
        kind="categorical",
        type=type_,
        rows=rows,
        missing=missing,
        distinct=len(counts),
        categories=tuple(str(v) for v, _ in kept),
        proportions=tuple(c / rows for _, c in kept) if rows else (),
        other_share=(rows - missing - total_kept) / rows if rows else 0.0,
        missing_share=missing / rows if rows else 0.0,
    )


def _with(base: ColumnReference, **changes: Any) -> ColumnReference:
    import dataclasses

    return dataclasses.replace(base, **changes)
