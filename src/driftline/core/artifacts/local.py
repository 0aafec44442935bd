"""Byte store on a local folder.

Atomicity comes from writing a temporary file in the same folder tree and renaming
it into place (rename is atomic on POSIX); ``os.link`` refuses to overwrite, which
gives put-if-absent without a race between two writers of the same content.
"""

from __future__ import annotations

import os
import shutil
import tempfile
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

    def temp_file(self) -> tuple[int, Path]:
        """A new temporary file inside the store (same filesystem, so rename is atomic)."""
        tmp_dir = self.root / _TMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir)
        return fd, Path(name)

    def commit_temp(self, key: str, temp: Path) -> bool:
        """Move a temporary file of this store to ``key`` unless the key exists already."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(temp, 0o444)  # stored objects are immutable; guard against stray edits
            os.link(temp, target)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            raise BackendError(f"Cannot write {target}: {exc}") from exc
        finally:
            temp.unlink(missing_ok=True)

    def put_file(self, key: str, source: Path) -> bool:
        if self.exists(key):
            return False
        fd, temp = self.temp_file()
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return self.commit_temp(key, temp)

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
