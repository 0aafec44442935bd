"""Pipelines are defined in modules written to the test's folder and imported, as users
write them: worker processes import steps by name, and code hashing reads the source."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture
def ws(configure_default: Callable[..., object]) -> object:
    """The default workspace on a SQLite file (worker processes can open it)."""
    return configure_default(async_logging=False)


@pytest.fixture
def write_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., ModuleType]]:
    """``write_module("steps_x", source)``: write ``steps_x.py`` and (re)import it."""
    folder = tmp_path / "code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no stale .pyc after an edit
    written: list[str] = []

    def write(name: str, source: str) -> ModuleType:
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        written.append(name)
        if name in sys.modules:
            return importlib.reload(sys.modules[name])
        return importlib.import_module(name)

    yield write
    for name in written:
        sys.modules.pop(name, None)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder steps use to signal each other (as text parameters)."""
    path = tmp_path / "signals"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def ray_local() -> Iterator[object]:
    """One local Ray for the whole test session: 2 CPUs, no dashboard, no usage stats.

    Starting Ray takes seconds, so every Ray test shares this one; it is shut down when
    the session ends. Tests that use it name their step modules uniquely: Ray's worker
    processes outlive a test and keep the modules they imported.
    """
    import os

    ray = pytest.importorskip("ray")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no reporting to the internet
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
