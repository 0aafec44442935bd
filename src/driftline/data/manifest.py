"""Version manifests: the sorted ``(path, digest, size)`` listing of a version.

A manifest is stored in the content store as canonical JSON, so its digest *is* the
version id. Up to :data:`SHARD_THRESHOLD` files the listing is inline; larger
listings are split by a CRC of the path into a power of two of shards holding about
:data:`SHARD_TARGET` entries each (at most 256), and the root lists the shards. Shards
are content-addressed too, so a one-file change in a million-file folder writes one
shard of ~4,000 entries and a small root, not the whole listing; and a 10,000-file
folder writes 4 shards, not 256 tiny files (creating a file is the dominant cost of
committing many small files).

Every path a manifest lists is written into a folder by checkouts and loads, so paths
are checked where a manifest is written (:func:`write_manifest`), where one a client
uploaded is accepted (:func:`check_manifest`) and again where one is read
(:func:`read_manifest`): see :func:`~driftline.core.artifacts.paths.validate_path_set`.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from driftline.core.artifacts import ContentStore
from driftline.core.artifacts.paths import validate_path_set
from driftline.core.hashing import hash_bytes, parse_digest
from driftline.data.models import ManifestEntry
from driftline.errors import IntegrityError, InvalidArgumentError

__all__ = [
    "FORMAT",
    "SHARD_THRESHOLD",
    "Manifest",
    "check_manifest",
    "read_manifest",
    "shard_digests",
    "write_manifest",
]

FORMAT = "driftline.manifest/1"
SHARD_THRESHOLD = 1000
SHARD_TARGET = 4096
_MAX_SHARDS = 256


class Manifest:
    """A loaded manifest: entries sorted by path, plus totals."""

    __slots__ = ("by_path", "digest", "entries", "size")

    def __init__(self, digest: str, entries: list[ManifestEntry]) -> None:
        self.digest = digest
        self.entries = entries
        self.size = sum(e.size for e in entries)
        self.by_path = {e.path: e for e in entries}

    def __len__(self) -> int:
        return len(self.entries)

    def digests(self) -> set[str]:
        """Every object digest the files of this version point to."""
        return {e.digest for e in self.entries}


def _canonical(document: dict[str, object]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _shard_count(files: int) -> int:
    count = 1
    while count < _MAX_SHARDS and count * SHARD_TARGET < files:
        count *= 2
    return count


def _shard_of(path: str, count: int) -> str:
    return f"{zlib.crc32(path.encode()) & (count - 1):02x}"


def write_manifest(
    entries: Iterable[ManifestEntry], content: ContentStore
) -> tuple[str, list[str]]:
    """Store a manifest; return its digest (the version id) and the digests of its shards.

    Identical listings give identical bytes, hence identical ids; already-stored shards
    are not written again.

    Raises:
        InvalidArgumentError: A path is unsafe, or two paths would be written as one file
            (see :func:`~driftline.core.artifacts.paths.validate_path_set`).
    """
    ordered = sorted(entries, key=lambda e: e.path)
    validate_path_set([e.path for e in ordered], portable=True)
    rows = [[e.path, e.digest, e.size] for e in ordered]
    totals = {"format": FORMAT, "files": len(rows), "size": sum(e.size for e in ordered)}
    if len(rows) <= SHARD_THRESHOLD:
        return _put(content, {**totals, "entries": rows}), []
    shards: dict[str, list[list[object]]] = {}
    count = _shard_count(len(rows))
    for row in rows:
        shards.setdefault(_shard_of(str(row[0]), count), []).append(row)
    listing: list[tuple[str, str, int]] = []
    for prefix in sorted(shards):
        digest = _put(content, {"format": FORMAT, "shard": prefix, "entries": shards[prefix]})
        listing.append((prefix, digest, len(shards[prefix])))
    return _put(content, {**totals, "shards": listing}), [d for _, d, _ in listing]


def _put(content: ContentStore, document: dict[str, object]) -> str:
    data = _canonical(document)
    digest = hash_bytes(data, content.algorithm)
    if not content.exists(digest):
        # Unsynced, like the data objects of a commit (see ContentStore.put_file): a shard
        # torn by a power loss fails its hash check when read and is rewritten by the next
        # commit of the same files; it is never served as data. A sharded commit writes
        # up to 257 of these, and an fsync each cost more than the rest of its metadata.
        content.put_bytes(data, sync=False)
    return digest


def read_manifest(digest: str, content: ContentStore) -> Manifest:
    """Load (and verify) a manifest and its shards. Manifests are immutable: cached.

    Raises:
        IntegrityError: The object is no manifest, is malformed, or lists a path that
            could not be written safely into one folder (an unsafe path, or two paths
            naming one file); nothing of it is returned, so nothing of it is written.
    """
    return _read_cached(digest, content)


def check_manifest(digest: str, content: ContentStore) -> Manifest:
    """A manifest a client uploaded and now names in a version: read it, or refuse it.

    Besides what :func:`read_manifest` checks, no two paths may differ only by case.

    Raises:
        InvalidArgumentError: naming what is wrong (an unsafe path, say); the caller
            records nothing.
    """
    try:
        manifest = read_manifest(digest, content)
        validate_path_set([e.path for e in manifest.entries], portable=True)
    except (IntegrityError, InvalidArgumentError) as exc:
        raise InvalidArgumentError(f"Manifest {digest} cannot be recorded: {exc}") from None
    return manifest


@lru_cache(maxsize=64)
def _read_cached(digest: str, content: ContentStore) -> Manifest:
    root = _load(digest, content, "manifest")
    try:
        if "entries" in root:
            rows = root["entries"]
        else:
            rows = []
            for _prefix, shard_digest, _count in root["shards"]:
                shard = _load(shard_digest, content, f"manifest shard of {digest}")
                rows.extend(shard["entries"])
            rows.sort(key=lambda row: row[0])
        entries = [ManifestEntry(path=p, digest=d, size=s) for p, d, s in rows]
        expected = root["files"]
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"Manifest {digest} is malformed ({exc!r})") from None
    if len(entries) != expected:
        raise IntegrityError(f"Manifest {digest} lists {len(entries)} files, expected {expected}")
    _check_entries(digest, entries)
    return Manifest(digest, entries)


def _check_entries(digest: str, entries: list[ManifestEntry]) -> None:
    """Refuse a manifest whose entries could not be materialized safely (defence in depth:
    one written by driftline never holds such entries, but one can be uploaded)."""
    if not all(
        type(e.path) is str and type(e.digest) is str and type(e.size) is int and e.size >= 0
        for e in entries
    ):
        raise IntegrityError(
            f"Manifest {digest} is malformed: an entry is not (path, digest, size)"
        )
    try:
        for object_digest in {e.digest for e in entries}:
            parse_digest(object_digest)
        validate_path_set([e.path for e in entries], portable=False)
    except InvalidArgumentError as exc:
        raise IntegrityError(
            f"Manifest {digest} is refused, as nothing of it may be written: {exc}"
        ) from None


def shard_digests(digest: str, content: ContentStore) -> list[str]:
    """The shard objects of a manifest (empty for an inline one), for GC and remotes."""
    root = _load(digest, content, "manifest")
    try:
        return [d for _, d, _ in root.get("shards", [])]
    except (TypeError, ValueError) as exc:
        raise IntegrityError(f"Manifest {digest} is malformed ({exc!r})") from None


def _load(digest: str, content: ContentStore, what: str) -> dict[str, Any]:
    try:
        document = json.loads(content.read_bytes(digest, name=what))
    except ValueError:  # not JSON, or not UTF-8
        document = None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise IntegrityError(f"Object {digest} is not a driftline manifest")
    return document
