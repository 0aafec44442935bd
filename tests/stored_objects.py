"""Test helpers that reach into a local artifact store: tamper with or age one object.

An object may be loose (its own read-only file) or packed (a slice of a pack file);
these helpers act on whichever holds it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from driftline.core.artifacts import ContentStore
from driftline.core.artifacts.local import LocalByteStore
from driftline.core.hashing import digest_key


def where(content: ContentStore, digest: str) -> tuple[Path, int, int]:
    """``(file, offset, size)`` of the object's bytes."""
    backend = content.backend
    assert isinstance(backend, LocalByteStore)
    key = digest_key(digest)
    loose = backend.local_path(key)
    if loose is not None:
        return loose, 0, loose.stat().st_size
    packed = backend.packs.find(key)
    assert packed is not None, f"{digest} is not stored"
    return packed.pack, packed.offset, packed.size


def tamper(content: ContentStore, digest: str) -> None:
    """Flip the object's first byte in place (its size stays the same)."""
    path, offset, _size = where(content, digest)
    os.chmod(path, 0o644)  # objects and packs are read-only
    with open(path, "r+b") as handle:
        handle.seek(offset)
        first = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([first[0] ^ 0xFF]))


def backdate(content: ContentStore, digest: str, seconds: float) -> None:
    """Make the object look ``seconds`` old (for a packed object: its whole pack)."""
    path, _offset, _size = where(content, digest)
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))
