"""Byte store on a local folder.

Atomicity comes from writing a temporary file in the store's own ``.tmp`` folder (same
filesystem) and renaming it into place: rename is atomic on POSIX, so a reader sees a
whole object or none.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from driftline.errors import BackendError, NotFoundError

__all__ = ["LocalByteStore"]

_TMP_DIR = ".tmp"
# Temporary names: unique per process (pid) and per call (a counter, atomic in CPython).
# Cheaper than a UUID per file, which shows when a commit writes 10,000 small objects.
_TEMP_NUMBERS = itertools.count()


class LocalByteStore:
    """A :class:`~driftline.core.artifacts.ByteStore` on a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.url = str(self.root)
        self._tmp_ready = False

    def _path(self, key: str) -> Path:
        return self.root / key

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"No object {key!r} in {self.url}") from None

    def modified(self, key: str) -> float:
        try:
            return self._path(key).stat().st_mtime
        except FileNotFoundError:
            raise NotFoundError(f"No object {key!r} in {self.url}") from None

    def temp_path(self) -> Path:
        """A fresh path for a temporary file inside the store (same filesystem as objects)."""
        tmp_dir = self.root / _TMP_DIR
        if not self._tmp_ready:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            self._tmp_ready = True
        return tmp_dir / f"{os.getpid()}-{next(_TEMP_NUMBERS)}"

    def commit_temp(self, key: str, temp: Path, *, read_only: bool = False) -> None:
        """Move a temporary file of this store to ``key`` (read-only from then on).

        ``rename`` is atomic, and for content-addressed keys a concurrent writer of the
        same key writes identical bytes, so replacing is harmless. ``read_only`` says the
        temporary file was created read-only already (one ``chmod`` less per object).
        """
        target = self._path(key)
        try:
            if not read_only:
                os.chmod(temp, 0o444)  # objects are immutable; guard against stray edits
            try:
                os.replace(temp, target)
            except FileNotFoundError:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise BackendError(f"Cannot write {target}: {exc}") from exc

    def write_bytes(self, key: str, data: bytes, *, sync: bool = True) -> None:
        """Store ``data`` under ``key`` atomically."""
        temp = self.temp_path()
        try:
            try:
                fd = _create_read_only(temp)
            except FileNotFoundError:  # the .tmp folder was removed under us
                self._tmp_ready = False
                temp = self.temp_path()
                fd = _create_read_only(temp)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self.commit_temp(key, temp, read_only=True)

    def read_local(self, key: str) -> bytes:
        """The object's bytes, unverified (``FileNotFoundError`` if absent): for the
        content layer, which compares or hashes them itself."""
        with open(self._path(key), "rb") as handle:
            return handle.read()

    def put_file(self, key: str, source: Path) -> bool:
        if self.exists(key):
            return False
        temp = self.temp_path()
        try:
            shutil.copyfile(source, temp)  # in-kernel copy (sendfile) on Linux
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self.commit_temp(key, temp)
        return True

    def open_read(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"No object {key!r} in {self.url}") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            if Path(dirpath) == self.root:
                dirnames[:] = [d for d in dirnames if d != _TMP_DIR]
            for name in filenames:
                yield Path(dirpath, name).relative_to(self.root).as_posix()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


def _create_read_only(path: Path) -> int:
    # Created read-only (objects are immutable); the descriptor opened here may still write.
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
