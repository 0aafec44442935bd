"""Table profiles: statistics against numpy/pandas, input kinds, merging, JSON round trips."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from driftline.data import _stats_sql as stats_sql
from driftline.data.profile import (
    ColumnProfile,
    Histogram,
    TableProfile,
    is_tabular,
    profile_table,
)
from driftline.errors import InvalidArgumentError


def make_table(n: int = 4000, seed: int = 0, loc: float = 10.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc, 2.0, n)
    x[::40] = np.nan  # NaN is a missing value, like pandas'
    y = pa.array(rng.exponential(3.0, n), mask=rng.random(n) < 0.05)
    return pa.table(
        {
            "x": x,
            "y": y,
            "k": rng.integers(0, 101, n),  # edges on whole numbers: 0, 5, 10, ...
            "city": rng.choice(["oslo", "lima", "pune", "kyiv"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": rng.random(n) < 0.3,
            "when": pa.array(
                (np.int64(1_700_000_000_000_000) + rng.integers(0, 10**12, n)).astype(
                    "datetime64[us]"
                )
            ),
        }
    )


def values(table: pa.Table, name: str) -> np.ndarray:
    v = table.column(name).to_numpy(zero_copy_only=False).astype(float)
    return v[np.isfinite(v)]


def test_numeric_stats_match_numpy() -> None:
    table = make_table()
    p = profile_table(table)
    assert p.rows == table.num_rows
    for name in ("x", "y", "k"):
        col, v = p.columns[name], values(table, name)
        assert col.count == table.num_rows
        assert col.nulls == table.num_rows - len(v)
        assert col.min == pytest.approx(v.min())
        assert col.max == pytest.approx(v.max())
        assert col.mean == pytest.approx(v.mean(), rel=1e-12)
        assert col.std == pytest.approx(v.std(ddof=1), rel=1e-9)
        # fewer rows than the sample size: quantiles are exact (linear interpolation)
        for key, q in stats_sql.QUANTILES.items():
            assert col.quantiles[key] == pytest.approx(np.quantile(v, q), rel=1e-9), key
        counts, edges = np.histogram(v, bins=20)
        assert col.histogram is not None
        assert col.histogram.counts == tuple(counts)
        assert col.histogram.edges == pytest.approx(tuple(edges))
        assert col.histogram.total == len(v) == col.non_null
    assert p.columns["x"].nulls == 100  # the NaNs
    assert isinstance(p.columns["k"].min, int)
    assert p.columns["k"].type == "int"


def test_sampled_quantiles_of_a_large_column_are_close() -> None:
    n = 400_000  # above the sample size: quantiles come from a sample of ~131k rows
    v = np.sort(np.random.default_rng(3).lognormal(0.0, 1.0, n))  # sorted and skewed
    col = profile_table(pa.table({"v": v})).columns["v"]
    for key, q in stats_sql.QUANTILES.items():
        rank = np.searchsorted(v, col.quantiles[key]) / n
        assert abs(rank - q) < 0.01, (key, rank)
    assert col.histogram is not None
    assert col.histogram.total == n


def test_infinities_are_counted_apart_and_nan_is_null() -> None:
    p = profile_table(pa.table({"v": [1.0, float("inf"), -float("inf"), float("nan"), None, 3.0]}))
    col = p.columns["v"]
    assert (col.count, col.nulls, col.infinite, col.non_null) == (6, 2, 2, 4)
    assert (col.min, col.max, col.mean) == (1.0, 3.0, 2.0)
    assert col.histogram is not None
    assert col.histogram.total == 2


def test_categorical_top_k_counts_and_distinct() -> None:
    table = make_table()
    p = profile_table(table)
    city = p.columns["city"]
    expected = pd.Series(table.column("city").to_pylist()).value_counts()
    assert dict(city.top_k) == expected.to_dict()
    assert [n for _, n in city.top_k] == sorted(expected.to_list(), reverse=True)
    assert city.distinct == 4
    assert city.top_k_complete
    assert (city.min, city.max) == ("kyiv", "pune")
    flag = p.columns["flag"]
    trues = int(np.sum(table.column("flag").to_numpy(zero_copy_only=False)))
    assert dict(flag.top_k) == {"true": trues, "false": table.num_rows - trues}
    assert flag.mean is None
    assert flag.histogram is None
    when = p.columns["when"]
    assert when.type == "timestamp"
    assert when.min is not None
    assert when.min.endswith("+00:00")


def test_top_k_keeps_all_of_up_to_100_values_and_k_of_more() -> None:
    rng = np.random.default_rng(1)
    table = pa.table(
        {
            "eighty": [f"v{i}" for i in rng.integers(0, 80, 20_000)],
            "many": [f"w{i}" for i in rng.zipf(1.5, 20_000) % 5000],
        }
    )
    p = profile_table(table, top_k=10)
    assert len(p.columns["eighty"].top_k) == 80
    assert p.columns["eighty"].top_k_complete
    many = p.columns["many"]
    assert len(many.top_k) == 10
    assert not many.top_k_complete
    truth = pd.Series(table.column("many").to_pylist()).value_counts()
    assert dict(many.top_k) == truth.head(10).to_dict()


def test_parquet_csv_arrow_and_pandas_inputs_agree(tmp_path) -> None:
    table = make_table(n=3000)
    pq.write_table(table, tmp_path / "t.parquet")
    pacsv.write_csv(table, tmp_path / "t.csv")
    profiles = {
        "arrow": profile_table(table),
        "pandas": profile_table(table.to_pandas()),
        "parquet": profile_table([str(tmp_path / "t.parquet")]),
        "csv": profile_table([str(tmp_path / "t.csv")]),
    }
    base = profiles["arrow"]
    for kind, p in profiles.items():
        assert list(p.columns) == list(base.columns), kind
        for name, col in base.columns.items():
            other = p.columns[name]
            assert (other.count, other.nulls, other.non_null) == (
                col.count,
                col.nulls,
                col.non_null,
            )
            assert other.top_k == col.top_k, (kind, name)
            if col.mean is not None:
                assert other.mean == pytest.approx(col.mean, rel=1e-12), (kind, name)
                assert other.std == pytest.approx(col.std, rel=1e-9), (kind, name)
                assert other.min == pytest.approx(col.min)
                assert other.max == pytest.approx(col.max)
                assert other.histogram is not None
                assert col.histogram is not None
                assert other.histogram.counts == col.histogram.counts, (kind, name)


def test_a_list_of_files_is_one_table(tmp_path) -> None:
    a, b = make_table(n=1000, seed=1), make_table(n=1500, seed=2)
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.pq")
    p = profile_table([tmp_path / "a.parquet", str(tmp_path / "b.pq")])
    whole = profile_table(pa.concat_tables([a, b]))
    assert p.rows == 2500
    assert p.columns["x"].mean == pytest.approx(whole.columns["x"].mean, rel=1e-12)
    assert p.columns["city"].top_k == whole.columns["city"].top_k


def test_merge_equals_profile_of_the_whole() -> None:
    a, b = make_table(n=3000, seed=1), make_table(n=2000, seed=2, loc=12.0)
    merged = profile_table(a).merge(profile_table(b))
    whole = profile_table(pa.concat_tables([a, b]))
    assert merged.rows == whole.rows == 5000
    for name, w in whole.columns.items():
        m = merged.columns[name]
        assert (m.count, m.nulls, m.infinite, m.type) == (w.count, w.nulls, w.infinite, w.type)
        assert (m.min, m.max) == (w.min, w.max), name
        if w.mean is not None:
            assert m.mean == pytest.approx(w.mean, rel=1e-12)
            assert m.std == pytest.approx(w.std, rel=1e-9)
            assert m.histogram is not None
            assert w.histogram is not None
            assert m.histogram.total == w.histogram.total
            assert m.histogram.edges[0] == w.histogram.edges[0]
            assert m.histogram.edges[-1] == w.histogram.edges[-1]
            spread = w.quantiles["p95"] - w.quantiles["p05"]
            for key, q in w.quantiles.items():
                assert m.quantiles[key] == pytest.approx(q, abs=0.03 * spread), (name, key)
    assert merged.columns["city"].top_k == whole.columns["city"].top_k
    assert merged.columns["city"].distinct == 4
    assert merged.columns["flag"].top_k == whole.columns["flag"].top_k


def test_merge_on_equal_inner_edges_adds_counts_exactly() -> None:
    def col(edges: tuple[float, ...], counts: tuple[int, ...]) -> TableProfile:
        c = ColumnProfile(
            name="v", type="float", count=sum(counts), nulls=0, distinct=sum(counts),
            min=edges[0], max=edges[-1], mean=1.0, std=1.0,
            histogram=Histogram(edges=edges, counts=counts),
        )  # fmt: skip
        return TableProfile(rows=sum(counts), columns={"v": c})

    merged = col((0.0, 1.0, 2.0, 3.0), (1, 2, 3)).merge(col((-5.0, 1.0, 2.0, 9.0), (4, 5, 6)))
    assert merged.columns["v"].histogram == Histogram(edges=(-5.0, 1.0, 2.0, 9.0), counts=(5, 7, 9))


def test_merge_rejects_different_columns() -> None:
    a = profile_table(pa.table({"a": [1, 2]}))
    b = profile_table(pa.table({"b": [1, 2]}))
    with pytest.raises(InvalidArgumentError, match="different columns"):
        a.merge(b)


def test_json_round_trip_is_exact() -> None:
    p = profile_table(make_table())
    text = json.dumps(p.to_dict(), allow_nan=False)
    assert TableProfile.from_dict(json.loads(text)) == p


def test_json_round_trip_keeps_nan_and_infinities() -> None:
    inf = float("inf")
    col = ColumnProfile(
        name="v", type="float", count=3, nulls=0, distinct=3, min=-inf, max=inf,
        mean=float("nan"), std=inf, quantiles={"p50": float("nan")},
        histogram=Histogram(edges=(-inf, 0.0, inf), counts=(1, 2)),
    )  # fmt: skip
    text = json.dumps(TableProfile(rows=3, columns={"v": col}).to_dict(), allow_nan=False)
    back = TableProfile.from_dict(json.loads(text)).columns["v"]
    assert (back.min, back.max, back.std) == (-inf, inf, inf)
    assert back.mean is not None
    assert math.isnan(back.mean)
    assert math.isnan(back.quantiles["p50"])
    assert back.histogram == col.histogram
    name = ColumnProfile(
        name="s", type="string", count=1, nulls=0, distinct=1, min="NaN", max="NaN"
    )
    text = json.dumps(TableProfile(rows=1, columns={"s": name}).to_dict())
    assert TableProfile.from_dict(json.loads(text)).columns["s"].min == "NaN"  # stays text


def test_empty_and_all_null_columns() -> None:
    p = profile_table(pa.table({"v": pa.array([], pa.float64()), "s": pa.array([], pa.string())}))
    assert p.rows == 0
    assert p.columns["v"].histogram is None
    assert p.columns["s"].top_k == ()
    p = profile_table(pa.table({"v": pa.array([None, None], pa.float64())}))
    assert (p.columns["v"].nulls, p.columns["v"].mean, p.columns["v"].quantiles) == (2, None, {})


def test_a_constant_column_gets_bins_around_its_value() -> None:
    col = profile_table(pa.table({"v": [5.0] * 10})).columns["v"]
    assert col.histogram is not None
    assert col.histogram.total == 10
    assert col.histogram.edges[0] < 5.0 < col.histogram.edges[-1]
    assert col.std == 0.0


def test_bad_inputs_raise_invalid_argument(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    pq.write_table(pa.table({"a": [1]}), tmp_path / "a.parquet")
    pacsv.write_csv(pa.table({"a": [1]}), tmp_path / "a.csv")
    with pytest.raises(InvalidArgumentError, match="not a tabular file"):
        profile_table([str(tmp_path / "notes.txt")])
    with pytest.raises(InvalidArgumentError, match="No such file"):
        profile_table([str(tmp_path / "missing.parquet")])
    with pytest.raises(InvalidArgumentError, match="mix formats"):
        profile_table([str(tmp_path / "a.parquet"), str(tmp_path / "a.csv")])
    with pytest.raises(InvalidArgumentError, match="No files"):
        profile_table([])
    with pytest.raises(InvalidArgumentError, match="Cannot read a int"):
        profile_table(42)
    with pytest.raises(InvalidArgumentError, match="bins"):
        profile_table(pa.table({"a": [1]}), bins=0)
    with pytest.raises(InvalidArgumentError, match="format"):
        TableProfile.from_dict({"rows": 1})
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidArgumentError, match="Could not read"):
        profile_table([str(tmp_path / "broken.parquet")])


def test_is_tabular() -> None:
    assert is_tabular("a/b.parquet")
    assert is_tabular("x.CSV")
    assert is_tabular("x.tsv")
    assert not is_tabular("x.json")
    assert not is_tabular("parquet")


def test_profile_runs_two_aggregate_queries_not_one_per_column(monkeypatch) -> None:
    seen: list[str] = []
    query = stats_sql._Scan.query

    def spy(self, sql: str):  # type: ignore[no-untyped-def]
        seen.append(sql)
        return query(self, sql)

    monkeypatch.setattr(stats_sql._Scan, "query", spy)
    profile_table(make_table())
    scans = [s for s in seen if " AS c0" in s and "LIMIT" not in s]  # reads of the table
    assert len(scans) == 2, scans  # the ungrouped aggregate and the grouped (bins, values) one
