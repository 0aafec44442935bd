"""The model cache reuses packages, evicts the least recently used, and never one in use."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from driftline.errors import IntegrityError, InvalidArgumentError
from driftline.models.cache import MIN_AGE, ModelCache
from driftline.settings import Settings

KiB = 1024


def package(root: Path, name: str, size: int, *, age: float) -> Path:
    """A cached package as another (finished) process left it, last used ``age`` s ago."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(os.urandom(size))
    stamp = time.time() - age
    os.utime(folder, (stamp, stamp))
    return folder


def filler(size: int, calls: list[Path]) -> Callable[[Path], None]:
    """A fill function writing one ``size``-byte file, recording each call in ``calls``."""

    def fill(folder: Path) -> None:
        calls.append(folder)
        folder.mkdir(parents=True)
        (folder / "model.bin").write_bytes(os.urandom(size))

    return fill


def cached(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name != ".locks")


def test_a_package_is_filled_once_and_checked_on_reuse(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "models")
    calls: list[Path] = []
    first = cache.fetch("abc", filler(KiB, calls))
    assert first == tmp_path / "models" / "abc"
    assert (first / "model.bin").stat().st_size == KiB
    checked: list[Path] = []
    assert cache.fetch("abc", filler(KiB, calls), check=checked.append) == first
    assert len(calls) == 1  # filled once, into a staging folder renamed into place
    assert checked == [first]

    def refuse(folder: Path) -> None:
        raise IntegrityError(f"{folder} was modified")

    with pytest.raises(IntegrityError, match="was modified"):
        cache.fetch("abc", filler(KiB, calls), check=refuse)


def test_a_failed_fill_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "models")

    def broken(folder: Path) -> None:
        folder.mkdir()
        (folder / "half.bin").write_bytes(b"half")
        raise OSError("the download broke")

    with pytest.raises(OSError, match="the download broke"):
        cache.fetch("abc", broken)
    assert cached(tmp_path / "models") == []


def test_the_least_recently_used_packages_go_first(tmp_path: Path) -> None:
    root = tmp_path / "models"
    old = package(root, "old", 400 * KiB, age=3 * MIN_AGE)
    older = package(root, "older", 400 * KiB, age=4 * MIN_AGE)
    package(root, "recent", 400 * KiB, age=2 * MIN_AGE)
    cache = ModelCache(root, max_bytes=1000 * KiB)
    calls: list[Path] = []
    new = cache.fetch("new", filler(300 * KiB, calls))
    # 1,500 KiB held, 1,000 allowed: the two least recently used packages go.
    assert cached(root) == ["new", "recent"]
    assert new.is_dir()
    assert not old.exists()
    assert not older.exists()
    assert cache.evict() == []  # it fits now


def test_recently_used_packages_stay_even_over_the_limit(tmp_path: Path) -> None:
    root = tmp_path / "models"
    package(root, "a", 400 * KiB, age=MIN_AGE / 2)
    package(root, "b", 400 * KiB, age=MIN_AGE / 3)
    assert ModelCache(root, max_bytes=100 * KiB).evict() == []
    assert cached(root) == ["a", "b"]


def test_a_package_in_use_by_another_process_is_never_evicted(tmp_path: Path) -> None:
    root = tmp_path / "models"
    user = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from pathlib import Path
                from driftline.models import ModelCache

                def fill(folder: Path) -> None:
                    folder.mkdir()
                    (folder / "model.bin").write_bytes(b"x" * 4096)

                ModelCache(Path({str(root)!r})).fetch("in-use", fill)
                print("loaded", flush=True)
                sys.stdin.read()  # holds the package until told to exit
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert user.stdout is not None
        assert user.stdout.readline().strip() == "loaded"
        stamp = time.time() - 2 * MIN_AGE
        os.utime(root / "in-use", (stamp, stamp))
        cache = ModelCache(root, max_bytes=0)
        assert cache.evict() == []
        assert (root / "in-use" / "model.bin").exists()
    finally:
        user.communicate("", timeout=30)
    assert cache.evict() == [root / "in-use"]  # its user exited
    assert cached(root) == []


def test_a_package_this_process_uses_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "models"
    cache = ModelCache(root, max_bytes=0)
    folder = cache.fetch("mine", filler(KiB, []))
    stamp = time.time() - 2 * MIN_AGE
    os.utime(folder, (stamp, stamp))
    assert cache.evict() == []
    assert folder.is_dir()


def test_staging_folders_of_crashed_loads_go_after_a_day(tmp_path: Path) -> None:
    root = tmp_path / "models"
    crashed = package(root, ".staging-abc.0123456789ab", KiB, age=2 * 86400)
    loading = package(root, ".staging-def.0123456789ab", KiB, age=60)
    assert ModelCache(root).evict() == [crashed]
    assert loading.exists()


def test_the_size_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_MODEL_CACHE_GB", "0.5")
    settings = Settings.load(home=tmp_path / ".driftline", capture_environment=False)
    cache = ModelCache.of(settings)
    assert cache.root == tmp_path / ".driftline" / "cache" / "models"
    assert cache.max_bytes == 512 << 20
    monkeypatch.setenv("DRIFTLINE_MODEL_CACHE_GB", "-1")
    with pytest.raises(InvalidArgumentError, match="DRIFTLINE_MODEL_CACHE_GB"):
        Settings.load(home=tmp_path / ".driftline")
