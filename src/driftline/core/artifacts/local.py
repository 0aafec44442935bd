"""Byte store on a local folder.

Atomicity comes from writing a temporary file in the store's own ``.tmp`` folder (same
filesystem) and renaming it into place: rename is atomic on POSIX, so a reader sees a
whole object or none.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from driftline.errors import BackendError, NotFoundError

__all__ = ["LocalByteStore"]

_TMP_DIR = ".tmp"


class LocalByteStore:
    """A :class:`~driftline.core.artifacts.ByteStore` on a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.url = str(self.root)

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
        tmp_dir.mkdir(parents=True, exist_ok=True)
        return tmp_dir / uuid.uuid4().hex

    def commit_temp(self, key: str, temp: Path) -> None:
        """Move a temporary file of this store to ``key`` (read-only from then on).

        ``rename`` is atomic, and for content-addressed keys a concurrent writer of the
        same key writes identical bytes, so replacing is harmless.
        """
        target = self._path(key)
        try:
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
            with open(temp, "wb") as out:
                out.write(data)
                if sync:
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self.commit_temp(key, temp)

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
