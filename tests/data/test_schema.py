"""Schemas: conservative inference, YAML round trips, strict loading."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from driftline.data.profile import profile_table
from driftline.data.schema import ColumnSchema, Schema, infer_schema
from driftline.errors import InvalidArgumentError, NotFoundError


def make_profile():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    n = 3000
    return profile_table(
        pa.table(
            {
                "age": rng.integers(18, 90, n),
                "income": pa.array(rng.normal(5e4, 1e4, n), mask=rng.random(n) < 0.02),
                "country": rng.choice(["DE", "FR", "US"], n),
                "segment": [f"s{i:02d}" for i in rng.integers(0, 100, n)],  # <= 100 values
                "user": [f"u{i}" for i in range(n)],  # unique: no domain
                "active": rng.random(n) < 0.5,
            }
        )
    )


def test_inference_is_conservative() -> None:
    schema = infer_schema(make_profile())
    cols = {c.name: c for c in schema.columns}
    assert [c.name for c in schema.columns] == [
        "age",
        "income",
        "country",
        "segment",
        "user",
        "active",
    ]
    assert {n: c.type for n, c in cols.items()} == {
        "age": "int", "income": "float", "country": "string", "segment": "string",
        "user": "string", "active": "bool",
    }  # fmt: skip
    assert cols["age"].required
    assert not cols["income"].required
    assert cols["country"].domain == ("DE", "FR", "US")
    assert cols["segment"].domain is not None
    assert len(cols["segment"].domain) == 100
    assert cols["user"].domain is None  # 3000 distinct values
    assert cols["active"].domain is None  # the type already limits a bool
    for c in schema.columns:  # never a numeric range nor a null budget: only people set them
        assert (c.min, c.max, c.max_null_fraction, c.drift_threshold) == (None, None, None, None)
    assert (schema.numeric_drift_threshold, schema.categorical_drift_threshold) == (0.1, 0.2)
    assert not schema.allow_extra_columns
    assert schema.min_domain_share == 0.0


def test_no_domain_above_100_values() -> None:
    table = pa.table({"v": [f"v{i % 101}" for i in range(2000)]})
    assert infer_schema(profile_table(table)).column("v").domain is None


def test_yaml_round_trip_and_layout(tmp_path) -> None:
    schema = infer_schema(make_profile())
    cols = [
        dataclasses.replace(c, min=18, max=120.5, drift_threshold=0.05) if c.name == "age" else c
        for c in schema.columns
    ]
    schema = dataclasses.replace(schema, columns=tuple(cols), min_domain_share=0.01)
    path = tmp_path / "schema.yaml"
    schema.save(path)
    assert Schema.load(path) == schema
    text = path.read_text()
    assert text.startswith("# driftline data schema")
    assert "domain: [DE, FR, US]" in text  # one line per domain
    keys = [line.split(":")[0].strip("- ") for line in text.splitlines() if line.startswith("-")]
    assert set(keys) == {"name"}  # each column entry starts with its name
    assert text.index("allow_extra_columns") < text.index("columns:")
    schema.save(tmp_path / "again.yaml")
    assert (tmp_path / "again.yaml").read_text() == text  # stable output


def test_hand_written_yaml_loads(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "columns:\n"
        "  - {name: flag, type: bool, required: true, domain: [true]}\n"
        "  - {name: code, type: string, required: false, domain: ['01', 'yes'],"
        " max_null_fraction: 0.1}\n"
    )
    schema = Schema.load(path)
    assert schema.column("flag").domain == ("true",)
    assert schema.column("code").domain == ("01", "yes")
    assert schema.column("code").max_null_fraction == 0.1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("colums: []\n", "unknown key 'colums'"),
        (
            "columns:\n  - {name: a, type: int, required: true, minimum: 3}\n",
            "unknown key 'minimum'",
        ),
        ("columns:\n  - {name: a, type: integer, required: true}\n", "Unknown type 'integer'"),
        ("columns:\n  - {name: a, required: true}\n", "'type' is missing"),
        ("columns:\n  - {name: a, type: int, min: 5, max: 1}\n", "above max"),
        ("columns:\n  - {name: a, type: string, domain: [yes, no]}\n", "quoted string"),
        ("columns:\n  - {name: a, type: float, min: 'low'}\n", "finite number"),
        ("numeric_drift_threshold: 2\n", "between 0 and 1"),
        ("columns:\n  - {name: a, type: int}\n  - {name: a, type: int}\n", "more than once"),
        ("columns: [\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_malformed_schema_files_raise(tmp_path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InvalidArgumentError, match=match):
        Schema.load(path)


def test_lookups_and_thresholds() -> None:
    schema = Schema(
        columns=(
            ColumnSchema(name="a", type="float", required=True),
            ColumnSchema(name="b", type="string", required=True, drift_threshold=0.05),
        ),
        numeric_drift_threshold=0.07,
    )
    assert schema.column("a").type == "float"
    assert schema.drift_threshold(schema.column("a")) == 0.07
    assert schema.drift_threshold(schema.column("b")) == 0.05  # the column's own wins
    with pytest.raises(NotFoundError, match="no column 'c'"):
        schema.column("c")
    with pytest.raises(InvalidArgumentError, match="min/max need"):
        ColumnSchema(name="s", type="string", required=True, min=1)
    with pytest.raises(InvalidArgumentError, match="domain needs"):
        ColumnSchema(name="n", type="int", required=True, domain=("1",))
