"""Byte store on any fsspec filesystem (S3, GCS, Azure, memory, ...).

Object stores make a single PUT atomic (an object appears whole or not at all), so
objects are uploaded straight to their key; existence is checked first so identical
content is never uploaded twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from driftline.core.artifacts.bytestore import Capabilities
from driftline.errors import BackendError, NotFoundError

__all__ = ["FsspecByteStore"]


class FsspecByteStore:
    """A :class:`~driftline.core.artifacts.ByteStore` over an fsspec URL such as ``s3://bucket/x``."""

    # fsspec files seek (a ranged GET on object stores); nothing is a local file.
    capabilities = Capabilities(ranged_reads=True)

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec

        self.url = url.rstrip("/")
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.url, **storage_options)
        except (ImportError, ValueError) as exc:
            raise BackendError(
                f"Cannot open artifact store {url!r}: {exc} "
                "(for s3:// install the extra: pip install 'driftline[s3]')"
            ) from exc

    def _path(self, key: str) -> str:
        return f"{self.base}/{key}"

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def size(self, key: str) -> int:
        try:
            return int(self.fs.size(self._path(key)))
        except FileNotFoundError:
            raise NotFoundError(f"No object {key!r} in {self.url}") from None

    def modified(self, key: str) -> float:
        try:
            stamp = self.fs.modified(self._path(key))
        except FileNotFoundError:
            raise NotFoundError(f"No object {key!r} in {self.url}") from None
        return float(stamp.timestamp())

    def put_file(self, key: str, source: Path) -> bool:
        if self.exists(key):
            return False
        self.fs.put_file(str(source), self._path(key))
        return True

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self.fs.open(self._path(key), "rb")  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise NotFoundError(f"No object {key!r} in {self.url}") from None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(key))

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix else self.base
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return
        for path in found:
            yield path[len(self.base) + 1 :]

    def local_path(self, key: str) -> Path | None:
        return None
