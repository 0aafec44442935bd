"""Columns that break naive drift code: never a crash, never a NaN, always a named status."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

import driftline as dl
from driftline.monitoring import ColumnDrift, DriftReport
from driftline.monitoring._frames import open_source
from driftline.monitoring.reference import fit


def finite_everywhere(rep: DriftReport) -> None:
    json.dumps(rep.to_dict(), allow_nan=False)  # raises on any NaN or infinity
    for c in rep.columns.values():
        assert c.verdict in ("drift", "no_drift", "not_scored")
        for v in (c.score, c.p_value, c.p_adjusted, *c.scores.values()):
            assert v is None or math.isfinite(v), c


def one(ref: object, cur: object, **options: object) -> ColumnDrift:
    rep = dl.monitoring.drift(
        reference=pa.table({"x": ref}), current=pa.table({"x": cur}), **options
    )
    finite_everywhere(rep)
    return rep.columns["x"]


def test_constant_columns() -> None:
    same = one(np.full(1_000, 3.0), np.full(500, 3.0))
    assert (same.status, same.verdict, same.score) == ("ok", "no_drift", 0.0)
    assert "constant_reference" in same.anomalies
    moved = one(np.full(1_000, 3.0), np.full(500, 4.0))
    assert moved.verdict == "drift"
    assert moved.scores["wasserstein"] == pytest.approx(1 / 3)  # normalized by |3|
    spread = one(np.zeros(1_000), np.r_[np.zeros(490), np.ones(10)])
    assert spread.verdict == "no_drift"  # 2% off a constant is small


def test_constant_reference_gets_three_bins_around_its_value() -> None:
    ref = fit(open_source(pa.table({"x": np.full(100, 7.0)}))).columns["x"]
    assert ref.edges == (np.nextafter(7.0, -np.inf), 7.0)
    assert ref.proportions == (0.0, 1.0, 0.0)


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).poisson(0.3, 5_000),  # mostly zeros, tied
        np.where(np.random.default_rng(2).random(5_000) < 0.9, 0.0, 1.5),  # two values
        np.random.default_rng(3).integers(0, 4, 5_000),
        np.where(np.random.default_rng(4).random(5_000) < 0.8, 0.0, np.arange(5_000.0)),
    ],
    ids=["poisson", "two-values", "four-integers", "zero-inflated"],
)
def test_tied_and_zero_inflated_columns_bin_without_empty_bins(values: np.ndarray) -> None:
    ref = fit(open_source(pa.table({"x": values}))).columns["x"]
    assert len(set(ref.edges)) == len(ref.edges)
    assert all(p > 0 for p in ref.proportions)  # no empty bin to explode PSI
    col = one(values, np.random.default_rng(9).permutation(values)[:2_000])
    assert col.status == "ok"
    assert col.verdict == "no_drift"
    assert col.scores["psi"] < 0.05


def test_all_null_columns() -> None:
    cur = one(np.random.default_rng(1).normal(size=500), pa.array([None] * 300, pa.float64()))
    assert (cur.status, cur.verdict, cur.score) == ("insufficient_data", "not_scored", None)
    assert "all_null" in cur.anomalies
    ref = one(pa.array([None] * 300, pa.float64()), np.ones(300))
    assert ref.status == "empty_reference"
    text = one(pa.array(["a", "b"] * 150), pa.array([None] * 300, pa.string()))
    assert text.status == "ok"
    assert text.verdict == "drift"
    assert "all_null" in text.anomalies
    nothing = one(pa.array([None] * 300), pa.array([None] * 300))
    assert nothing.status == "ok"
    assert nothing.verdict == "no_drift"


def test_nan_and_infinity() -> None:
    r = np.random.default_rng(5)
    ref = np.r_[r.normal(size=2_000), [np.inf, -np.inf, np.nan]]
    cur = np.r_[r.normal(size=1_000), [np.inf] * 5, [np.nan] * 20]
    col = one(ref, cur)
    assert col.status == "ok"
    assert col.verdict == "no_drift"
    assert "infinite_values" in col.anomalies
    assert col.n_cur == 1_000
    only_inf = one(ref, np.full(500, np.inf))
    assert only_inf.status == "insufficient_data"


@pytest.mark.slow
def test_a_million_distinct_strings() -> None:
    ids = pa.array([f"id-{i}" for i in range(1_000_000)])
    ref = fit(open_source(pa.table({"x": ids}))).columns["x"]
    assert len(ref.categories) == 50
    assert ref.other_share > 0.99
    col = one(ids, pa.array([f"new-{i}" for i in range(200_000)]))
    assert col.status == "ok"
    assert "high_cardinality" in col.anomalies
    assert col.verdict == "no_drift"  # ids are all "__other__" on both sides


def test_new_categories_are_named() -> None:
    col = one(pa.array(["a", "b"] * 500), pa.array(["a", "b", "c", "d"] * 100))
    assert "new_categories" in col.anomalies
    assert col.verdict == "drift"


def test_timestamps_are_unsupported_not_a_crash() -> None:
    t = pa.array(np.arange(200).astype("datetime64[s]"))
    col = one(t, t)
    assert (col.status, col.kind) == ("unsupported_type", "unsupported")


def test_empty_current_table() -> None:
    col = one(np.arange(500.0), pa.array([], pa.float64()))
    assert col.status == "insufficient_data"
    assert col.n_cur == 0
