"""Tabular versions end to end: DataFrame commits, reads, profiles, key diffs, validation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.data import Version
from driftline.data.diff import diff_versions
from driftline.errors import InvalidArgumentError
from driftline.workspace import Workspace


@pytest.fixture
def ws(make_workspace: Callable[..., Workspace]) -> Workspace:
    """A workspace on each backend: SQLite in memory and on file, PostgreSQL."""
    return make_workspace()


try:  # `python -m pytest` from the repository root, as CI runs it
    from tests.conftest import ALL_BACKENDS
except ImportError:  # pragma: no cover - only tests/ on sys.path
    from conftest import ALL_BACKENDS

# Also against a real server process (the HTTP backend).
remote_too = pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)


def customers(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "age": rng.integers(18, 90, n),
            "spend": rng.normal(100, 20, n).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )


@remote_too
def test_dataframe_commit_round_trips_and_is_profiled(ws: Workspace) -> None:
    frame = customers()
    record = ws.data.commit("customers", frame, message="october")
    assert record.tabular
    assert record.file_count == 1
    version = Version(ws.data, record)
    pd.testing.assert_frame_equal(version.to_pandas(), frame)
    assert version.to_arrow(columns=["age"]).column_names == ["age"]
    profile = version.profile
    assert profile.rows == 500
    assert profile.columns["spend"].mean == pytest.approx(frame["spend"].mean())
    assert profile.columns["plan"].type == "string"
    # The same frame again is the same version.
    assert ws.data.commit("customers", frame.copy()).number == 1


@remote_too
def test_folder_of_parquet_and_csv_reads_as_one_table(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    frame = customers(300)
    frame.iloc[:150].to_parquet(folder / "part-0.parquet", index=False)
    frame.iloc[150:].to_parquet(folder / "part-1.parquet", index=False)
    version = Version(ws.data, ws.data.commit("parts", folder))
    assert version.to_pandas()["customer_id"].tolist() == list(range(300))
    assert version.profile.rows == 300


@remote_too
def test_tabular_operations_on_other_files_name_the_formats(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("hello")
    version = Version(ws.data, ws.data.commit("notes", tmp_path / "notes.md"))
    with pytest.raises(InvalidArgumentError, match=r"not tabular.*\.csv, \.parquet"):
        version.to_pandas()
    with pytest.raises(InvalidArgumentError, match="no profile"):
        _ = version.profile


@remote_too
def test_diff_reports_rows_schema_statistics_and_keyed_rows(ws: Workspace) -> None:
    old = customers(200)
    new = old.copy()
    new.loc[new.customer_id < 10, "spend"] = 0.0  # 10 changed rows
    new = new[new.customer_id >= 5]  # 5 removed
    extra = customers(3, seed=9).assign(customer_id=[1000, 1001, 1002])
    new = pd.concat([new, extra], ignore_index=True)  # 3 added
    new["channel"] = "web"  # a new column
    a = Version(ws.data, ws.data.commit("c", old))
    b = Version(ws.data, ws.data.commit("c", new))
    result = diff_versions(a, b, key=["customer_id"])
    assert result.rows == (200, 198)
    assert "added column channel" in result.schema_changes
    assert "mean" in result.column_changes["spend"]
    rows = result.row_diff
    assert rows is not None
    assert (rows.added, rows.removed, rows.changed) == (3, 5, 5)
    assert {r["customer_id"] for r in rows.samples["added"]} == {1000, 1001, 1002}
    with pytest.raises(InvalidArgumentError, match="Key column"):
        diff_versions(a, b, key=["nope"])


@remote_too
def test_infer_and_validate_against_a_reference_version(ws: Workspace) -> None:
    from driftline.data.schema import infer_schema
    from driftline.data.validation import validate

    reference = Version(ws.data, ws.data.commit("c", customers(2000)))
    schema = infer_schema(reference.profile)
    assert schema.column("plan").domain == ("basic", "plus", "pro")
    same = validate(customers(2000, seed=1), schema=schema, reference=reference.profile)
    assert same.ok, same.anomalies
    shifted = customers(2000, seed=2)
    shifted["spend"] = shifted["spend"] + 40
    shifted.loc[:100, "plan"] = "enterprise"
    report = validate(shifted, schema=schema, reference=reference.profile)
    assert not report.ok
    kinds = {(a.column, a.kind) for a in report.anomalies}
    assert ("spend", "drift") in kinds
    assert ("plan", "out_of_domain") in kinds


def test_a_dataset_reference_is_a_table_source_wherever_one_is_taken(
    configure_default: Callable[..., Workspace], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import driftline as dl
    from driftline.errors import NotFoundError

    configure_default(async_logging=False)
    monkeypatch.chdir(tmp_path)
    dl.data.commit("customers", customers(2000))
    shifted = customers(2000, seed=2)
    shifted["spend"] = shifted["spend"] + 40
    dl.data.commit("customers", shifted)
    schema = dl.data.infer_schema("customers@1")

    # The README's call: a version reference as the batch, not only as the reference.
    assert dl.data.validate("customers@1", schema=schema, reference="customers@1").ok
    drifted = dl.data.validate("customers@2", schema=schema, reference="customers@1")
    assert ("spend", "drift") in {(a.column, a.kind) for a in drifted.anomalies}
    assert dl.data.validate(dl.data.get("customers@1"), schema=schema).ok

    # A path that exists wins over a reference that reads the same.
    (tmp_path / "customers@2").mkdir()
    customers(50, seed=3).to_parquet(tmp_path / "customers@2" / "part-0.parquet")
    assert dl.data.validate("customers@2", schema=schema).rows == 50
    assert dl.data.validate(tmp_path / "customers@2", schema=schema).rows == 50

    # Neither: the error says both readings were tried, with the dataset's own hint.
    with pytest.raises(NotFoundError, match=r"'customers@3'.*no file or folder.*versions 1\.\.2"):
        dl.data.validate("customers@3", schema=schema)
    with pytest.raises(NotFoundError, match=r"no file or folder.*did you mean 'customers'"):
        dl.data.infer_schema("custmers@1")
    with pytest.raises(InvalidArgumentError, match=r"data/new\.parquet'.*no file or folder.*name"):
        dl.data.validate("data/new.parquet", schema=schema)
    with pytest.raises(InvalidArgumentError, match="Cannot read a dict as a table"):
        dl.data.validate({"a": 1}, schema=schema)
