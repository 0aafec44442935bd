"""Bad input: cycles, missing inputs, unknown pipelines and parameters, outputs that
cannot be stored, a step that raises."""

from __future__ import annotations

from typing import Any

import pytest

import driftline as dl
from driftline.errors import InvalidArgumentError, NotFoundError, UserCodeError
from driftline.pipelines.graph import Node, render, toposort


@dl.step
def one() -> int:
    return 1


@dl.step
def add(x: int, y: int = 1) -> int:
    return x + y


def test_a_cycle_names_the_steps() -> None:
    nodes = {
        "a": Node(name="a", step=add, inputs={"x": "c"}),
        "b": Node(name="b", step=add, inputs={"x": "a"}),
        "c": Node(name="c", step=add, inputs={"x": "b"}),
    }
    with pytest.raises(InvalidArgumentError, match=r"cycle through steps a -> b -> c -> a"):
        toposort(nodes)


def test_an_input_from_an_unknown_step_names_both() -> None:
    nodes = {"b": Node(name="b", step=add, inputs={"x": "ghost"})}
    with pytest.raises(InvalidArgumentError, match="'b' reads input 'x' from step 'ghost'"):
        toposort(nodes)


def test_a_missing_input_names_the_step_and_signature() -> None:
    @dl.pipeline
    def broken() -> Any:
        return add(y=2)

    with pytest.raises(InvalidArgumentError, match=r"input for step 'add'.*'x'.*add\(x:"):
        broken.graph()


def test_unknown_pipeline_and_parameter_list_what_exists() -> None:
    @dl.pipeline
    def known(n: int = 1) -> Any:
        return add(one(), y=n)

    with pytest.raises(NotFoundError, match=r"known pipelines: .*known"):
        dl.pipelines.get_pipeline("unknown")
    with pytest.raises(InvalidArgumentError, match="no parameter 'm'; its parameters: n=1"):
        known.graph(m=2)
    assert render(known.graph(), "text") == "one\n  add  <- one"
    assert "one --> add" in render(known.graph(), "mermaid")
    assert '"one" -> "add";' in render(known.graph(), "dot")


class Opaque:
    pass


@dl.step
def opaque() -> Opaque:
    return Opaque()


@dl.step(pickle=True)
def opaque_ok() -> Opaque:
    return Opaque()


def test_an_output_that_cannot_be_stored_says_how_to_fix_it(ws: Any) -> None:
    @dl.pipeline
    def p() -> Any:
        return opaque()

    with pytest.raises(UserCodeError, match=r"'opaque' returned 'output' of type .*Opaque") as info:
        p.run()
    assert "@dl.step(pickle=True)" in str(info.value)

    @dl.pipeline
    def q() -> Any:
        return opaque_ok()

    assert isinstance(q.run().result, Opaque)


@dl.step
def explode(x: int) -> int:
    raise ZeroDivisionError(f"cannot use {x}")


def test_a_failing_step_fails_the_run_and_skips_the_rest(ws: Any) -> None:
    @dl.pipeline
    def p() -> Any:
        first = one()
        return add(explode(first), y=add(first))

    with pytest.raises(UserCodeError, match="Step 'explode' of pipeline 'p' failed") as info:
        p.run()
    record = info.value.pipeline_run  # type: ignore[attr-defined]
    status = {s.name: s.status.value for s in record.steps}
    assert status == {"one": "COMPLETED", "explode": "FAILED", "add": "SKIPPED", "add_2": "SKIPPED"}
    run_id = record.step("explode").run_id
    assert "ZeroDivisionError: cannot use 1" in record.step("explode").traceback
    stored = ws.tracking.list_artifacts(run_id, "traceback.txt")[0]
    assert b"ZeroDivisionError" in ws.content.read_bytes(stored.digest)


def test_data_frames_and_arrays_round_trip(ws: Any) -> None:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")

    @dl.step
    def frame() -> Any:
        return pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})

    @dl.step
    def array(df: Any) -> Any:
        return np.asarray(df["a"]) * 2

    @dl.pipeline
    def p() -> Any:
        df = frame()
        return df, array(df)

    run = p.run()
    assert [s.outputs["output"].serializer for s in run.record.steps] == ["parquet/1", "npy/1"]
    df, arr = p.run().result  # from the store this time
    assert df.equals(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert arr.tolist() == [2, 4]
