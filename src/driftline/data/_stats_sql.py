"""The DuckDB scans behind :mod:`.profile` and :mod:`.validation`.

:class:`_Scan` plans every statistic (and every validation check) of a table into one
ungrouped aggregate, then one grouped query for histogram bins and string value counts;
see :mod:`.profile` for what the numbers mean. Kept apart from the profile records so
each module stays readable: the records and their merge rules there, the SQL here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from driftline.data.profile import (
    DOMAIN_LIMIT,
    QUANTILES,
    TABULAR_FORMATS,
    ColumnProfile,
    Histogram,
    TableProfile,
    _uniform_edges,
    is_tabular,
)
from driftline.errors import InvalidArgumentError

# Up to this many distinct values a string column is counted exactly in a GROUP BY.
_GROUP_LIMIT = 10_000
# Above both limits a string column is an id or free text: its top-k is not counted.
_NEAR_UNIQUE_SHARE = 0.9
# Quantiles come from a uniform sample of this many rows (fewer for very wide tables).
_SAMPLE_ROWS, _SAMPLE_VALUES = 131_072, 8_000_000
_INT_SQL = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
_INT_SQL |= {"U" + t for t in _INT_SQL}


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_float(value: float) -> str:
    return f"CAST({float(value)!r} AS DOUBLE)"  # a bare 0.5 would be a DECIMAL


def _logical_type(sql_type: str) -> str:
    t = sql_type.upper()
    if t in _INT_SQL:
        return "int"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "float"
    if t == "BOOLEAN":
        return "bool"
    if t == "VARCHAR" or t.startswith("ENUM"):
        return "string"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    return {"DATE": "date", "BLOB": "binary"}.get(t, "other")


@dataclass(slots=True)
class _Col:
    """What the scan has learnt about one column so far (mutable, internal)."""

    i: int
    name: str
    type: str
    sql_type: str
    non_null: int = 0
    finite: int = 0
    infinite: int = 0
    distinct: int = 0
    min: Any = None
    max: Any = None
    shift: float = 0.0  # sums are taken of x - shift, a typical value, to stay exact
    s1: float = 0.0
    s2: float = 0.0
    quantiles: dict[str, float] = field(default_factory=dict)
    edges: tuple[float, ...] | None = None  # histogram bins, once known
    bins: list[int] | None = None
    planned: tuple[str, ...] = ()  # string values to count exactly
    counts: dict[str, int] | None = None  # exact counts of some values
    complete: bool = False  # counts hold every value

    @property
    def numeric(self) -> bool:
        return self.type in ("int", "float")

    @property
    def floating(self) -> bool:
        return self.sql_type in ("DOUBLE", "FLOAT", "REAL")

    @property
    def raw(self) -> str:
        return f"c{self.i}"

    @property
    def x(self) -> str:
        """The finite values as DOUBLE (numeric), or the values as VARCHAR (string)."""
        return f"x{self.i}"

    @property
    def mean(self) -> float:
        return self.shift + self.s1 / self.finite if self.finite else 0.0

    @property
    def m2(self) -> float:
        return max(self.s2 - self.s1 * self.s1 / self.finite, 0.0) if self.finite else 0.0

    @property
    def other(self) -> int:
        """Non-null values outside ``counts``."""
        return self.non_null - sum((self.counts or {}).values())


class _Scan:
    """A DuckDB connection over the input, and the columns' statistics as they arrive.

    Queries: a tiny ``LIMIT`` read for typical values (the shifts that keep one-pass sums
    exact); the main ungrouped aggregate over every column; then one grouped query
    (``GROUPING SETS``, one hash table per column, a single scan) for the histogram bins
    and the values of low-cardinality string columns, which is much cheaper than DuckDB's
    ungrouped ``histogram``. Only high-cardinality string columns need more. A caller may
    plan work into the first pass (bins on known edges, counts of known values, extra
    aggregates): :mod:`.validation` does, to check a batch in one pass.
    """

    def __init__(self, data: Any, *, bins: int = 20, top_k: int = 50) -> None:
        if not isinstance(bins, int) or not 1 <= bins <= 10_000:
            raise InvalidArgumentError(f"bins must be an int from 1 to 10000, got {bins!r}")
        if not isinstance(top_k, int) or top_k < 1:
            raise InvalidArgumentError(f"top_k must be a positive int, got {top_k!r}")
        import duckdb

        self.bins, self.top_k = bins, top_k
        self._error = duckdb.Error
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.con = duckdb.connect(
            config={"threads": cores or 1, "memory_limit": "1GB", "preserve_insertion_order": False}
        )
        try:
            self.source, self.rows = self._register(data)
            described = self.query(f"DESCRIBE SELECT * FROM {self.source}")
        except BaseException:
            self.con.close()
            raise
        self.columns = [
            _Col(i=i, name=str(r[0]), type=_logical_type(str(r[1])), sql_type=str(r[1]))
            for i, r in enumerate(described)
        ]
        self.by_name = {c.name: c for c in self.columns}
        self.row_count = 0
        self._hashes: dict[str, int] = {}  # DuckDB's hash of string values

    def __enter__(self) -> _Scan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    def _register(self, data: Any) -> tuple[str, int | None]:
        if isinstance(data, (str, os.PathLike)):
            data = [data]
        if isinstance(data, (list, tuple)):
            return self._register_files([os.fspath(p) for p in data])
        if hasattr(data, "read_all") and not hasattr(data, "num_rows"):
            data = data.read_all()  # a stream reads once; the scan reads twice
        try:  # Arrow tables and pandas frames are scanned in place, without a copy
            self.con.register("frame", data)
        except Exception as exc:  # DuckDB raises several types for "cannot scan this"
            raise InvalidArgumentError(
                f"Cannot read a {type(data).__name__} as a table: pass a pyarrow.Table, a "
                f"pandas.DataFrame or a list of Parquet/CSV paths ({exc})"
            ) from None
        rows = getattr(data, "num_rows", None)
        if rows is None and hasattr(data, "__len__"):
            rows = len(data)
        return "frame", None if rows is None else int(rows)

    def _register_files(self, paths: list[str]) -> tuple[str, int | None]:
        if not paths:
            raise InvalidArgumentError("No files given: pass at least one Parquet or CSV path")
        kinds = set()
        for p in paths:
            if not is_tabular(p):
                raise InvalidArgumentError(
                    f"{p!r} is not a tabular file; driftline reads {', '.join(TABULAR_FORMATS)}"
                )
            if "://" not in p and not os.path.isfile(p):
                raise InvalidArgumentError(f"No such file: {p!r}")
            kinds.add("parquet" if p.lower().endswith((".parquet", ".pq")) else p[-3:].lower())
        if len(kinds) > 1:
            raise InvalidArgumentError(f"Files mix formats {sorted(kinds)}; pass one format")
        listed = "[" + ", ".join(_sql_text(p) for p in paths) + "]"
        if kinds == {"parquet"}:
            self.query(f"CREATE VIEW src AS SELECT * FROM read_parquet({listed})")
            return "src", int(self.query("SELECT count(*) FROM src")[0][0])  # from footers
        delim = "\\t" if kinds == {"tsv"} else ","
        self.query(f"CREATE VIEW src AS SELECT * FROM read_csv({listed}, delim=E'{delim}')")
        return "src", _estimate_csv_rows(paths)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one statement; DuckDB errors about the input become InvalidArgumentError."""
        try:
            return self.con.execute(sql).fetchall()
        except self._error as exc:
            raise InvalidArgumentError(f"Could not read the table: {exc}") from None

    # -- planning, before the first pass ---------------------------------------------------

    def plan_bins(self, name: str, edges: tuple[float, ...]) -> None:
        """Count a numeric column on these edges in the first pass (outer bins open)."""
        self.by_name[name].edges = edges

    def plan_counts(self, name: str, values: Sequence[str]) -> None:
        """Count these values of a string column exactly in the first pass."""
        self.by_name[name].planned = tuple(dict.fromkeys(values))

    # -- queries ---------------------------------------------------------------------------

    def _source(self, random: bool = False) -> str:
        """Each column as ``c<i>``; numeric and string ones also as ``x<i>`` (see _Col.x)."""
        parts = [c.raw for c in self.columns]
        for c in self.columns:
            if c.numeric:
                x = c.raw if c.sql_type == "DOUBLE" else f"CAST({c.raw} AS DOUBLE)"
                if c.floating:  # NaN counts as null, infinities are counted apart
                    x = f"CASE WHEN isfinite({c.raw}) THEN {x} END"
                parts.append(f"{x} AS {c.x}")
            elif c.type == "string":
                x = c.raw if c.sql_type == "VARCHAR" else f"CAST({c.raw} AS VARCHAR)"
                parts.append(f"{x} AS {c.x}")
        if random:
            parts.append("random() AS rnd")
        inner = ", ".join(f"{_sql_name(c.name)} AS {c.raw}" for c in self.columns)
        return f"SELECT {', '.join(parts)} FROM (SELECT {inner} FROM {self.source})"

    def _run(
        self, aggs: Mapping[str, str], outer: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """One ungrouped aggregate; ``outer`` expressions are computed from its results."""
        if not aggs:
            return {}
        listed = ", ".join(f"{e} AS {a}" for a, e in aggs.items())
        sql = f"SELECT {listed} FROM ({self._source(any('rnd <' in e for e in aggs.values()))})"
        names = list(aggs)
        if outer:  # the row sample (smp) only feeds the outer expressions
            names = [*(a for a in aggs if a != "smp"), *outer]
            more = ", ".join(f"{e} AS {a}" for a, e in outer.items())
            sql = f"SELECT * EXCLUDE (smp), {more} FROM ({sql})"
        return dict(zip(names, self.query(sql)[0], strict=True))

    def first_pass(self, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Run the main aggregate query and return the values of the ``extra`` aggregates."""
        numeric = [c for c in self.columns if c.numeric]
        self._read_shifts(numeric)
        aggs = {"n_rows": "count(*)"}
        for c in self.columns:
            p, x = f"p{c.i}_", c.x
            aggs[p + "nn"] = f"count({c.raw})"
            if c.numeric:
                bound = c.raw if c.type == "int" else x  # ints stay exact
                shifted = f"({x} - {_sql_float(c.shift)})"
                aggs |= {p + "min": f"min({bound})", p + "max": f"max({bound})"}
                aggs |= {p + "s1": f"sum({shifted})", p + "s2": f"sum({shifted} * {shifted})"}
                aggs[p + "nd"] = f"approx_count_distinct({bound})"
                if c.floating:
                    aggs |= {p + "nf": f"count({x})", p + "inf": f"count_if(isinf({c.raw}))"}
                if c.edges is not None:
                    aggs[p + "hist"] = _edge_histogram(c, c.edges)
            elif c.type == "bool":
                aggs[p + "true"] = f"count_if({c.raw})"
            elif c.type == "string":
                aggs[p + "nd"] = f"approx_count_distinct({x})"
                if c.planned:
                    aggs[p + "vc"] = self._count_agg(c, c.planned)
            elif c.type in ("timestamp", "date"):
                aggs[p + "min"] = f"CAST(min({c.raw}) AS VARCHAR)"
                aggs[p + "max"] = f"CAST(max({c.raw}) AS VARCHAR)"
                aggs[p + "nd"] = f"approx_count_distinct({c.raw})"
            else:
                nd = f"approx_count_distinct(hash({c.raw})) FILTER (WHERE {c.raw} IS NOT NULL)"
                aggs[p + "nd"] = nd
        aggs |= dict(extra or {})
        outer = self._quantile_aggs(numeric, aggs)
        r = self._run(aggs, outer)
        self.row_count = int(r["n_rows"])
        for c in self.columns:
            self._read_first(c, r)
        return {k: r[k] for k in extra or {}}

    def _count_agg(self, c: _Col, values: Sequence[str]) -> str:
        """Exact counts of known values, as a binary search over their hashes.

        Each value's 64-bit hash ``h`` gets the bucket ``(h - 1, h]`` in DuckDB's
        ``histogram(v, bounds)``, which therefore counts that value alone (barring a hash
        collision, odds about 1e-17); other values fall in the buckets between. Far cheaper
        than ``histogram_exact`` or ``IN`` lists, which compare every row with every value.
        """
        missing = [v for v in values if v not in self._hashes]
        if missing:
            listed = ", ".join(map(_sql_text, missing))
            found = self.query(f"SELECT v, hash(v) FROM (SELECT unnest([{listed}]) AS v)")
            self._hashes.update({str(v): int(h) for v, h in found})
        bounds = sorted(
            {b for v in values for b in (self._hashes[v] - 1, self._hashes[v]) if b >= 0}
        )
        listed = ", ".join(f"CAST({b} AS UBIGINT)" for b in bounds)
        return f"histogram(hash({c.x}), [{listed}]) FILTER (WHERE {c.x} IS NOT NULL)"

    def _read_counts(
        self, found: Mapping[int, int] | None, values: Sequence[str]
    ) -> dict[str, int]:
        found = found or {}
        return {v: int(found.get(self._hashes[v], 0)) for v in values}

    def _read_shifts(self, numeric: list[_Col]) -> None:
        """Typical values from the first rows: sums of x - shift lose no precision."""
        if not numeric:
            return
        cols = ", ".join(c.x for c in numeric)
        rows = self.query(f"SELECT {cols} FROM ({self._source()}) LIMIT 1000")
        for j, c in enumerate(numeric):
            seen = sorted(r[j] for r in rows if r[j] is not None)
            c.shift = float(seen[len(seen) // 2]) if seen else 0.0

    def _quantile_aggs(self, numeric: list[_Col], aggs: dict[str, str]) -> dict[str, str]:
        """Quantiles of one uniform row sample of all numeric columns (a t-digest if the row
        count is unknown). Sampling whole rows draws one random number per row."""
        qs = "[" + ", ".join(repr(q) for q in QUANTILES.values()) + "]"
        if not numeric:
            return {}
        if self.rows is None:
            aggs |= {f"p{c.i}_q": f"approx_quantile({c.x}, {qs})" for c in numeric}
            return {}
        fields = ", ".join(f"{c.x} := {c.x}" for c in numeric)
        sample = f"list(struct_pack({fields}))"
        target = min(_SAMPLE_ROWS, max(4096, _SAMPLE_VALUES // len(numeric)))
        if self.rows > target:
            sample += f" FILTER (WHERE rnd < {target / self.rows!r})"
        aggs["smp"] = sample
        return {
            f"p{c.i}_q": f"list_aggregate(list_transform(smp, lambda t: t.{c.x}), "
            f"'quantile_cont', {qs})"
            for c in numeric
        }

    def _read_first(self, c: _Col, r: Mapping[str, Any]) -> None:
        p = f"p{c.i}_"
        c.non_null = int(r[p + "nn"])
        c.distinct = int(r.get(p + "nd") or 0)
        c.min, c.max = r.get(p + "min"), r.get(p + "max")
        if c.type in ("timestamp", "date"):
            c.min, c.max = _iso(c.min), _iso(c.max)
        elif c.numeric:
            c.finite, c.infinite = int(r.get(p + "nf", c.non_null)), int(r.get(p + "inf") or 0)
            c.s1, c.s2 = float(r[p + "s1"] or 0.0), float(r[p + "s2"] or 0.0)
            c.quantiles = _quantiles(r.get(p + "q"))
            if c.type == "float" and c.min is not None:
                c.min, c.max = float(c.min), float(c.max)
            if c.edges is not None:
                c.bins = _read_edge_histogram(c.edges, r[p + "hist"])
        elif c.type == "bool":
            true = int(r[p + "true"] or 0)
            c.counts = {v: n for v, n in (("true", true), ("false", c.non_null - true)) if n}
            c.distinct, c.complete = len(c.counts), True
        elif c.type == "string" and c.planned:
            self._set_counts(c, self._read_counts(r[p + "vc"], c.planned))

    def _set_counts(self, c: _Col, counts: dict[str, int]) -> None:
        c.counts = counts
        if c.other == 0:  # every value is known: distinct, min and max are exact
            seen = [v for v, n in counts.items() if n]
            c.complete, c.distinct = True, len(seen)
            c.min, c.max = (min(seen), max(seen)) if seen else (None, None)

    def finish(self) -> TableProfile:
        """Run whatever the first pass left open, and build the profile."""
        keys: dict[str, _Col] = {}  # the grouped query: bins and low-cardinality values
        aggs: dict[str, str] = {}  # the ungrouped one: high-cardinality string columns
        for c in self.columns:
            p = f"p{c.i}_"
            if c.numeric and c.edges is None and c.finite:
                c.edges = _equal_bins(float(c.min), float(c.max), self.bins)
                if c.m2 * 1e6 < (c.mean - c.shift) ** 2 * c.finite:  # a far shift: recompute
                    c.shift, c.s1 = c.mean, 0.0
                    mean = _sql_float(c.shift)
                    aggs[p + "s2"] = f"sum(({c.x} - {mean}) * ({c.x} - {mean}))"
                step = _sql_float((c.edges[-1] - c.edges[0]) / self.bins)
                index = f"trunc(({c.x} - {_sql_float(c.edges[0])}) / {step})"
                keys[f"CAST({index} AS {'UTINYINT' if self.bins < 255 else 'USMALLINT'})"] = c
            elif c.type == "string" and c.non_null and not c.complete:
                if c.distinct <= _GROUP_LIMIT:
                    keys[c.x] = c
                else:
                    aggs |= {p + "min": f"min({c.x})", p + "max": f"max({c.x})"}
                    if c.distinct < _NEAR_UNIQUE_SHARE * c.non_null:
                        aggs[p + "top"] = f"approx_top_k({c.x}, {self.top_k})"
        self._read_groups(keys)
        r = self._run(aggs)
        recount: dict[str, str] = {}
        for c in self.columns:
            p = f"p{c.i}_"
            if p + "s2" in r:
                c.s2 = float(r[p + "s2"] or 0.0)
            if p + "min" in r:
                c.min, c.max = r[p + "min"], r[p + "max"]
            if c.type == "string" and r.get(p + "top"):  # count the frequent values exactly
                c.planned = tuple(dict.fromkeys((*(c.counts or {}), *map(str, r[p + "top"]))))
                recount[p + "vc"] = self._count_agg(c, c.planned)
        r = self._run(recount)
        for c in self.columns:
            if f"p{c.i}_vc" in r and c.planned:
                self._set_counts(c, self._read_counts(r[f"p{c.i}_vc"], c.planned))
        return TableProfile(
            rows=self.row_count,
            columns={c.name: self._column_profile(c) for c in self.columns},
            top_k_size=self.top_k,
        )

    def _read_groups(self, keys: dict[str, _Col]) -> None:
        if not keys:
            return
        names = [f"k{j}" for j in range(len(keys))]
        listed = ", ".join(f"{e} AS {k}" for e, k in zip(keys, names, strict=True))
        sets = ", ".join(f"({k})" for k in names)
        rows = self.query(
            f"SELECT grouping_id({', '.join(names)}), {', '.join(names)}, count(*) "
            f"FROM (SELECT {listed} FROM ({self._source()})) GROUP BY GROUPING SETS ({sets})"
        )
        cols = list(keys.values())
        found: list[dict[Any, int]] = [{} for _ in cols]
        top = len(cols) - 1
        for row in rows:
            j = top - (~int(row[0]) & ((1 << len(cols)) - 1)).bit_length() + 1
            if row[1 + j] is not None:  # the null group: nulls are counted already
                found[j][row[1 + j]] = int(row[-1])
        for c, got in zip(cols, found, strict=True):
            if c.numeric:
                c.bins = [0] * self.bins
                for index, count in got.items():
                    c.bins[min(int(index), self.bins - 1)] += count  # max sits on the last edge
            else:
                c.counts, c.complete = {str(k): v for k, v in got.items()}, True
                c.distinct = len(got)
                c.min, c.max = (min(got), max(got)) if got else (None, None)

    def _column_profile(self, c: _Col) -> ColumnProfile:
        n = c.finite
        hist = None
        if c.numeric and n and c.edges is not None and c.bins is not None:
            lo, hi = min(c.edges[0], float(c.min)), max(c.edges[-1], float(c.max))
            hist = Histogram(edges=(lo, *c.edges[1:-1], hi), counts=tuple(c.bins))
        top: tuple[tuple[str, int], ...] = ()
        if c.counts:
            ranked = sorted(
                ((v, k) for v, k in c.counts.items() if k), key=lambda vk: (-vk[1], vk[0])
            )
            complete = c.other == 0
            if complete and c.type == "string":
                c.distinct = len(ranked)  # every value was counted: exact
            keep = len(ranked) if complete and len(ranked) <= DOMAIN_LIMIT else self.top_k
            top = tuple(ranked[:keep])
        return ColumnProfile(
            name=c.name,
            type=c.type,
            count=self.row_count,
            nulls=self.row_count - (n + c.infinite if c.numeric else c.non_null),
            infinite=c.infinite,
            distinct=c.distinct,
            min=c.min,
            max=c.max,
            mean=c.mean if c.numeric and n else None,
            std=math.sqrt(c.m2 / (n - 1)) if c.numeric and n > 1 else None,
            quantiles=c.quantiles if c.numeric and n else {},
            histogram=hist,
            top_k=top,
        )


def _edge_histogram(c: _Col, edges: tuple[float, ...]) -> str:
    """Counts on given edges with the outer bins open, as an ungrouped aggregate."""
    inner = edges[1:-1]
    if not inner:
        return f"count({c.x})"
    # histogram(v, bounds) counts bounds[j-1] < v <= bounds[j]; on -x with the edges
    # mirrored, bins close on the left like numpy's: edges[j] <= x < edges[j+1]
    bounds = ", ".join(_sql_float(-e) for e in reversed(inner))
    return f"histogram(-{c.x}, [{bounds}])"


def _read_edge_histogram(edges: tuple[float, ...], found: Any) -> list[int]:
    inner = edges[1:-1]
    if not inner:
        return [int(found or 0)]
    index = {-e: j for j, e in enumerate(inner, start=1)}  # the overflow key is bin 0
    bins = [0] * (len(inner) + 1)
    for key, count in (found or {}).items():
        bins[index.get(key, 0)] += int(count)
    return bins


def _estimate_csv_rows(paths: list[str]) -> int | None:
    """Rows of local CSV files from their size and the length of their first lines."""
    if any("://" in p for p in paths):
        return None
    with open(paths[0], "rb") as f:
        head = f.read(1 << 16)
    lines = max(head.count(b"\n"), 1)
    return max(1, round(sum(os.path.getsize(p) for p in paths) * lines / max(len(head), 1)))


def _equal_bins(lo: float, hi: float, bins: int) -> tuple[float, ...]:
    if lo == hi:  # a constant: centre it in bins of unit scale so that any change shows
        half = 0.5 * max(1.0, abs(lo))
        lo, hi = lo - half, hi + half
    return _uniform_edges(lo, hi, bins)


def _quantiles(values: Sequence[float] | None) -> dict[str, float]:
    return {k: float(v) for k, v in zip(QUANTILES, values or (), strict=False)}


def _iso(value: str | None) -> str | None:
    """DuckDB's text of a timestamp or date as ISO 8601; naive timestamps are UTC."""
    if value is None or len(value) <= 10:
        return value
    try:
        t = datetime.fromisoformat(value)
    except ValueError:  # e.g. nanoseconds: keep DuckDB's text, which still sorts
        return value
    return (t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)).isoformat()
