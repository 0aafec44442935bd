"""Validation: each anomaly kind, drift on reference bins, thresholds, the HTML report."""

from __future__ import annotations

import dataclasses
import json
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftline.data import _stats_sql as stats_sql
from driftline.data.profile import TableProfile, profile_table
from driftline.data.report import render_html
from driftline.data.schema import Schema, infer_schema
from driftline.data.validation import ValidationReport, validate

CITIES = ["oslo", "lima", "pune", "kyiv"]


def batch(n: int = 4000, seed: int = 0, shift: float = 0.0, cities=None) -> pa.Table:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "x": rng.normal(10.0 + shift * 2.0, 2.0, n),  # shift is in standard deviations
            "k": rng.integers(0, 50, n),
            "city": rng.choice(cities or CITIES, n, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": rng.random(n) < 0.3,
        }
    )


@pytest.fixture(scope="module")
def reference() -> TableProfile:
    return profile_table(batch(20_000, seed=100))


@pytest.fixture(scope="module")
def schema(reference: TableProfile) -> Schema:
    return infer_schema(reference)


def with_column(schema: Schema, name: str, **changes: object) -> Schema:
    cols = tuple(dataclasses.replace(c, **changes) if c.name == name else c for c in schema.columns)
    return dataclasses.replace(schema, columns=cols)


def only(report: ValidationReport, kind: str):  # type: ignore[no-untyped-def]
    found = [a for a in report.anomalies if a.kind == kind]
    assert len(found) == 1, report.anomalies
    return found[0]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_batch_like_the_reference_passes(
    schema: Schema, reference: TableProfile, seed: int
) -> None:
    report = validate(batch(2000, seed=seed), schema=schema, reference=reference)
    assert report.anomalies == (), report.anomalies
    assert report.ok
    assert set(report.drift) == {"x", "k", "city", "flag"}
    assert max(report.drift.values()) < 0.08
    assert report.rows == 2000
    assert report.profile.rows == 2000


def test_a_shift_of_one_standard_deviation_is_drift(
    schema: Schema, reference: TableProfile
) -> None:
    report = validate(batch(2000, seed=7, shift=1.0), schema=schema, reference=reference)
    drift = only(report, "drift")
    assert not report.ok
    assert drift.column == "x"
    assert drift.severity == "error"
    assert drift.measured == report.drift["x"]
    assert drift.measured > 0.3
    assert drift.threshold == 0.1
    # the batch is counted on the reference's bins, outer bins stretched to its range
    ref_edges = reference.columns["x"].histogram.edges  # type: ignore[union-attr]
    new = report.profile.columns["x"].histogram
    assert new is not None
    assert new.edges[1:-1] == ref_edges[1:-1]
    assert new.total == 2000


def test_categorical_drift(schema: Schema, reference: TableProfile) -> None:
    rng = np.random.default_rng(9)
    table = batch(3000, seed=9).set_column(
        2, "city", pa.array(rng.choice(CITIES, 3000, p=[0.1, 0.2, 0.3, 0.4]))
    )
    report = validate(table, schema=schema, reference=reference)
    drift = only(report, "drift")
    assert drift.column == "city"
    assert drift.measured == pytest.approx(0.3, abs=0.03)
    assert drift.threshold == 0.2
    assert any("oslo" in e for e in drift.examples)


def test_drift_thresholds_come_from_the_schema(schema: Schema, reference: TableProfile) -> None:
    strict = with_column(schema, "k", drift_threshold=0.001)  # the column's own wins
    report = validate(batch(2000, seed=1), schema=strict, reference=reference)
    drift = only(report, "drift")
    assert drift.column == "k"
    assert drift.threshold == 0.001
    assert drift.measured > 0.001
    loose = dataclasses.replace(schema, numeric_drift_threshold=0.9)
    shifted = batch(2000, seed=7, shift=1.0)
    assert validate(shifted, schema=loose, reference=reference).ok
    # the report never loosens a threshold: what the schema says is what was applied
    report = validate(shifted, schema=schema, reference=reference)
    assert only(report, "drift").threshold == schema.numeric_drift_threshold


def test_small_batches_warn_instead_of_failing_on_noise(
    schema: Schema, reference: TableProfile
) -> None:
    report = validate(batch(60, seed=11, shift=0.35), schema=schema, reference=reference)
    drift = [a for a in report.anomalies if a.kind == "drift"]
    assert drift
    assert all(a.severity == "warning" for a in drift)
    assert report.ok
    assert "sampling noise" in drift[0].message
    report = validate(batch(60, seed=11, shift=5.0), schema=schema, reference=reference)
    x = next(a for a in report.anomalies if a.column == "x")
    assert not report.ok
    assert x.kind == "drift"
    assert x.severity == "error"


def test_missing_unexpected_and_mistyped_columns(schema: Schema) -> None:
    table = batch(500).drop(["flag"]).append_column("extra", pa.array(np.arange(500)))
    table = table.set_column(1, "k", pa.array([str(v) for v in range(500)]))
    report = validate(table, schema=schema)
    missing = only(report, "missing_column")
    assert (missing.column, missing.severity) == ("flag", "error")
    unexpected = only(report, "unexpected_column")
    assert (unexpected.column, unexpected.severity, unexpected.measured) == (
        "extra",
        "error",
        "int",
    )
    mismatch = only(report, "type_mismatch")
    assert (mismatch.column, mismatch.measured, mismatch.threshold) == ("k", "string", "int")
    relaxed = dataclasses.replace(
        with_column(schema, "flag", required=False), allow_extra_columns=True
    )
    report = validate(batch(500).drop(["flag"]), schema=relaxed)
    assert report.ok
    assert only(report, "missing_column").severity == "warning"


def test_ints_are_accepted_where_floats_are_expected(
    schema: Schema, reference: TableProfile
) -> None:
    table = batch(1000, seed=3)
    table = table.set_column(0, "x", pa.array(np.round(table.column("x").to_numpy()).astype(int)))
    report = validate(table, schema=schema, reference=reference)
    assert not [a for a in report.anomalies if a.kind == "type_mismatch"]


def test_null_fraction(schema: Schema) -> None:
    table = batch(1000)
    x = pa.array(table.column("x").to_numpy(), mask=np.arange(1000) % 10 == 0)
    report = validate(table.set_column(0, "x", x), schema=schema)
    nulls = only(report, "null_fraction")
    assert (nulls.column, nulls.measured, nulls.threshold) == ("x", 0.1, 0.0)
    budget = with_column(schema, "x", max_null_fraction=0.15)
    assert validate(table.set_column(0, "x", x), schema=budget).ok
    tight = with_column(schema, "x", max_null_fraction=0.05)
    assert (
        only(validate(table.set_column(0, "x", x), schema=tight), "null_fraction").threshold == 0.05
    )


def test_out_of_domain(schema: Schema, reference: TableProfile) -> None:
    table = batch(1000, seed=4)
    city = table.column("city").to_pylist()
    city[:30] = ["rome"] * 20 + ["", "", "", "oslo "] + ["nice"] * 6
    report = validate(
        table.set_column(2, "city", pa.array(city)), schema=schema, reference=reference
    )
    bad = only(report, "out_of_domain")
    assert bad.column == "city"
    assert bad.severity == "error"
    assert bad.measured == pytest.approx(30 / 1000)
    assert bad.threshold == 0.0
    assert bad.examples[0] == "rome"
    assert {"", "nice", "oslo "} <= set(bad.examples)
    tolerant = dataclasses.replace(schema, min_domain_share=0.05)
    report = validate(table.set_column(2, "city", pa.array(city)), schema=tolerant)
    assert report.ok
    assert only(report, "out_of_domain").severity == "warning"


def test_bool_domain(schema: Schema) -> None:
    only_true = with_column(schema, "flag", domain=("true",))
    bad = only(validate(batch(1000), schema=only_true), "out_of_domain")
    assert bad.column == "flag"
    assert bad.examples == ("false",)


def test_out_of_range_with_examples(schema: Schema) -> None:
    ranged = with_column(with_column(schema, "x", min=0.0, max=16.0), "k", max=45)
    table = batch(2000, seed=5)
    x = table.column("x").to_numpy().copy()
    x[:3] = [-7.0, -1.5, float("inf")]
    report = validate(table.set_column(0, "x", pa.array(x)), schema=ranged)
    found = {(a.column, a.threshold): a for a in report.anomalies if a.kind == "out_of_range"}
    low = found[("x", 0.0)]
    assert low.measured == -7.0
    assert low.examples[:2] == ("-7", "-1.5")
    assert low.severity == "error"
    high = found[("x", 16.0)]
    assert high.measured == float("inf")
    assert "inf" in high.examples
    k = found[("k", 45)]
    truth = int(np.sum(table.column("k").to_numpy() > 45))
    assert f"has {truth} values above" in k.message
    assert k.measured == 49.0


def test_an_empty_batch(schema: Schema) -> None:
    report = validate(batch(0), schema=schema)
    assert not report.ok
    assert only(report, "empty").column is None


def test_files_work_and_the_report_serializes(
    tmp_path, schema: Schema, reference: TableProfile
) -> None:
    pq.write_table(batch(1500, seed=8, shift=1.0), tmp_path / "b.parquet")
    report = validate([str(tmp_path / "b.parquet")], schema=schema, reference=reference)
    text = json.dumps(report.to_dict(), allow_nan=False)
    back = ValidationReport.from_dict(json.loads(text))
    assert back.anomalies == report.anomalies
    assert back.drift == report.drift
    assert back.profile == report.profile
    assert back.ok is report.ok is False


def test_checks_run_in_one_aggregate_query(
    monkeypatch, schema: Schema, reference: TableProfile
) -> None:
    seen: list[str] = []
    query = stats_sql._Scan.query

    def spy(self, sql: str):  # type: ignore[no-untyped-def]
        seen.append(sql)
        return query(self, sql)

    monkeypatch.setattr(stats_sql._Scan, "query", spy)
    ranged = with_column(schema, "x", min=0.0, max=20.0)
    validate(batch(3000, seed=2), schema=ranged, reference=reference)
    scans = [s for s in seen if " AS c0" in s and "LIMIT" not in s]  # reads of the batch
    assert len(scans) == 1, scans


class _TagBalance(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "input", "link", "rect", "line"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:  # type: ignore[no-untyped-def]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs) -> None:  # type: ignore[no-untyped-def]
        pass

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def test_render_html(schema: Schema, reference: TableProfile) -> None:
    table = batch(2000, seed=6, shift=1.0)
    city = table.column("city").to_pylist()
    city[0] = "<script>alert(1)</script>"
    report = validate(
        table.set_column(2, "city", pa.array(city)), schema=schema, reference=reference
    )
    html = render_html(report, title="nightly <batch>")
    parser = _TagBalance()
    parser.feed(html)
    assert (parser.errors, parser.stack) == ([], [])
    assert html.startswith("<!DOCTYPE html>")
    assert "FAILED" in html
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "nightly &lt;batch&gt;" in html
    assert html.count("<svg") >= 4  # one chart per column
    for a in report.anomalies:
        assert a.kind in html
    assert "drifted from the reference" in html
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    clean = render_html(validate(batch(1000, seed=1), schema=schema, reference=reference))
    assert "every check passed" in clean
    assert "OK" in clean
