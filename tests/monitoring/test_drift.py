"""Drift on two tables: the records, the statistics against scipy, thresholds, inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from drift_frames import CATEGORICAL, NUMERIC, mixed
from scipy import stats
from scipy.spatial.distance import jensenshannon

import driftline as dl
from driftline.errors import InvalidArgumentError
from driftline.monitoring import ColumnThresholds, DriftReport, DriftThresholds
from driftline.monitoring._frames import open_source
from driftline.monitoring.drift import (
    KS_ASYMPTOTIC_FROM,
    _chi2,
    benjamini_hochberg,
    jensen_shannon,
    ks_p_value,
)
from driftline.monitoring.reference import fit


@pytest.fixture(scope="module")
def reference() -> dl.monitoring.Reference:
    return fit(open_source(mixed(20_000, seed=1)))


def test_a_report_has_every_field_the_issue_names(reference: dl.monitoring.Reference) -> None:
    rep = dl.monitoring.drift(reference=reference, current=mixed(2_000, seed=2, shift=1.0))
    assert rep.drifted is False  # one drifted column of 20 is not dataset drift
    age = rep.columns["n00"]
    assert (age.method, age.threshold, age.verdict, age.status) == (
        "wasserstein",
        0.1,
        "drift",
        "ok",
    )
    assert age.score is not None
    assert age.score > 0.9
    assert age.p_value is not None
    assert age.p_adjusted is not None
    assert age.p_adjusted < 1e-10
    assert (age.n_ref, age.n_cur) == (20_000, 2_000)
    assert rep.drifted_columns == ["n00"]
    assert rep.columns["c_tail"].method == "jensen_shannon"
    assert set(rep.columns) == set(NUMERIC + CATEGORICAL)


def test_dataset_drift_is_the_share_of_drifted_columns(reference: dl.monitoring.Reference) -> None:
    table = mixed(2_000, seed=3)
    for name in NUMERIC[:10]:
        i = table.column_names.index(name)
        shifted = pa.array(table.column(name).to_numpy() * 3 + 5)
        table = table.set_column(i, name, shifted)
    rep = dl.monitoring.drift(reference=reference, current=table)
    assert rep.drift_share == pytest.approx(10 / 20)
    assert rep.drifted
    strict = dl.monitoring.drift(
        reference=reference, current=table, thresholds={"drift_share": 0.6}
    )
    assert not strict.drifted


def test_reports_round_trip_through_json(reference: dl.monitoring.Reference) -> None:
    rep = dl.monitoring.drift(reference=reference, current=mixed(500, seed=4))
    text = json.dumps(rep.to_dict(), allow_nan=False)
    assert DriftReport.from_dict(json.loads(text)) == rep
    again = dl.monitoring.Reference.from_dict(json.loads(json.dumps(reference.to_dict())))
    assert again == reference


def test_wasserstein_and_ks_match_scipy_on_the_raw_data() -> None:
    r = np.random.default_rng(5)
    ref_x, cur_x = r.normal(0, 2, 50_000), r.normal(0.3, 2.5, 20_000)
    ref = fit(open_source(pa.table({"x": ref_x})))
    col = dl.monitoring.drift(reference=ref, current=pa.table({"x": cur_x})).columns["x"]
    w1 = stats.wasserstein_distance(ref_x, cur_x) / np.std(ref_x, ddof=1)
    assert col.scores["wasserstein"] == pytest.approx(w1, rel=0.03)  # trapezoids in the tails
    ks = stats.ks_2samp(ref_x, cur_x).statistic
    assert col.scores["ks"] == pytest.approx(ks, abs=0.003)
    assert col.scores["ks"] <= ks + 1e-12  # sketch points: never above the exact statistic


def test_wasserstein_is_exact_on_tied_integers() -> None:
    r = np.random.default_rng(6)
    ref_x, cur_x = r.poisson(2, 30_000), r.poisson(2.4, 10_000)
    ref = fit(open_source(pa.table({"x": ref_x})))
    col = dl.monitoring.drift(reference=ref, current=pa.table({"x": cur_x})).columns["x"]
    exact = stats.wasserstein_distance(ref_x, cur_x) / np.std(ref_x, ddof=1)
    assert col.scores["wasserstein"] == pytest.approx(exact, rel=1e-9)
    assert col.scores["ks"] == pytest.approx(stats.ks_2samp(ref_x, cur_x).statistic, abs=1e-9)


def test_jensen_shannon_and_chi_square_match_scipy() -> None:
    p, q = np.array([0.5, 0.3, 0.2, 0.0]), np.array([0.4, 0.3, 0.2, 0.1])
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2))
    ref_counts, cur_counts = np.array([500, 300, 200]), np.array([90, 60, 50])
    stat, p_value = _chi2(ref_counts, cur_counts)
    expected = stats.chi2_contingency(np.array([ref_counts, cur_counts]), correction=False)
    assert (stat, p_value) == pytest.approx((expected.statistic, expected.pvalue))


@pytest.mark.parametrize("en", [20.0, 900.5, 40_000.0, KS_ASYMPTOTIC_FROM, 5e6])
def test_the_ks_p_value_is_the_kolmogorov_distribution(en: float) -> None:
    # Exact below the cut-over; from it on, the corrected limit stays within 5e-4.
    tolerance = 1e-12 if en < KS_ASYMPTOTIC_FROM else 5e-4
    for y in np.linspace(0.05, 2.5, 12):  # scipy's exact distribution is slow at large n
        d = float(y / math.sqrt(en))
        exact = float(stats.kstwo.sf(d, round(en)))
        assert ks_p_value(d, en) == pytest.approx(exact, abs=tolerance)
    assert ks_p_value(0.0, en) == 1.0
    assert ks_p_value(1.0, en) == pytest.approx(0.0, abs=1e-12)


def test_benjamini_hochberg_matches_scipy() -> None:
    p = [0.01, 0.04, 0.03, 0.5, 0.001, 0.2]
    assert benjamini_hochberg(p) == pytest.approx(list(stats.false_discovery_control(p)))


def test_pandas_arrow_and_parquet_inputs_agree(tmp_path: Path) -> None:
    ref_t, cur_t = mixed(3_000, seed=7), mixed(1_000, seed=8, shift=0.5)
    pq.write_table(ref_t, tmp_path / "ref.parquet")
    pq.write_table(cur_t, tmp_path / "cur.parquet")
    cur_t.to_pandas().to_csv(tmp_path / "cur.csv", index=False)
    arrow = dl.monitoring.drift(reference=ref_t, current=cur_t)
    pandas = dl.monitoring.drift(reference=ref_t.to_pandas(), current=cur_t.to_pandas())
    files = dl.monitoring.drift(
        reference=str(tmp_path / "ref.parquet"), current=tmp_path / "cur.parquet"
    )
    for rep in (pandas, files):
        for name, col in arrow.columns.items():
            assert rep.columns[name].scores == pytest.approx(col.scores), name
            assert rep.columns[name].verdict == col.verdict
    csv = dl.monitoring.drift(reference=ref_t, current=str(tmp_path / "cur.csv"))
    assert csv.columns["n00"].scores == pytest.approx(arrow.columns["n00"].scores)


def test_thresholds_apply_per_column_and_are_never_loosened(
    reference: dl.monitoring.Reference,
) -> None:
    current = mixed(20_000, seed=9, shift=0.05)
    default = dl.monitoring.drift(reference=reference, current=current)
    assert default.columns["n00"].verdict == "no_drift"  # 0.05 std is below 0.1
    tight = DriftThresholds(columns={"n00": ColumnThresholds(wasserstein=0.02)})
    rep = dl.monitoring.drift(reference=reference, current=current, thresholds=tight)
    assert rep.columns["n00"].verdict == "drift"
    assert rep.columns["n00"].threshold == 0.02
    assert rep.columns["n01"].threshold == 0.1
    psi = dl.monitoring.drift(
        reference=reference,
        current=current,
        thresholds={"columns": {"n00": {"method": "psi"}}},
    )
    assert psi.columns["n00"].method == "psi"
    assert psi.columns["n00"].score == psi.columns["n00"].scores["psi"]


@pytest.mark.parametrize(
    "bad",
    [
        {"psi": 0},
        {"alpha": 1.5},
        {"min_rows": 0},
        {"wasserstein": float("nan")},
        {"bogus": 1},
        {"columns": {"n00": {"method": "magic"}}},
        {"columns": {"c_tail": {"method": "wasserstein"}}},
    ],
)
def test_bad_thresholds_are_invalid_arguments(
    reference: dl.monitoring.Reference, bad: dict[str, object]
) -> None:
    with pytest.raises(InvalidArgumentError):
        dl.monitoring.drift(reference=reference, current=mixed(200, seed=1), thresholds=bad)


def test_too_few_rows_is_a_status_not_a_verdict(reference: dl.monitoring.Reference) -> None:
    rep = dl.monitoring.drift(reference=reference, current=mixed(99, seed=10, shift=5.0))
    assert {c.status for c in rep.columns.values()} == {"insufficient_data"}
    assert {c.verdict for c in rep.columns.values()} == {"not_scored"}
    assert all(c.score is None for c in rep.columns.values())
    assert not rep.drifted
    assert rep.drift_share == 0.0
    ok = dl.monitoring.drift(
        reference=reference, current=mixed(99, seed=10), thresholds={"min_rows": 50}
    )
    assert ok.columns["n00"].status == "ok"


def test_missing_and_mistyped_columns_get_a_status(reference: dl.monitoring.Reference) -> None:
    current = mixed(1_000, seed=11).drop_columns(["n01"])
    current = current.set_column(current.column_names.index("n02"), "n02", pa.array(["x"] * 1_000))
    current = current.set_column(
        current.column_names.index("c_five"), "c_five", pa.array(np.arange(1_000.0))
    )
    rep = dl.monitoring.drift(reference=reference, current=current)
    assert rep.columns["n01"].status == "missing_column"
    assert rep.columns["n02"].status == "type_mismatch"
    assert rep.columns["c_five"].status == "type_mismatch"
    assert rep.columns["n00"].status == "ok"


def test_unknown_columns_and_unreadable_inputs_are_invalid_arguments(
    reference: dl.monitoring.Reference,
) -> None:
    with pytest.raises(InvalidArgumentError, match="not in the reference"):
        dl.monitoring.drift(reference=reference, current=mixed(200, seed=1), columns=["nope"])
    with pytest.raises(InvalidArgumentError, match="Cannot read a list"):
        dl.monitoring.drift(reference=reference, current=[1, 2, 3])
    with pytest.raises(InvalidArgumentError, match="not a table"):
        dl.monitoring.drift(reference=reference, current=__file__)


def test_columns_limits_the_comparison(reference: dl.monitoring.Reference) -> None:
    rep = dl.monitoring.drift(
        reference=reference, current=mixed(500, seed=12), columns=["n00", "c_bool"]
    )
    assert list(rep.columns) == ["n00", "c_bool"]


def test_pandas_booleans_and_object_strings_compare_with_arrow_ones() -> None:
    df = pd.DataFrame({"flag": [True, False] * 500, "city": ["a", "b", None, "c"] * 250})
    rep = dl.monitoring.drift(reference=pa.Table.from_pandas(df), current=df)
    for col in rep.columns.values():
        assert col.status == "ok"
        assert col.score == 0.0
        assert math.isclose(col.p_value or 0, 1.0)
