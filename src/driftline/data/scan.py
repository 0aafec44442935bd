"""Turning files on disk into stored objects: listing, a stat cache, parallel ingestion.

- Large files are copied into the store in the kernel and hashed in streaming chunks
  (never whole in memory) on a thread pool: BLAKE3, hashlib and file I/O release the
  GIL. Meanwhile one thread reads, hashes and appends the small files (up to 1 MiB) to a
  pack, since creating 10,000 files costs more than writing their bytes (see
  :mod:`driftline.core.artifacts.packs`), and more threads on them only contend.
- A stat cache remembers ``(relative path, inode, mtime_ns, size) -> digest`` per source
  folder, so committing unchanged data again reads no file at all. It is a small SQLite
  file in the workspace (local to this machine, like git's index), separate from the
  metadata database, which may be a shared PostgreSQL.
- It also remembers, per source folder, a fingerprint of the whole listing (every
  file's path, inode, mtime and size) with the manifest those files made. A re-commit
  whose listing has that fingerprint knows its manifest without loading the per-file
  rows, reading the manifest or looking at the store: what ``list_files`` costs is then
  most of an unchanged re-commit (a fresh ``driftline data commit`` process pays no
  warm-up for the rest).
- A file modified less than :data:`RACY_SECONDS` before it was hashed is not cached:
  a write in the same timestamp tick could otherwise go unnoticed (git's "racy" case).
  A listing holding such a file gets no fingerprint.
- Data objects are not fsynced one by one (10,000 small files would cost seconds);
  manifests and metadata are. An object torn by a power loss fails hash verification on
  its next read instead of being served.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from driftline.core.artifacts import ContentStore
from driftline.core.artifacts.paths import validate_listed_paths
from driftline.data.models import ManifestEntry
from driftline.errors import InvalidArgumentError

__all__ = ["SourceFile", "StatCache", "ingest", "list_files", "listing_fingerprint"]

RACY_SECONDS = 2.0
Progress = Callable[[int, int], None]
"""Called with ``(bytes done, bytes in all)`` as files are ingested."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to commit: its path inside the version and what ``stat`` said about it."""

    path: str
    location: str  # a plain string: Path objects cost more than the stat on 10,000s of files
    inode: int
    mtime_ns: int
    size: int


def list_files(source: Path) -> list[SourceFile]:
    """Every regular file under ``source`` (or ``source`` itself), sorted by path.

    Symbolic links to files are followed; links to folders are not (they could loop).
    """
    if not source.exists():
        raise InvalidArgumentError(f"Cannot commit {source}: no such file or folder")
    if source.is_file():
        st = source.stat()
        return [SourceFile(source.name, str(source), st.st_ino, st.st_mtime_ns, st.st_size)]
    files = _walk(str(source))
    if not files:
        raise InvalidArgumentError(f"Cannot commit {source}: the folder holds no files")
    validate_listed_paths([f.path for f in files])
    files.sort(key=lambda f: f.path)
    return files


def _walk(root: str) -> list[SourceFile]:
    """The regular files under ``root``, in listing order (a loop, not recursion: it
    runs once per file of folders holding 10,000s)."""
    files = []
    folders = [(root, "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append((entry.path, f"{prefix}{entry.name}/"))
                    elif entry.is_file():
                        st = entry.stat()
                        files.append(
                            SourceFile(
                                prefix + entry.name,
                                entry.path,
                                st.st_ino,
                                st.st_mtime_ns,
                                st.st_size,
                            )
                        )
        except PermissionError as exc:
            raise InvalidArgumentError(f"Cannot read folder {folder}: permission denied") from exc
    return files


def listing_fingerprint(files: list[SourceFile]) -> str | None:
    """A digest of what ``stat`` said about every file of a sorted listing.

    ``None`` when a file is racy (modified less than :data:`RACY_SECONDS` ago): a write
    in the same timestamp tick would leave the fingerprint unchanged.
    """
    racy_after = time.time_ns() - int(RACY_SECONDS * 1e9)
    if any(f.mtime_ns >= racy_after for f in files):
        return None
    text = "\n".join(f"{f.path}\0{f.inode}\0{f.mtime_ns}\0{f.size}" for f in files)
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=24).hexdigest()


class StatCache:
    """``(source root, relative path) -> (inode, mtime_ns, size, digest)`` in a SQLite file.

    What a process loaded stays in memory for its next commits of the same root. Another
    process's additions are then not seen, which costs at most re-hashing a file: every
    row is a fact about one ``(inode, mtime_ns, size)``, never wrong for it.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._loaded: dict[str, dict[str, tuple[int, int, int, str]]] = {}
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        from driftline.core.metadata.engine import enable_wal  # imports SQLAlchemy: lazily

        self._conn.execute("PRAGMA busy_timeout=5000")
        enable_wal(self._conn)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS stat_cache (root TEXT NOT NULL, path TEXT NOT NULL, "
            "inode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, "
            "digest TEXT NOT NULL, PRIMARY KEY (root, path))"
        )
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS listings (root TEXT PRIMARY KEY, "
            "fingerprint TEXT NOT NULL, manifest TEXT NOT NULL)"
        )

    def load(self, root: str) -> dict[str, tuple[int, int, int, str]]:
        """Everything cached for one source root (a shared dict: do not modify it)."""
        with self._lock:
            loaded = self._loaded.get(root)
            if loaded is None:
                rows = self._conn.execute(
                    "SELECT path, inode, mtime_ns, size, digest FROM stat_cache WHERE root = ?",
                    (root,),
                ).fetchall()
                loaded = self._loaded[root] = {p: (i, m, s, d) for p, i, m, s, d in rows}
            return loaded

    def store(self, root: str, rows: list[tuple[str, int, int, int, str]]) -> None:
        """Remember ``(path, inode, mtime_ns, size, digest)`` rows for a root."""
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "INSERT OR REPLACE INTO stat_cache VALUES (?, ?, ?, ?, ?, ?)",
                [(root, *row) for row in rows],
            )
            self._conn.execute("COMMIT")
            loaded = self._loaded.get(root)
            if loaded is not None:
                loaded.update((path, (i, m, s, d)) for path, i, m, s, d in rows)

    def find_manifest(self, root: str, fingerprint: str) -> str | None:
        """The manifest digest last committed from ``root`` if its listing was ``fingerprint``."""
        with self._lock:
            row = self._conn.execute(
                "SELECT manifest FROM listings WHERE root = ? AND fingerprint = ?",
                (root, fingerprint),
            ).fetchone()
        return None if row is None else str(row[0])

    def store_manifest(self, root: str, fingerprint: str, manifest: str) -> None:
        """Remember that the listing ``fingerprint`` of ``root`` made ``manifest``."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO listings VALUES (?, ?, ?)", (root, fingerprint, manifest)
            )

    def close(self) -> None:
        """Close the cache file."""
        self._conn.close()


def ingest(
    files: list[SourceFile],
    content: ContentStore,
    *,
    cache: StatCache | None = None,
    cache_root: str = "",
    workers: int | None = None,
    progress: Progress | None = None,
    referenced: Callable[[], Collection[str]] | None = None,
) -> list[ManifestEntry]:
    """Store every file's bytes (skipping ones the stat cache vouches for); return entries.

    A stat-cache hit is trusted only if its object is still stored (an object of a commit
    that never landed is swept by gc), except for the digests ``referenced()`` returns:
    objects a version refers to, which gc never sweeps.
    """
    known = cache.load(cache_root) if cache is not None else {}
    # One pass over 10,000s of files: what the stat cache vouches for becomes an entry.
    entries: list[ManifestEntry | None] = []
    for file in files:
        hit = known.get(file.path)
        if (
            hit is not None
            and hit[0] == file.inode
            and hit[1] == file.mtime_ns
            and hit[2] == file.size
        ):
            entries.append(ManifestEntry(path=file.path, digest=hit[3], size=file.size))
        else:
            entries.append(None)
    # Local stores are cheap to double-check in bulk; for remote ones the cache is trusted.
    if known and content.backend.capabilities.local_paths:
        hits = {e.digest for e in entries if e is not None}
        vouched = hits.intersection(referenced()) if referenced is not None else set()
        still = vouched | content.stored(hits - vouched)
        entries = [e if e is not None and e.digest in still else None for e in entries]
    todo_at = [i for i, entry in enumerate(entries) if entry is None]
    todo = [files[i] for i in todo_at]
    total = sum(f.size for f in todo)
    done = 0
    lock = threading.Lock()
    report = progress or (lambda _done, _total: None)
    report(0, total)

    def stored(size: int) -> None:
        nonlocal done
        with lock:
            done += size
            report(done, total)

    racy_after = time.time_ns() - int(RACY_SECONDS * 1e9)
    # Local stores pack small files; a server is asked once which objects it lacks.
    blobs = content.put_files(
        [f.location for f in todo],
        sync=False,
        workers=workers or min(8, 2 * (os.cpu_count() or 2)),
        on_stored=stored,
    )
    cacheable = []
    for i, file, blob in zip(todo_at, todo, blobs, strict=True):
        if blob.size != file.size:
            raise InvalidArgumentError(f"{file.location} changed while it was being committed")
        entries[i] = ManifestEntry(path=file.path, digest=blob.digest, size=file.size)
        if file.mtime_ns < racy_after:
            cacheable.append((file.path, file.inode, file.mtime_ns, file.size, blob.digest))
    if cache is not None:
        cache.store(cache_root, cacheable)
    return cast(list[ManifestEntry], entries)
