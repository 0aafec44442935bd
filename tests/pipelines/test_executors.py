"""The process executor: same keys and results as in process, independent branches in
parallel, timeouts kill the step; retries re-run with backoff (both executors)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from driftline.errors import InvalidArgumentError, UserCodeError

BRANCHES = """
import time
from pathlib import Path
import driftline as dl

@dl.step
def source(n: int) -> list:
    return list(range(n))

@dl.step
def branch(xs: list, folder: str, me: str, other: str, wait: bool) -> int:
    # Each branch announces itself and, when asked, waits (with a deadline) for the
    # other: this only finishes if both run at the same time.
    Path(folder, me).write_text("here")
    deadline = time.monotonic() + 60
    while wait and not Path(folder, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{me} never saw {other}: the branches did not run together")
        time.sleep(0.01)
    dl.log_metric("items", len(xs))
    return sum(xs) + len(me)

@dl.step
def join(a: int, b: int) -> dict:
    return {"a": a, "b": b}

@dl.pipeline
def fork(n: int = 5, folder: str = "", wait: bool = False):
    xs = source(n)
    left = branch(xs, folder, "left", "right", wait)
    return join(left, branch(xs, folder, "right", "left", wait))
"""


def test_processes_give_the_same_keys_and_results(
    ws: Any, write_module: Callable[..., ModuleType], folder: Path
) -> None:
    module = write_module("steps_fork", BRANCHES)
    local = module.fork.run(folder=str(folder))
    remote = module.fork.run(folder=str(folder), executor="processes", force=True, max_workers=2)
    assert remote.result == local.result == {"a": 14, "b": 15}
    assert [s.cache.key for s in remote.record.steps] == [s.cache.key for s in local.record.steps]
    assert [s.outputs for s in remote.record.steps] == [s.outputs for s in local.record.steps]
    # What a step logs in a worker lands on its nested run.
    assert ws.tracking.get_run(remote.record.step("branch").run_id).metrics == {"items": 5.0}
    cached = module.fork.run(folder=str(folder), executor="processes")
    assert {s.cache.reason for s in cached.record.steps} == {"hit"}


def test_independent_branches_run_in_parallel(
    ws: Any, write_module: Callable[..., ModuleType], folder: Path
) -> None:
    module = write_module("steps_fork", BRANCHES)
    run = module.fork.run(folder=str(folder), wait=True, executor="processes", max_workers=2)
    assert run.result == {"a": 14, "b": 15}


def test_steps_must_be_importable_for_processes(ws: Any) -> None:
    import driftline as dl

    @dl.step
    def local_step() -> int:
        return 1

    @dl.pipeline
    def inline() -> Any:
        return local_step()

    with pytest.raises(InvalidArgumentError, match="'local_step' cannot run with executor="):
        inline.run(executor="processes")
    assert inline.run().result == 1


SLOW = """
import time
from pathlib import Path
import driftline as dl

@dl.step(timeout={timeout})
def slow(folder: str) -> int:
    deadline = time.monotonic() + 120
    while not Path(folder, "release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return 1

@dl.pipeline
def stuck(folder: str = ""):
    return slow(folder)
"""


def test_a_timeout_kills_the_step_in_a_worker(
    ws: Any, write_module: Callable[..., ModuleType], folder: Path
) -> None:
    module = write_module("steps_slow", SLOW.format(timeout='"2s"'))
    started = time.monotonic()
    with pytest.raises(UserCodeError, match="longer than its timeout of 2 s and was killed"):
        module.stuck.run(folder=str(folder), executor="processes", max_workers=1)
    assert time.monotonic() - started < 90


def test_a_timeout_in_process_is_reported(
    ws: Any, write_module: Callable[..., ModuleType], folder: Path
) -> None:
    module = write_module("steps_slow", SLOW.format(timeout=0.2))
    try:
        with pytest.raises(UserCodeError, match="use executor='processes' to have timed-out"):
            module.stuck.run(folder=str(folder))
    finally:
        (folder / "release").write_text("")  # let the abandoned thread end


RETRY = """
from pathlib import Path
import driftline as dl

@dl.step(retries=2, retry_delay=0.01)
def shaky(folder: str, failures: int) -> int:
    calls = Path(folder, "calls")
    count = len(calls.read_text()) if calls.exists() else 0
    calls.write_text("x" * (count + 1))
    if count < failures:
        raise ConnectionError(f"attempt {count + 1} failed")
    return count + 1

@dl.pipeline
def retrying(folder: str = "", failures: int = 1):
    return shaky(folder, failures)
"""


def test_retries_rerun_a_failing_step(
    ws: Any, write_module: Callable[..., ModuleType], folder: Path
) -> None:
    module = write_module("steps_retry", RETRY)
    run = module.retrying.run(folder=str(folder), failures=2)
    assert run.result == 3
    assert run.record.step("shaky").attempts == 3


def test_retries_give_up_after_the_last_attempt(
    ws: Any, write_module: Callable[..., ModuleType], folder: Path
) -> None:
    module = write_module("steps_retry", RETRY)
    with pytest.raises(UserCodeError, match="attempt 3 failed") as info:
        module.retrying.run(folder=str(folder), failures=5)
    assert info.value.pipeline_run.step("shaky").attempts == 3  # type: ignore[attr-defined]
