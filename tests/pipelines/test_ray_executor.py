"""The Ray executor on one local 2-CPU Ray per session: the same keys and results as in
process, per-step resources, timeouts cancel the task; clear errors when Ray is missing,
unreachable, or the executor name is unknown."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from driftline.errors import BackendError, InvalidArgumentError, UserCodeError

FORK = """
import driftline as dl

@dl.step
def source(n: int) -> list:
    return list(range(n))

@dl.step(resources={"num_cpus": 1})
def branch(xs: list, me: str) -> int:
    dl.log_metric("items", len(xs))
    return sum(xs) + len(me)

@dl.step
def join(a: int, b: int) -> dict:
    return {"a": a, "b": b}

@dl.pipeline
def ray_fork(n: int = 5):
    xs = source(n)
    return join(branch(xs, "left"), branch(xs, "right"))
"""


def test_ray_gives_the_same_keys_and_results(
    ray_local: Any, ws: Any, write_module: Callable[..., ModuleType]
) -> None:
    module = write_module("steps_ray_fork", FORK)
    local = module.ray_fork.run()
    on_ray = module.ray_fork.run(executor="ray", force=True)
    assert on_ray.record.executor == "ray"
    assert on_ray.result == local.result == {"a": 14, "b": 15}
    assert [s.cache.key for s in on_ray.record.steps] == [s.cache.key for s in local.record.steps]
    assert [s.outputs for s in on_ray.record.steps] == [s.outputs for s in local.record.steps]
    assert {s.status.value for s in on_ray.record.steps} == {"COMPLETED"}
    # What a step logs in a Ray worker lands on its nested run, which ended FINISHED.
    step_run = ws.tracking.get_run(on_ray.record.step("branch").run_id)
    assert step_run.metrics == {"items": 5.0}
    assert step_run.status.value == "FINISHED"
    assert step_run.parent_id == on_ray.id
    cached = module.ray_fork.run(executor="ray")
    assert {s.cache.reason for s in cached.record.steps} == {"hit"}


def test_an_edited_step_runs_its_new_code_on_ray(
    ray_local: Any, ws: Any, write_module: Callable[..., ModuleType]
) -> None:
    source = """
import driftline as dl

@dl.step
def answer() -> int:
    return {value}

@dl.pipeline
def ray_edit():
    return answer()
"""
    module = write_module("steps_ray_edit", source.format(value=1))
    assert module.ray_edit.run(executor="ray").result == 1
    time.sleep(0.01)  # a distinct modification time for the edited file
    module = write_module("steps_ray_edit", source.format(value=2))
    rerun = module.ray_edit.run(executor="ray")
    assert rerun.record.step("answer").cache.reason.startswith("code changed")
    assert rerun.result == 2


SLOW = """
import time
from pathlib import Path
import driftline as dl

@dl.step(timeout=1)
def slow(folder: str) -> int:
    Path(folder, "started").write_text("yes")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.01)
    Path(folder, "finished").write_text("yes")
    return 1

@dl.pipeline
def ray_stuck(folder: str = ""):
    return slow(folder)
"""


def test_a_timeout_cancels_the_ray_task(
    ray_local: Any, ws: Any, write_module: Callable[..., ModuleType], folder: Path
) -> None:
    module = write_module("steps_ray_slow", SLOW)
    started = time.monotonic()
    with pytest.raises(UserCodeError, match="longer than its timeout of 1 s and was killed"):
        module.ray_stuck.run(folder=str(folder), executor="ray")
    assert time.monotonic() - started < 60
    assert (folder / "started").exists()
    assert not (folder / "finished").exists()


def test_ray_not_installed_names_the_extra(
    ws: Any, write_module: Callable[..., ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_module("steps_ray_missing", FORK.replace("ray_fork", "ray_missing"))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(InvalidArgumentError, match=r"pip install 'driftline\[ray\]'"):
        module.ray_missing.run(executor="ray")
    # Nothing was recorded for a run that could not start.
    assert ws.tracking.search_runs().items == []


def test_an_unreachable_cluster_names_the_address(
    ws: Any, write_module: Callable[..., ModuleType]
) -> None:
    pytest.importorskip("ray")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    module = write_module("steps_ray_away", FORK.replace("ray_fork", "ray_away"))
    address = f"ray://127.0.0.1:{port}"
    with pytest.raises(BackendError, match=f"Cannot reach the Ray cluster at {address}"):
        module.ray_away.run(executor=address)


def test_unknown_executors_and_resources_are_refused(ws: Any) -> None:
    import driftline as dl

    @dl.step
    def one() -> int:
        return 1

    @dl.pipeline
    def tiny() -> Any:
        return one()

    with pytest.raises(InvalidArgumentError, match="known: 'local', 'processes', 'ray'"):
        tiny.run(executor="dask")
    with pytest.raises(InvalidArgumentError, match="Invalid resource 'num_cpus': -1"):
        dl.step(resources={"num_cpus": -1})


def test_a_step_asking_a_local_ray_for_too_much_is_refused(
    ray_local: Any, ws: Any, write_module: Callable[..., ModuleType]
) -> None:
    greedy = FORK.replace('resources={"num_cpus": 1}', 'resources={"num_cpus": 8}')
    module = write_module("steps_ray_greedy", greedy.replace("ray_fork", "ray_greedy"))
    with pytest.raises(InvalidArgumentError, match="'branch' asks for CPU=8, and the local Ray"):
        module.ray_greedy.run(executor="ray")
    assert ws.tracking.search_runs().items == []
