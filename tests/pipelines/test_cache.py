"""Cache hits and misses: code (including helpers and constants), params, inputs,
force, per-step opt-out, verified outputs, resume after a failure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import driftline as dl
from driftline.errors import UserCodeError
from driftline.pipelines.hashing import code_components
from stored_objects import tamper

HELPERS = """
FACTOR = {factor}

def clean(x):
    return x * FACTOR{extra}
"""

STEPS = """
import driftline as dl
import helpers_c
from helpers_c import clean

@dl.step
def load(n: int) -> list:
    return list(range(n))

@dl.step
def prepare(xs: list) -> list:
    return [clean(x) for x in xs]

@dl.step
def total(xs: list, offset: int = 0) -> int:
    return sum(xs) + offset

@dl.pipeline
def chain(n: int = 3, offset: int = 0):
    return total(prepare(load(n)), offset=offset)
"""


def reasons(run: Any) -> dict[str, str]:
    return {s.name: s.cache.reason for s in run.record.steps}


@pytest.fixture
def steps(write_module: Callable[..., ModuleType]) -> Callable[..., ModuleType]:
    def make(factor: int = 2, extra: str = "") -> ModuleType:
        write_module("helpers_c", HELPERS.format(factor=factor, extra=extra))
        return write_module("steps_c", STEPS)

    return make


def test_a_second_run_is_all_hits(ws: Any, steps: Callable[..., ModuleType]) -> None:
    module = steps()
    first = module.chain.run()
    assert first.result == 6
    assert reasons(first) == dict.fromkeys(("load", "prepare", "total"), "no previous run")
    again = module.chain.run()
    assert again.result == 6
    assert reasons(again) == dict.fromkeys(("load", "prepare", "total"), "hit")
    assert {s.cache.source_run_id for s in again.record.steps} == {first.id}
    assert [s.key for s in (x.cache for x in first.record.steps)] == [
        s.cache.key for s in again.record.steps
    ]


def test_editing_a_helper_changes_the_key(ws: Any, steps: Callable[..., ModuleType]) -> None:
    module = steps()
    before = code_components(module.prepare.fn)
    assert "code:helpers_c.py:clean" in before
    module.chain.run()
    module = steps(extra=" + 1")  # the helper's body changes, the step's source does not
    assert code_components(module.prepare.fn) != before
    run = module.chain.run()
    assert run.result == 9
    assert reasons(run) == {
        "load": "hit",
        "prepare": "code changed: helpers_c.py:clean",
        "total": "input changed: xs",
    }


def test_editing_a_module_constant_changes_the_key(
    ws: Any, steps: Callable[..., ModuleType]
) -> None:
    module = steps(factor=2)
    module.chain.run()
    run = steps(factor=5).chain.run()
    assert run.result == 15
    assert reasons(run)["prepare"] == "constant changed: helpers_c.FACTOR"


def test_params_force_and_opt_out(
    ws: Any, steps: Callable[..., ModuleType], write_module: Callable[..., ModuleType]
) -> None:
    module = steps()
    module.chain.run()
    assert reasons(module.chain.run(offset=4)) == {
        "load": "hit",
        "prepare": "hit",
        "total": "params changed: offset",
    }
    assert set(reasons(module.chain.run(force=True)).values()) == {"forced"}
    source = STEPS.replace("@dl.step\ndef total", "@dl.step(cache=False)\ndef total")
    module = write_module("steps_c", source)
    assert reasons(module.chain.run())["total"] == "cache disabled for this step"


def test_an_upstream_rerun_with_an_equal_output_keeps_downstream_hits(
    ws: Any, steps: Callable[..., ModuleType], write_module: Callable[..., ModuleType]
) -> None:
    steps().chain.run()
    edited = STEPS.replace("return list(range(n))", "return list(range(n))  # same output")
    run = write_module("steps_c", edited).chain.run()
    assert reasons(run) == {
        "load": "code changed: steps_c.py:load",
        "prepare": "hit",
        "total": "hit",
    }


def test_a_corrupted_output_is_a_miss_and_recomputed(
    ws: Any, steps: Callable[..., ModuleType]
) -> None:
    module = steps()
    first = module.chain.run()
    tamper(ws.content, first.record.step("prepare").outputs["output"].digest)
    run = module.chain.run()
    assert reasons(run)["prepare"].startswith("stored output corrupted: output")
    assert reasons(run)["total"] == "hit"  # the recomputed output has the same digest
    assert run.result == 6
    assert dl.pipelines.get_run(run.id).step("prepare").status.value == "COMPLETED"


FLAKY = """
import driftline as dl
from pathlib import Path

@dl.step
def first(n: int) -> int:
    Path({calls!r}).open("a").write("first\\n")
    return n

@dl.step
def second(x: int, flag: str) -> int:
    if not Path(flag).exists():
        raise ValueError("no flag yet")
    return x * 10

@dl.step
def third(y: int) -> int:
    return y + 1

@dl.pipeline
def flaky(n: int = 4, flag: str = ""):
    return third(second(first(n), flag))
"""


def test_a_failed_run_resumes_with_finished_steps_as_hits(
    ws: Any, write_module: Callable[..., ModuleType], folder: Path
) -> None:
    calls = folder / "calls.txt"
    module = write_module("steps_flaky", FLAKY.format(calls=str(calls)))
    flag = folder / "flag"
    with pytest.raises(UserCodeError, match="Step 'second' of pipeline 'flaky' failed") as info:
        module.flaky.run(flag=str(flag))
    failed = info.value.pipeline_run  # type: ignore[attr-defined]
    assert isinstance(info.value.__cause__, ValueError)
    assert [s.status.value for s in failed.steps] == ["COMPLETED", "FAILED", "SKIPPED"]
    assert "ValueError: no flag yet" in failed.step("second").traceback
    assert dl.get_run(failed.step("second").run_id).status.value == "FAILED"
    assert failed.status.value == "FAILED"
    assert dl.get_run(failed.id).status.value == "FAILED"

    flag.write_text("ok")
    resumed = dl.pipelines.resume(failed.id)
    assert resumed.result == 41
    assert reasons(resumed)["first"] == "hit"
    assert resumed.record.resumed_from == failed.id
    assert calls.read_text() == "first\n"  # the finished step did not run again


NAMED = """
import driftline as dl

@dl.step(run_name="fit-{name}")
def fit(name: str, scale: float) -> float:
    dl.log_metric("score", scale * 2)
    return scale * 2

@dl.pipeline
def compare():
    return [fit(name="small", scale=1.0), fit(name="large", scale=10.0)]
"""


def test_step_runs_are_named_per_call_and_a_rerun_is_cached(
    ws: Any, write_module: Callable[..., ModuleType]
) -> None:
    module = write_module("steps_named", NAMED)
    first = module.compare.run()
    # Nodes keep the step's name; each call's run is named from its parameters.
    assert list(first.steps) == ["fit", "fit_2"]
    tracking = dl.get_workspace().tracking
    runs = {n: tracking.get_run(s.run_id) for n, s in first.steps.items()}
    assert {n: r.name for n, r in runs.items()} == {"fit": "fit-small", "fit_2": "fit-large"}
    assert runs["fit_2"].metrics == {"score": 20.0}
    assert runs["fit"].tags["driftline.pipeline.step"] == "fit"
    again = module.compare.run()
    assert reasons(again) == {"fit": "hit", "fit_2": "hit"}
    # A cached step points at the run that produced its output.
    assert {n: s.run_id for n, s in again.steps.items()} == {
        n: s.run_id for n, s in first.steps.items()
    }


def test_a_run_name_must_name_the_steps_parameters() -> None:
    from driftline.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="'model', which is not one of its"):

        @dl.step(run_name="{model}")
        def fit(name: str) -> None: ...

    with pytest.raises(InvalidArgumentError, match="not a valid format string"):

        @dl.step(run_name="{name")
        def fit2(name: str) -> None: ...

    with pytest.raises(InvalidArgumentError, match="non-empty"):

        @dl.step(run_name=" ")
        def fit3(name: str) -> None: ...
