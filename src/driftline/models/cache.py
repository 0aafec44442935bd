"""The workspace's cache of model packages, bounded in size.

Loading ``runs:/...`` or ``models:/...`` materializes the package once under
``<home>/cache/models/<name>`` (a name derived from the package's digest, so a folder
never changes meaning) and reuses it afterwards; every load verifies the files against
the manifest anyway. Without a bound, every model a machine ever loaded would stay on
its disk, so after adding a package the cache evicts the least recently used ones until
it fits ``max_bytes``.

Eviction must never pull a package from under a process using it: a python model may
read its artifact files long after loading. A process that fetched a package holds a
shared ``flock`` on the package's lock file until it exits; eviction takes the lock
exclusively without waiting, and skips a package whose lock it cannot get. Packages
used within :data:`MIN_AGE` seconds are kept regardless, a margin for filesystems
whose locks other machines do not see (a home folder on NFS, say).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.core.artifacts.paths import validate_artifact_path
from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from driftline.settings import Settings

__all__ = ["DEFAULT_MAX_BYTES", "MIN_AGE", "ModelCache"]

DEFAULT_MAX_BYTES = 10 << 30
MIN_AGE = 600.0
_LOCKS = ".locks"
_STAGING = ".staging-"

# Lock files this process holds shared, by package folder: until the process exits.
_held: dict[Path, int] = {}
_held_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class ModelCache:
    """Model packages under ``root``, evicted least recently used beyond ``max_bytes``."""

    root: Path
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def of(cls, settings: Settings) -> ModelCache:
        """The cache of a workspace: ``<home>/cache/models``, ``model_cache_gb`` large."""
        return cls(settings.home / "cache" / "models", int(settings.model_cache_gb * (1 << 30)))

    def fetch(
        self,
        name: str,
        fill: Callable[[Path], object],
        *,
        check: Callable[[Path], None] | None = None,
    ) -> Path:
        """The cached package ``name``, filled by ``fill(folder)`` if it is not cached.

        ``check`` vets a cached copy before it is reused (it raises to refuse it). The
        package stays in use, safe from eviction, for as long as this process runs.
        """
        if "/" in name or name.startswith(".") or validate_artifact_path(name) != name:
            raise InvalidArgumentError(f"Invalid cache entry name {name!r}: use one plain name")
        folder = self.root / name
        self._hold(name)
        if folder.is_dir():
            if check is not None:
                check(folder)
            os.utime(folder)  # recently used: the last to be evicted
            return folder
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f"{_STAGING}{name}.{uuid.uuid4().hex[:12]}"
        try:
            fill(staging)
            try:
                os.rename(staging, folder)
            except OSError:
                if not folder.is_dir():  # not a concurrent loader that won the race
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.evict(keep=folder)
        return folder

    def evict(self, *, keep: Path | None = None, now: float | None = None) -> list[Path]:
        """Remove least recently used packages until the cache fits ``max_bytes``.

        Packages in use by a process, used within :data:`MIN_AGE` seconds, or ``keep``
        stay; staging folders of loads that crashed a day ago go. Returns what went.
        """
        now = time.time() if now is None else now
        packages = []
        removed = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.root) as entries:
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False) or entry.name == _LOCKS:
                    continue
                used = entry.stat(follow_symlinks=False).st_mtime
                if entry.name.startswith(_STAGING):
                    if used < now - 86400:
                        shutil.rmtree(entry.path, ignore_errors=True)
                        removed.append(Path(entry.path))
                    continue
                packages.append((used, _size(Path(entry.path)), Path(entry.path)))
        total = sum(size for _used, size, _path in packages)
        for used, size, folder in sorted(packages):
            if total <= self.max_bytes:
                break
            if folder == keep or used > now - MIN_AGE or not self._remove_unused(folder):
                continue
            total -= size
            removed.append(folder)
        return removed

    def _lock_path(self, name: str) -> Path:
        return self.root / _LOCKS / f"{name}.lock"

    def _hold(self, name: str) -> None:
        folder = self.root / name
        with _held_lock:
            if folder in _held:
                return
            path = self._lock_path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            # Waits only while an eviction holds it exclusively (removing the folder).
            fcntl.flock(fd, fcntl.LOCK_SH)
            _held[folder] = fd

    def _remove_unused(self, folder: Path) -> bool:
        """Remove ``folder`` unless some process holds its lock; whether it went."""
        with _held_lock:
            if folder in _held:
                return False
        fd = os.open(self._lock_path(folder.name), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            # Rename first so no reader ever sees a half-removed package under its name.
            doomed = folder.with_name(f"{_STAGING}evicted-{uuid.uuid4().hex[:12]}")
            try:
                os.rename(folder, doomed)
            except FileNotFoundError:
                return False
            shutil.rmtree(doomed, ignore_errors=True)
            return True
        finally:
            os.close(fd)  # lock files stay: removing one could split a later lock in two


def _size(folder: Path) -> int:
    total = 0
    for dirpath, _dirnames, filenames in os.walk(folder):
        for filename in filenames:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(dirpath, filename)).st_size
    return total
