"""The byte-store protocol, what a backend declares it can do, and the URL-scheme table
that picks a backend.

What a backend can do beyond :class:`ByteStore` is declared in one place, its
:class:`Capabilities`; code asks ``store.capabilities`` and narrows the store to the
interface a flag promises with :func:`local_objects`, :func:`bulk_existence` or
:func:`batch_upload`, never with ``isinstance`` on a backend class (only the
composition root and this module's scheme table name backends).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast, runtime_checkable

from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from driftline.core.artifacts.packs import PackWriter, StrayPack

__all__ = [
    "BASIC",
    "BatchUpload",
    "BulkExistence",
    "ByteStore",
    "Capabilities",
    "LocalObjects",
    "batch_upload",
    "bulk_existence",
    "local_objects",
    "open_byte_store",
    "packing",
    "register_byte_store",
]


@dataclass(frozen=True)
class Capabilities:
    """What a byte store can do beyond the :class:`ByteStore` protocol.

    Each flag is a promise: a store that sets it implements what the flag names.

    Attributes:
        local_paths: Objects are files under a local folder: the store is a
            :class:`LocalObjects` (temporary files renamed in, cheap ``stat``-based
            checks, stray files that ``gc`` clears).
        packing: Small objects can be appended to pack files
            (:meth:`LocalObjects.packing`); needs ``local_paths``.
        hard_links: :meth:`ByteStore.local_path` returns the object's own file, which a
            checkout may hard-link instead of copying.
        ranged_reads: Streams from :meth:`ByteStore.open_read` can seek, so a byte range
            is read from the stored object (a server answers ``Range`` requests).
        bulk_existence: The store is a :class:`BulkExistence` (one call for many keys).
        batch_upload: The store is a :class:`BatchUpload` (many small files in one call).
    """

    local_paths: bool = False
    packing: bool = False
    hard_links: bool = False
    ranged_reads: bool = False
    bulk_existence: bool = False
    batch_upload: bool = False

    def __post_init__(self) -> None:
        if self.packing and not self.local_paths:
            raise ValueError("packing needs local_paths: packs live in a local folder")


BASIC = Capabilities()
"""A store that does only what :class:`ByteStore` says."""


@runtime_checkable
class ByteStore(Protocol):
    """Keyed, immutable byte objects. Keys are relative POSIX paths.

    Writes are atomic: a reader sees a whole object or none. ``put_file`` never
    overwrites an existing key (content-addressed keys make that safe and cheap).
    """

    url: str
    capabilities: Capabilities

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


class BulkExistence(ByteStore, Protocol):
    """An optional feature of a :class:`ByteStore`: which of many keys exist, in one call.

    A backend declares it with ``Capabilities(bulk_existence=True)``. Where a ``stat``
    per key is cheap (a local folder) it is not needed; where each check is a round
    trip (a driftline server)
    :meth:`ContentStore.stored <driftline.core.artifacts.ContentStore.stored>` and bulk
    puts ask once instead of once per object.
    """

    def existing(self, keys: Collection[str]) -> set[str]:
        """The subset of ``keys`` that is stored."""
        ...


class BatchUpload(ByteStore, Protocol):
    """An optional feature of a :class:`ByteStore`: store many small files in one call
    (declared with ``Capabilities(batch_upload=True)``).

    Where each put is a round trip (a driftline server), bulk puts send small objects
    together (see :mod:`driftline.core.artifacts.batch`).
    """

    def put_batch(self, objects: Sequence[tuple[str, Path]]) -> None:
        """Store each ``(digest, file)``: files of at most ``batch.MAX_OBJECT`` bytes,
        the digests their content's."""
        ...


class LocalObjects(ByteStore, Protocol):
    """A :class:`ByteStore` whose objects are files under a local folder (declared with
    ``Capabilities(local_paths=True)``): what the content store and ``gc`` use to write
    in place, and to clear what an interrupted write left behind."""

    root: Path

    def copy_in(self, source: str | Path, *, sync: bool) -> Path:
        """Copy a file into the store's temporary folder; the copy's path."""
        ...

    def commit_temp(self, key: str, temp: Path, *, read_only: bool = False) -> None:
        """Rename a temporary file of the store to ``key`` (atomic; replaces)."""
        ...

    def write_bytes(self, key: str, data: bytes, *, sync: bool = True) -> None:
        """Store ``data`` under ``key`` as a file of its own (replaces)."""
        ...

    def read_local(self, key: str, *, refresh: bool = True) -> bytes:
        """The object's bytes; ``FileNotFoundError`` if absent."""
        ...

    def touch(self, key: str) -> None:
        """Make the object young again (``gc``'s grace period starts over)."""
        ...

    def packing(self, *, sync: bool = True) -> AbstractContextManager[PackWriter]:
        """A pack that small objects are appended to, published when the block ends
        (only with ``Capabilities(packing=True)``)."""
        ...

    def packed(self, keys: Collection[str]) -> set[str]:
        """The subset of ``keys`` held in packs."""
        ...

    def delete_many(self, keys: Collection[str]) -> None:
        """Remove these objects (each affected pack rewritten once)."""
        ...

    def stale_temps(self, before: float) -> list[Path]:
        """Temporary files older than ``before`` (epoch seconds)."""
        ...

    def stray_packs(self) -> list[StrayPack]:
        """Packs no index publishes (a writer that died), with what they hold."""
        ...


def local_objects(store: ByteStore) -> LocalObjects | None:
    """``store`` as a :class:`LocalObjects` if it declares ``local_paths``, else ``None``."""
    return cast("LocalObjects", store) if store.capabilities.local_paths else None


def packing(store: LocalObjects, *, sync: bool) -> AbstractContextManager[PackWriter | None]:
    """A pack for small objects if the store packs them, else ``None`` (stored loose)."""
    if store.capabilities.packing:
        return store.packing(sync=sync)
    return contextlib.nullcontext(None)


def bulk_existence(store: ByteStore) -> BulkExistence | None:
    """``store`` as a :class:`BulkExistence` if it declares it, else ``None``."""
    return cast("BulkExistence", store) if store.capabilities.bulk_existence else None


def batch_upload(store: ByteStore) -> BatchUpload | None:
    """``store`` as a :class:`BatchUpload` if it declares it, else ``None``."""
    return cast("BatchUpload", store) if store.capabilities.batch_upload else None


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
