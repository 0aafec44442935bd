"""Column statistics of a table: streamed through DuckDB, mergeable, JSON-safe.

:func:`profile_table` reads an Arrow table, a pandas DataFrame, or Parquet/CSV files that
together form one table. DuckDB streams the data (threads = cores, memory_limit 1GB), so
a file larger than memory is fine. Two scans, never one per column:

1. one ungrouped aggregate over every column: counts, nulls, min, max, sums (of ``x -
   shift``, a typical value read from the first rows, so that one-pass variance stays
   exact), a distinct estimate, and one uniform row sample for the quantiles;
2. one grouped query (``GROUPING SETS``: a small hash table per column, one scan) that
   counts the histogram bins, which need min and max first, and the values of string
   columns with up to 10,000 distinct values. DuckDB's ungrouped ``histogram`` was 2-3x
   slower, and its one-argument form materializes the input when other aggregates share
   the query. High-cardinality string columns alone need one more, cheaper query.

What the numbers mean:

- ``count`` is every row, nulls included; ``nulls`` counts nulls and, in float columns,
  NaN (pandas' missing value), so Arrow, pandas, Parquet and CSV inputs agree.
- Infinite floats are counted in ``infinite`` and left out of min, max, mean, std (sample,
  ddof=1), quantiles and histogram, which describe the finite values.
- ``distinct`` is DuckDB's HyperLogLog estimate (a few percent off), exact for bool columns
  and for string columns whose values were all counted.
- Histograms have ``bins`` equal-width bins from min to max, closed on the left (the last
  on both sides), like ``numpy.histogram``.
- Quantiles (linear interpolation) are exact up to 131,072 rows and come from a uniform
  random row sample above that (rank error about 0.3%), so two profiles of one big table
  may differ in their last digits, as parallel sums do anyway.
- ``top_k`` holds the most frequent string/bool values with exact counts; a column with at
  most :data:`DOMAIN_LIMIT` distinct values keeps all of them, so that a schema can take
  its domain from a profile. Near-unique string columns (ids, free text) get none.
- Timestamps (naive ones read as UTC) and dates report min and max as ISO 8601 strings.

Profiles of two parts of one table merge (:meth:`TableProfile.merge`): counts, nulls, min,
max, mean and std exactly; histograms by re-binning; quantiles, distinct and top-k
approximately. :mod:`.validation` plans its checks into the same first scan.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = [
    "DOMAIN_LIMIT",
    "LOGICAL_TYPES",
    "QUANTILES",
    "TABULAR_FORMATS",
    "ColumnProfile",
    "Histogram",
    "TableProfile",
    "is_tabular",
    "profile_table",
]

TABULAR_FORMATS = (".parquet", ".pq", ".csv", ".tsv")
LOGICAL_TYPES = ("int", "float", "bool", "string", "timestamp", "date", "binary", "other")
QUANTILES: Mapping[str, float] = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
# A column with at most this many distinct values keeps them all in top_k (TFDV's limit).
DOMAIN_LIMIT = 100
_FORMAT = "driftline.profile/1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Histogram:
    """Counts of values in bins ``[edges[i], edges[i+1])``, the last bin closed on the right."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        """The number of values counted."""
        return sum(self.counts)


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnProfile:
    """Statistics of one column (the module docstring says how each is computed).

    Attributes:
        name: Column name.
        type: Logical type, one of :data:`LOGICAL_TYPES`.
        count: Rows, nulls included.
        nulls: Nulls, and NaN in float columns.
        distinct: Distinct non-null values: a HyperLogLog estimate unless all were counted.
        min: Smallest finite value (int or float), string, or ISO timestamp/date.
        max: Largest, likewise.
        mean: Mean of the finite values (numeric columns only).
        std: Sample standard deviation (ddof=1) of the finite values.
        quantiles: ``p01`` ... ``p99`` of the finite values.
        histogram: Equal-width bins from min to max (numeric columns only).
        top_k: Most frequent values with exact counts (string and bool columns).
        infinite: Infinite values of a float column.
    """

    name: str
    type: str
    count: int
    nulls: int
    distinct: int
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    histogram: Histogram | None = None
    top_k: tuple[tuple[str, int], ...] = ()
    infinite: int = 0

    @property
    def non_null(self) -> int:
        """Values that are not null (nor NaN)."""
        return self.count - self.nulls

    @property
    def null_fraction(self) -> float:
        """Share of null values; 0.0 for an empty column."""
        return self.nulls / self.count if self.count else 0.0

    @property
    def top_k_complete(self) -> bool:
        """Whether ``top_k`` lists every value the column holds."""
        return sum(c for _, c in self.top_k) == self.non_null


@dataclass(frozen=True, slots=True, kw_only=True)
class TableProfile:
    """Statistics of a table: its row count and one :class:`ColumnProfile` per column.

    Example::

        profile = profile_table(["part-0.parquet", "part-1.parquet"])
        profile.columns["age"].quantiles["p50"]
        TableProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    """

    rows: int
    columns: dict[str, ColumnProfile]
    top_k_size: int = 50

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and infinities become strings), read by :meth:`from_dict`."""
        return {
            "format": _FORMAT,
            "rows": self.rows,
            "top_k_size": self.top_k_size,
            "columns": [_column_to_dict(c) for c in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TableProfile:
        """Rebuild a profile from :meth:`to_dict` output."""
        if not isinstance(d, Mapping) or d.get("format") != _FORMAT:
            raise InvalidArgumentError(
                f"Not a driftline profile (no format {_FORMAT!r}); pass TableProfile.to_dict()"
            )
        try:
            columns = [_column_from_dict(c) for c in d["columns"]]
            return cls(
                rows=int(d["rows"]),
                columns={c.name: c for c in columns},
                top_k_size=int(d.get("top_k_size", 50)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"Malformed profile: {exc!r} in its dict") from None

    def merge(self, other: TableProfile) -> TableProfile:
        """Combine the profiles of two parts of one table (same columns).

        Counts, nulls, min, max, mean and std combine exactly (Chan's parallel variance).
        Histograms with the same inner edges add up; others are re-binned onto equal bins
        over the union range, assuming values spread evenly inside a bin. Quantiles are read
        from the merged distribution, top-k counts are summed (a value missing from one
        part's top-k counts zero there), and distinct is exact only when both top-k lists
        are complete, otherwise an estimate between the larger part and the sum.
        """
        if list(self.columns) != list(other.columns):
            raise InvalidArgumentError(
                f"Cannot merge profiles of different columns: {list(self.columns)} vs "
                f"{list(other.columns)}; merge only parts of one table"
            )
        k = max(self.top_k_size, other.top_k_size)
        merged = {n: _merge_columns(c, other.columns[n], k) for n, c in self.columns.items()}
        return TableProfile(rows=self.rows + other.rows, columns=merged, top_k_size=k)


def is_tabular(path: str | os.PathLike[str]) -> bool:
    """Whether a file name has a suffix :func:`profile_table` reads (:data:`TABULAR_FORMATS`)."""
    return os.fspath(path).lower().endswith(TABULAR_FORMATS)


def profile_table(data: Any, *, bins: int = 20, top_k: int = 50) -> TableProfile:
    """Profile a table in two streaming aggregate queries.

    Args:
        data: A ``pyarrow.Table``, a ``pandas.DataFrame``, one path, or a list of local
            Parquet/CSV/TSV paths that together form one table (same columns).
        bins: Equal-width histogram bins between a numeric column's min and max.
        top_k: How many of the most frequent string/bool values to keep.

    Returns:
        The profile, columns in table order.

    Example::

        profile = profile_table(pyarrow.table({"x": [1.0, 2.0, None]}))
        profile.columns["x"].nulls  # 1
    """
    from driftline.data._stats_sql import _Scan

    with _Scan(data, bins=bins, top_k=top_k) as scan:
        scan.first_pass()
        return scan.finish()


# -- serialization ---------------------------------------------------------------------


def _enc(v: float | None) -> float | str | None:
    if v is None or math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _dec(v: Any) -> float | None:
    return None if v is None else float(v)


def _column_to_dict(c: ColumnProfile) -> dict[str, Any]:
    numeric = c.type in ("int", "float")
    h = c.histogram
    return {
        "name": c.name,
        "type": c.type,
        "count": c.count,
        "nulls": c.nulls,
        "infinite": c.infinite,
        "distinct": c.distinct,
        "min": _enc(c.min) if numeric and isinstance(c.min, float) else c.min,
        "max": _enc(c.max) if numeric and isinstance(c.max, float) else c.max,
        "mean": _enc(c.mean),
        "std": _enc(c.std),
        "quantiles": {k: _enc(v) for k, v in c.quantiles.items()},
        "histogram": None
        if h is None
        else {"edges": [_enc(e) for e in h.edges], "counts": list(h.counts)},
        "top_k": [[v, n] for v, n in c.top_k],
    }


def _column_from_dict(d: Mapping[str, Any]) -> ColumnProfile:
    numeric = d["type"] in ("int", "float")

    def bound(v: Any) -> float | str | None:
        return _dec(v) if numeric and isinstance(v, str) else v

    h = d.get("histogram")
    return ColumnProfile(
        name=str(d["name"]),
        type=str(d["type"]),
        count=int(d["count"]),
        nulls=int(d["nulls"]),
        infinite=int(d.get("infinite", 0)),
        distinct=int(d["distinct"]),
        min=bound(d.get("min")),
        max=bound(d.get("max")),
        mean=_dec(d.get("mean")),
        std=_dec(d.get("std")),
        quantiles={str(k): float(v) for k, v in (d.get("quantiles") or {}).items()},
        histogram=None
        if h is None
        else Histogram(
            edges=tuple(float(e) for e in h["edges"]), counts=tuple(int(n) for n in h["counts"])
        ),
        top_k=tuple((str(v), int(n)) for v, n in d.get("top_k") or ()),
    )


# -- merging ---------------------------------------------------------------------------


def _merge_columns(a: ColumnProfile, b: ColumnProfile, k: int) -> ColumnProfile:
    types = {a.type, b.type}
    if len(types) > 1 and types != {"int", "float"}:
        raise InvalidArgumentError(
            f"Column {a.name!r} is {a.type} in one profile and {b.type} in the other; "
            "parts of one table must agree on column types"
        )
    type_ = "float" if types == {"int", "float"} else a.type
    na, nb = a.non_null - a.infinite, b.non_null - b.infinite  # finite values
    mean = std = None
    if na + nb:
        ma, mb = a.mean or 0.0, b.mean or 0.0
        n = na + nb
        delta = mb - ma
        mean = ma + delta * nb / n
        m2 = (a.std or 0.0) ** 2 * max(na - 1, 0) + (b.std or 0.0) ** 2 * max(nb - 1, 0)
        m2 += delta * delta * na * nb / n
        std = math.sqrt(m2 / (n - 1)) if n > 1 else None
    if type_ not in ("int", "float"):
        mean = std = None
    hist = _merge_histograms(a.histogram, b.histogram)
    top, exact = _merge_top_k(a, b, k)
    if exact is not None:
        distinct = exact
    else:  # HyperLogLog sketches are not kept; estimate from how unique each part is
        total = a.non_null + b.non_null
        ua = a.distinct / a.non_null if a.non_null else 1.0
        ub = b.distinct / b.non_null if b.non_null else 1.0
        hi, lo = max(a.distinct, b.distinct), min(a.distinct, b.distinct)
        distinct = min(total, round(hi + lo * min(ua, ub, 1.0)))
    return ColumnProfile(
        name=a.name,
        type=type_,
        count=a.count + b.count,
        nulls=a.nulls + b.nulls,
        infinite=a.infinite + b.infinite,
        distinct=distinct,
        min=_pick(min, a.min, b.min),
        max=_pick(max, a.max, b.max),
        mean=mean,
        std=std,
        quantiles=_merge_quantiles(a, b, na, nb, hist),
        histogram=hist,
        top_k=top,
    )


def _pick(f: Any, x: Any, y: Any) -> Any:
    return x if y is None else y if x is None else f(x, y)


def _merge_top_k(a: ColumnProfile, b: ColumnProfile, k: int) -> tuple[Any, int | None]:
    """Summed top-k, and the exact distinct count when both lists were complete."""
    counts: dict[str, int] = {}
    for v, n in (*a.top_k, *b.top_k):
        counts[v] = counts.get(v, 0) + n
    complete = a.top_k_complete and b.top_k_complete
    ranked = sorted(counts.items(), key=lambda vn: (-vn[1], vn[0]))
    keep = len(ranked) if complete and len(ranked) <= DOMAIN_LIMIT else k
    return tuple(ranked[:keep]), len(ranked) if complete else None


def _merge_histograms(a: Histogram | None, b: Histogram | None) -> Histogram | None:
    if a is None or b is None:
        return a or b
    lo, hi = min(a.edges[0], b.edges[0]), max(a.edges[-1], b.edges[-1])
    if len(a.edges) == len(b.edges) and a.edges[1:-1] == b.edges[1:-1]:
        counts = tuple(x + y for x, y in zip(a.counts, b.counts, strict=True))
        return Histogram(edges=(lo, *a.edges[1:-1], hi), counts=counts)
    n = max(len(a.counts), len(b.counts))
    edges = _uniform_edges(lo, hi, n)
    shares = [x + y for x, y in zip(_rebin(a, edges), _rebin(b, edges), strict=True)]
    return Histogram(edges=edges, counts=_round_keeping_total(shares, a.total + b.total))


def _uniform_edges(lo: float, hi: float, n: int) -> tuple[float, ...]:
    step = (hi - lo) / n
    return (*(lo + i * step for i in range(n)), hi)


def _rebin(h: Histogram, edges: tuple[float, ...]) -> list[float]:
    """Spread each bin's count over the new bins it overlaps, evenly within the bin."""
    out = [0.0] * (len(edges) - 1)
    for (left, right), count in zip(itertools.pairwise(h.edges), h.counts, strict=True):
        if not count:
            continue
        if right <= left:  # a zero-width bin is a point mass
            out[_bin_of(left, edges)] += count
            continue
        for j in range(_bin_of(left, edges), _bin_of(right, edges) + 1):
            overlap = min(right, edges[j + 1]) - max(left, edges[j])
            if overlap > 0:
                out[j] += count * overlap / (right - left)
    return out


def _bin_of(x: float, edges: tuple[float, ...]) -> int:
    return min(max(bisect.bisect_right(edges, x) - 1, 0), len(edges) - 2)


def _round_keeping_total(shares: list[float], total: int) -> tuple[int, ...]:
    floors = [math.floor(s) for s in shares]
    order = sorted(range(len(shares)), key=lambda i: floors[i] - shares[i])
    for i in order[: max(total - sum(floors), 0)]:
        floors[i] += 1
    return tuple(floors)


def _merge_quantiles(
    a: ColumnProfile, b: ColumnProfile, na: int, nb: int, hist: Histogram | None
) -> dict[str, float]:
    """Invert the mixture of the parts' CDFs, each drawn through its bin edges and quantiles."""
    if not na or not nb or a.histogram is None or b.histogram is None or hist is None:
        return dict(a.quantiles if na >= nb else b.quantiles)
    knots_a, knots_b = _cdf_knots(a), _cdf_knots(b)
    xs = sorted({x for x, _ in knots_a} | {x for x, _ in knots_b})
    cdf = [(na * _interp(x, knots_a) + nb * _interp(x, knots_b)) / (na + nb) for x in xs]
    out = {}
    for key, p in QUANTILES.items():
        i = next((j for j, f in enumerate(cdf) if f >= p), len(xs) - 1)
        if i == 0 or cdf[i] == cdf[i - 1]:
            out[key] = xs[i]
        else:
            out[key] = xs[i - 1] + (xs[i] - xs[i - 1]) * (p - cdf[i - 1]) / (cdf[i] - cdf[i - 1])
    return out


def _cdf_knots(c: ColumnProfile) -> list[tuple[float, float]]:
    h = c.histogram
    assert h is not None
    total = h.total or 1
    knots, running = [(h.edges[0], 0.0)], 0
    for edge, count in zip(h.edges[1:], h.counts, strict=True):
        running += count
        knots.append((edge, running / total))
    knots += [(x, QUANTILES[k]) for k, x in c.quantiles.items() if k in QUANTILES]
    knots.sort()
    best = 0.0  # sampled quantiles may disagree a little with the bins; keep F monotone
    return [(x, best := max(best, f)) for x, f in knots]


def _interp(x: float, knots: list[tuple[float, float]]) -> float:
    i = bisect.bisect_right(knots, (x, math.inf))
    if i == 0:
        return 0.0
    if i == len(knots):
        return 1.0
    (x0, f0), (x1, f1) = knots[i - 1], knots[i]
    return f0 if x1 == x0 else f0 + (f1 - f0) * (x - x0) / (x1 - x0)
