"""The byte-store protocol and the URL-scheme table that picks a backend."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from driftline.errors import InvalidArgumentError

__all__ = [
    "BatchUpload",
    "BulkExistence",
    "ByteStore",
    "open_byte_store",
    "register_byte_store",
]


@runtime_checkable
class ByteStore(Protocol):
    """Keyed, immutable byte objects. Keys are relative POSIX paths.

    Writes are atomic: a reader sees a whole object or none. ``put_file`` never
    overwrites an existing key (content-addressed keys make that safe and cheap).
    """

    url: str

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def size(self, key: str) -> int:
        """Byte size of the object; ``NotFoundError`` if absent."""
        ...

    def modified(self, key: str) -> float:
        """When the object was written (epoch seconds); ``NotFoundError`` if absent."""
        ...

    def put_file(self, key: str, source: Path) -> bool:
        """Store a local file under ``key`` if absent; return whether it was written."""
        ...

    def open_read(self, key: str) -> BinaryIO:
        """Open the object for streaming reads; ``NotFoundError`` if absent."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if present."""
        ...

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Every key under ``prefix``."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The object's own local file, when it has one (enables hard links); else None."""
        ...


@runtime_checkable
class BulkExistence(Protocol):
    """An optional feature of a :class:`ByteStore`: which of many keys exist, in one call.

    A backend declares it by implementing the method. Where a ``stat`` per key is cheap
    (a local folder) it is not needed; where each check is a round trip (a driftline
    server) :meth:`ContentStore.stored <driftline.core.artifacts.ContentStore.stored>`
    and bulk puts ask once instead of once per object.
    """

    def existing(self, keys: Collection[str]) -> set[str]:
        """The subset of ``keys`` that is stored."""
        ...


@runtime_checkable
class BatchUpload(Protocol):
    """An optional feature of a :class:`ByteStore`: store many small files in one call.

    Where each put is a round trip (a driftline server), bulk puts send small objects
    together (see :mod:`driftline.core.artifacts.batch`).
    """

    def put_batch(self, objects: Sequence[tuple[str, Path]]) -> None:
        """Store each ``(digest, file)``: files of at most ``batch.MAX_OBJECT`` bytes,
        the digests their content's."""
        ...


_Factory = Callable[[str], ByteStore]
_SCHEMES: dict[str, _Factory] = {}


def register_byte_store(scheme: str, factory: _Factory) -> None:
    """Make ``factory(url)`` the backend for URLs with ``scheme``."""
    _SCHEMES[scheme] = factory


def _local(url: str) -> ByteStore:
    from driftline.core.artifacts.local import LocalByteStore

    return LocalByteStore(Path(url.removeprefix("file://")))


def _fsspec(url: str) -> ByteStore:
    from driftline.core.artifacts.remote import FsspecByteStore

    return FsspecByteStore(url)


# http(s):// is deliberately not a byte-store scheme: such a URL names a driftline server,
# which is a whole workspace (``uri=``), and its object API only takes content-addressed
# keys, so it cannot serve as an arbitrary byte store (a data remote, say). The workspace
# builds its HttpByteStore itself, with the server's client and token.
register_byte_store("", _local)
register_byte_store("file", _local)
for _scheme in ("s3", "gs", "gcs", "az", "abfs", "memory"):
    register_byte_store(_scheme, _fsspec)


def open_byte_store(url: str | Path, *, setting: str = "artifact root") -> ByteStore:
    """Open the byte store at ``url``: a local path, ``file://``, ``s3://``, ``gs://``, ...

    ``setting`` names what ``url`` is (``"artifact root"``, ``"data remote"``) in the
    error message.

    Raises:
        InvalidArgumentError: for a scheme with no backend (the message lists the known ones).
    """
    url = str(url)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    factory = _SCHEMES.get(scheme)
    if factory is None:
        raise InvalidArgumentError(
            f"Unsupported {setting} {url!r}; known: a local folder, "
            f"{', '.join(f'{s}://' for s in sorted(_SCHEMES) if s)}"
            + (
                ". An http(s):// URL names a driftline server: make it the workspace URI "
                "(DRIFTLINE_URI or --uri), which then stores the bytes too"
                if scheme in ("http", "https")
                else ""
            )
        )
    return factory(url)
