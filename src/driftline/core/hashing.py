"""Content hashing. A digest string carries its algorithm: ``blake3:<hex>`` or ``sha256:<hex>``.

BLAKE3 is the default: it hashes at 1+ GiB/s on one core here, several times sha256,
and the algorithm in every address means a future change needs no migration.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from driftline.errors import InvalidArgumentError

__all__ = [
    "ALGORITHMS",
    "CHUNK_SIZE",
    "Hasher",
    "digest_key",
    "hash_bytes",
    "hash_file",
    "hash_files",
    "hash_stream",
    "new_hasher",
    "parse_digest",
]

ALGORITHMS = ("blake3", "sha256")
CHUNK_SIZE = 1 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MMAP_THRESHOLD = 8 << 20


class Hasher(Protocol):
    """The incremental-hash interface hashlib and blake3 share."""

    def update(self, data: bytes | memoryview, /) -> Any: ...

    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str) -> Hasher:
    """Return a fresh incremental hasher for ``algorithm``."""
    if algorithm == "blake3":
        import blake3

        return blake3.blake3()
    if algorithm == "sha256":
        return hashlib.sha256()
    raise InvalidArgumentError(
        f"Unknown hash algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}"
    )


def hash_bytes(data: bytes, algorithm: str = "blake3") -> str:
    """Digest string of ``data``."""
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return f"{algorithm}:{hasher.hexdigest()}"


def hash_stream(stream: BinaryIO, algorithm: str = "blake3") -> tuple[str, int]:
    """Digest string and byte count of everything left in ``stream``, read in chunks."""
    hasher = new_hasher(algorithm)
    size = 0
    while chunk := stream.read(CHUNK_SIZE):
        hasher.update(chunk)
        size += len(chunk)
    return f"{algorithm}:{hasher.hexdigest()}", size


def hash_file(path: str | Path, algorithm: str = "blake3") -> tuple[str, int]:
    """Digest string and size of a file, never holding it whole in memory.

    Large files are hashed through a memory map with BLAKE3's own thread pool (all
    cores, no Python loop); small ones, and sha256, stream in chunks.
    """
    size = os.stat(path).st_size
    if algorithm == "blake3" and size >= _MMAP_THRESHOLD:
        import blake3

        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        hasher.update_mmap(path)
        return f"blake3:{hasher.hexdigest()}", size
    with open(path, "rb") as stream:
        return hash_stream(stream, algorithm)


def hash_files(
    paths: Sequence[str | Path], algorithm: str = "blake3", *, workers: int = 4
) -> list[tuple[str, int]]:
    """Digest strings and sizes of many files, in order.

    Files larger than :data:`CHUNK_SIZE` are hashed on ``workers`` threads while the
    calling thread hashes the smaller ones itself. A small file is one read and one
    hash call, and handing it to another thread costs more than that: on a 2-core
    machine 10,000 files of 100 KiB hashed at 9,200 files/s on one thread and at 3,800
    files/s on a pool of 2 or 4.
    """
    from concurrent.futures import ThreadPoolExecutor

    sizes = [os.stat(path).st_size for path in paths]
    large = [i for i, size in enumerate(sizes) if size > CHUNK_SIZE]
    results: list[tuple[str, int]] = [("", 0)] * len(paths)
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="driftline-hash") as pool:
        pending = {i: pool.submit(hash_file, paths[i], algorithm) for i in large}
        for i, size in enumerate(sizes):
            if size <= CHUNK_SIZE:
                results[i] = hash_file(paths[i], algorithm)
        for i, future in pending.items():
            results[i] = future.result()
    return results


def parse_digest(digest: str) -> tuple[str, str]:
    """Split ``"blake3:ab12..."`` into ``("blake3", "ab12...")``, validating both parts."""
    algorithm, sep, hexpart = digest.partition(":")
    if not sep or algorithm not in ALGORITHMS or not _HEX64.fullmatch(hexpart):
        raise InvalidArgumentError(
            f"Malformed content digest {digest!r}; expected '<algorithm>:<64 hex digits>'"
        )
    return algorithm, hexpart


def digest_key(digest: str) -> str:
    """Storage key of a digest: ``blake3/ab/cdef...`` (a two-character fan-out folder)."""
    algorithm, hexpart = parse_digest(digest)
    return f"{algorithm}/{hexpart[:2]}/{hexpart[2:]}"


def key_digest(key: str) -> str | None:
    """The digest a storage key names (the inverse of :func:`digest_key`), or None when
    ``key`` is not an object's key."""
    algorithm, _, rest = key.partition("/")
    fan_out, slash, tail = rest.partition("/")
    if not slash or len(fan_out) != 2:
        return None
    digest = f"{algorithm}:{fan_out}{tail}"
    try:
        parse_digest(digest)
    except InvalidArgumentError:
        return None
    return digest
