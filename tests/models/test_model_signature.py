"""Signatures: inferred from examples, enforced at predict time (checks, safe casts, inputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftline.errors import InvalidArgumentError
from driftline.models import (
    ColSpec,
    PythonModel,
    Signature,
    TensorSpec,
    infer_signature,
    load_model_folder,
    save_model,
)


class Echo(PythonModel):
    """Returns what it was given, so tests see the input after enforcement."""

    def predict(self, context: Any, model_input: Any) -> Any:
        return model_input


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([31, 45], dtype="int64"),
            "income": [52_000.5, 61_000.0],
            "plan": ["basic", "pro"],
            "active": [True, False],
            "since": pd.to_datetime(["2024-01-01", "2024-06-01"]),
            "score": np.array([0.5, 0.25], dtype="float32"),
            "visits": np.array([3, 4], dtype="int32"),
        }
    )


@pytest.fixture
def echo(tmp_path: Path, table: pd.DataFrame) -> Any:
    save_model(Echo(), tmp_path / "echo", input_example=table)
    return load_model_folder(tmp_path / "echo")


def test_signature_is_inferred_from_a_dataframe_example(table: pd.DataFrame) -> None:
    signature = infer_signature(table, np.array([1, 0]))
    assert signature.inputs == (
        ColSpec(name="age", type="long"),
        ColSpec(name="income", type="double"),
        ColSpec(name="plan", type="string"),
        ColSpec(name="active", type="boolean"),
        ColSpec(name="since", type="datetime"),
        ColSpec(name="score", type="float"),
        ColSpec(name="visits", type="integer"),
    )
    assert signature.outputs == (TensorSpec(dtype="int64", shape=(-1,)),)
    assert Signature.from_dict(signature.to_dict()) == signature


def test_signature_is_inferred_from_a_numpy_example() -> None:
    signature = infer_signature(np.zeros((5, 4), dtype="float32"), np.zeros((5, 3)))
    assert signature.inputs == (TensorSpec(dtype="float32", shape=(-1, 4)),)
    assert signature.outputs == (TensorSpec(dtype="float64", shape=(-1, 3)),)
    assert signature.is_tensor
    assert str(signature) == "(float32[-1, 4]) -> (float64[-1, 3])"


def test_the_model_output_on_the_example_becomes_the_output_schema(
    echo: Any, table: pd.DataFrame
) -> None:
    assert echo.signature.inputs == infer_signature(table).inputs
    assert [spec.name for spec in echo.signature.outputs] == list(table.columns)


def test_a_matching_dataframe_reaches_the_model_as_is(echo: Any, table: pd.DataFrame) -> None:
    assert echo.predict(table) is table


def test_a_missing_column_names_the_column_and_its_type(echo: Any, table: pd.DataFrame) -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"missing column 'income' \(expected type double\)"
    ):
        echo.predict(table.drop(columns=["income"]))


def test_integers_are_cast_to_float_columns(echo: Any, table: pd.DataFrame) -> None:
    data = table.assign(income=[52_000, 61_000])
    out = echo.predict(data)
    assert out["income"].dtype == np.float64
    assert out["income"].tolist() == [52_000.0, 61_000.0]


def test_whole_floats_become_integers_but_fractions_do_not(echo: Any, table: pd.DataFrame) -> None:
    out = echo.predict(table.assign(age=[31.0, 45.0]))
    assert out["age"].dtype == np.int64
    with pytest.raises(InvalidArgumentError, match=r"'age' expects type long.*not whole numbers"):
        echo.predict(table.assign(age=[31.5, 45.0]))
    with pytest.raises(InvalidArgumentError, match=r"'age' expects type long.*missing"):
        echo.predict(table.assign(age=[31.0, np.nan]))


def test_numeric_strings_are_not_cast(echo: Any, table: pd.DataFrame) -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"column 'income' expects type double, got str values"
    ) as caught:
        echo.predict(table.assign(income=["52000.5", "61000"]))
    assert "not converted" in str(caught.value)


def test_a_string_among_all_double_columns_is_an_error(tmp_path: Path) -> None:
    # Every column double: the check's fast path looks at the frame's one block; a frame
    # with a string column has two, and must take the general path (numpy reads a
    # missing dtype, None, as float64, which once let such frames through unchecked).
    doubles = pd.DataFrame({"a": [0.5, 1.5], "b": [2.0, 3.0]})
    save_model(Echo(), tmp_path / "doubles", input_example=doubles)
    model = load_model_folder(tmp_path / "doubles")
    with pytest.raises(InvalidArgumentError, match=r"column 'a' expects type double, got str"):
        model.predict(doubles.assign(a=["x", "y"]))


def test_a_number_in_a_string_column_is_an_error(echo: Any, table: pd.DataFrame) -> None:
    with pytest.raises(InvalidArgumentError, match=r"'plan' expects type string"):
        echo.predict(table.assign(plan=[1, 2]))


def test_extra_columns_are_dropped_with_a_warning(echo: Any, table: pd.DataFrame) -> None:
    data = table.assign(notes=["a", "b"], zip=[1, 2])
    with pytest.warns(UserWarning, match=r"'notes', 'zip'"):
        out = echo.predict(data)
    assert list(out.columns) == list(table.columns)


def test_columns_are_put_in_signature_order(echo: Any, table: pd.DataFrame) -> None:
    out = echo.predict(table[list(reversed(table.columns))])
    assert list(out.columns) == list(table.columns)


def test_records_and_dicts_of_columns_are_accepted(echo: Any, table: pd.DataFrame) -> None:
    records = table.to_dict("records")
    pd.testing.assert_frame_equal(echo.predict(records), table, check_dtype=True)
    columns = {name: table[name].tolist() for name in table.columns}
    pd.testing.assert_frame_equal(echo.predict(columns), table, check_dtype=True)
    one = echo.predict(records[0])
    assert len(one) == 1
    assert one["plan"].tolist() == ["basic"]


def test_numpy_rows_and_lists_of_rows_are_read_in_signature_order(tmp_path: Path) -> None:
    example = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    save_model(Echo(), tmp_path / "m", input_example=example)
    model = load_model_folder(tmp_path / "m")
    out = model.predict(np.array([[5.0, 6.0]]))
    assert out.to_dict("records") == [{"a": 5.0, "b": 6.0}]
    out = model.predict([[7, 8]])
    assert out.to_dict("records") == [{"a": 7.0, "b": 8.0}]
    with pytest.raises(InvalidArgumentError, match="2 values"):
        model.predict([[1.0, 2.0, 3.0]])


def test_tensor_signatures_cast_safely_and_check_the_shape(tmp_path: Path) -> None:
    save_model(Echo(), tmp_path / "t", input_example=np.zeros((3, 4), dtype="float32"))
    model = load_model_folder(tmp_path / "t")
    assert model.signature.inputs == (TensorSpec(dtype="float32", shape=(-1, 4)),)
    out = model.predict([[1, 2, 3, 4]])  # a list of lists, integers
    assert out.dtype == np.float32
    assert out.tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert model.predict(np.ones((2, 4))).dtype == np.float32  # float64 -> float32
    with pytest.raises(InvalidArgumentError, match=r"shape \(2, 5\).*\(-1, 4\)"):
        model.predict(np.ones((2, 5), dtype="float32"))
    with pytest.raises(InvalidArgumentError, match="strings are not converted"):
        model.predict(np.array([["1", "2", "3", "4"]]))
    frame = pd.DataFrame(np.ones((2, 4)), columns=list("abcd"))
    assert model.predict(frame).shape == (2, 4)


def test_an_explicit_signature_wins(tmp_path: Path) -> None:
    signature = Signature(inputs=(ColSpec(name="x", type="double"),))
    info = save_model(
        Echo(), tmp_path / "m", input_example=pd.DataFrame({"x": [1]}), signature=signature
    )
    assert info.signature == signature
    out = load_model_folder(tmp_path / "m").predict({"x": [1, 2]})
    assert out["x"].dtype == np.float64


def test_without_a_signature_inputs_pass_through(tmp_path: Path) -> None:
    info = save_model(Echo(), tmp_path / "m")
    assert info.signature is None
    model = load_model_folder(tmp_path / "m")
    assert model.predict(["free", "text"]) == ["free", "text"]
    assert isinstance(model.predict([{"a": 1}]), pd.DataFrame)


def test_malformed_signatures_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="Unknown column type"):
        ColSpec(name="x", type="decimal")
    with pytest.raises(InvalidArgumentError, match="all columns or all tensors"):
        Signature(
            inputs=(ColSpec(name="x", type="double"), TensorSpec(dtype="float32", shape=(-1,)))  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidArgumentError, match="repeat"):
        Signature(inputs=(ColSpec(name="x", type="double"), ColSpec(name="x", type="long")))
