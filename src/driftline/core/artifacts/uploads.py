"""Resumable uploads a server receives: one growing temporary file per object being sent.

An upload is named after the digest it claims (``blake3-<hex>``), so a client that lost
its connection, or crashed, finds its upload again by asking for the same digest, and
two clients sending the same content cooperate instead of racing (their bytes are the
same by definition). All state is on disk, in two files per upload::

    <folder>/<id>.part    the bytes received so far (its size is the upload's offset)
    <folder>/<id>.json    {"digest": ..., "size": ...} the declared object

so every worker process of a server sees the same uploads. Writers take an exclusive
``flock`` on the ``.part`` file (never waiting: a busy upload answers
:class:`~driftline.errors.ConflictError` and the client asks for the offset again).
Completing an upload hashes the whole file and hands it to
:meth:`ContentStore.adopt_file <driftline.core.artifacts.ContentStore.adopt_file>`, which
moves it into a local store or copies it to any other backend (S3, ...).

Uploads nobody touched for ``max_age`` seconds are swept, at most every
``sweep_every`` seconds, when a new upload begins. ``flock`` makes this POSIX-only,
like the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from driftline.core.artifacts.content import Blob, ContentStore
from driftline.core.hashing import parse_digest
from driftline.errors import ConflictError, InvalidArgumentError, NotFoundError

__all__ = ["ChunkWriter", "UploadArea", "UploadStatus", "digest_for_upload", "upload_id_for"]

_UPLOAD_ID = re.compile(r"(blake3|sha256)-[0-9a-f]{64}")
_TEMP_PREFIX = "put-"
DEFAULT_MAX_AGE = 24 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadStatus:
    """Where an upload stands: ``offset`` bytes of ``size`` received."""

    upload_id: str
    digest: str
    size: int
    offset: int


def upload_id_for(digest: str) -> str:
    """The upload id of a digest: ``blake3:ab..`` -> ``blake3-ab..`` (a safe file name)."""
    algorithm, hexpart = parse_digest(digest)
    return f"{algorithm}-{hexpart}"


def digest_for_upload(upload_id: str) -> str:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
        raise InvalidArgumentError(
            f"Malformed upload id {upload_id!r}; expected '<algorithm>-<64 hex digits>' "
            "as returned when the upload began"
        )
    return upload_id.replace("-", ":", 1)


class ChunkWriter:
    """Appends one chunk to an upload while holding its lock; use as a context manager."""

    def __init__(self, fd: int, status: UploadStatus) -> None:
        self._fd = fd
        self._start = status.offset
        self.status = status
        self.offset = status.offset

    def write(self, data: bytes) -> None:
        """Append ``data``; refuse (and drop this chunk) if it passes the declared size."""
        if self.offset + len(data) > self.status.size:
            os.ftruncate(self._fd, self._start)
            self.offset = self._start
            raise InvalidArgumentError(
                f"Chunk runs past the end of upload {self.status.upload_id}: the object was "
                f"declared as {self.status.size} bytes; the chunk was dropped"
            )
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.offset += len(data)

    def close(self) -> None:
        """Release the upload (what was written stays: a later chunk resumes from it)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class UploadArea:
    """The uploads in progress in one folder (see the module docstring).

    Args:
        folder: Where partial uploads live; on a local artifact store, a folder inside it
            (same filesystem), so completing an upload is a rename, not a copy.
        max_age: Seconds after its last write an unfinished upload is swept.
        sweep_every: Least number of seconds between two sweeps.
    """

    def __init__(
        self, folder: Path, *, max_age: float = DEFAULT_MAX_AGE, sweep_every: float = 600.0
    ) -> None:
        self.folder = folder
        self.max_age = max_age
        self.sweep_every = sweep_every
        self._last_sweep = 0.0
        self._sweep_lock = threading.Lock()

    def _paths(self, upload_id: str) -> tuple[Path, Path]:
        return self.folder / f"{upload_id}.part", self.folder / f"{upload_id}.json"

    def begin(self, digest: str, size: int) -> UploadStatus:
        """Start an upload of ``size`` bytes claiming ``digest``, or find the one in progress.

        An upload in progress with another declared size is started over (the same
        digest cannot have two sizes; one of the declarations was wrong).
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidArgumentError(f"Upload size must be a whole number >= 0, not {size!r}")
        upload_id = upload_id_for(digest)
        self.maybe_sweep()
        self.folder.mkdir(parents=True, exist_ok=True)
        part, meta = self._paths(upload_id)
        if _read_meta(meta) == size and part.is_file():
            with contextlib.suppress(NotFoundError):
                return self.status(upload_id)
        for _attempt in range(5):
            fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                _lock(fd, upload_id)
                # Between open and lock the file may have been completed and moved into
                # the store: never truncate what the descriptor now points to.
                if not _same_file(part, fd):
                    continue
                if _read_meta(meta) != size:
                    os.ftruncate(fd, 0)
                    _write_meta(meta, digest, size)
                offset = os.fstat(fd).st_size
            finally:
                os.close(fd)
            return UploadStatus(upload_id=upload_id, digest=digest, size=size, offset=offset)
        raise ConflictError(f"Upload {upload_id} keeps changing under this request; retry")

    def status(self, upload_id: str) -> UploadStatus:
        """Where an upload stands; ``NotFoundError`` if there is none by that id."""
        digest = digest_for_upload(upload_id)
        part, meta = self._paths(upload_id)
        size = _read_meta(meta)
        try:
            offset = part.stat().st_size
        except FileNotFoundError:
            size = None
        if size is None:
            raise NotFoundError(
                f"No upload {upload_id} in progress: it was completed, aborted or swept "
                "as stale; begin it again"
            )
        return UploadStatus(upload_id=upload_id, digest=digest, size=size, offset=offset)

    def open_chunk(self, upload_id: str, offset: int, length: int | None = None) -> ChunkWriter:
        """Lock an upload to append a chunk that starts at ``offset``.

        Raises:
            ConflictError: ``offset`` is not where the upload stands (the message and
                the ``offset`` attribute say where it does), or another request is
                writing to it right now.
            InvalidArgumentError: the chunk (of ``length`` bytes, when known) would run
                past the declared size.
        """
        fd, status = self._locked(upload_id)
        try:
            if offset != status.offset:
                error = ConflictError(
                    f"Upload {upload_id} stands at offset {status.offset}, not {offset}; "
                    f"resume from {status.offset}"
                )
                error.offset = status.offset  # type: ignore[attr-defined]
                raise error
            if length is not None and offset + length > status.size:
                raise InvalidArgumentError(
                    f"A chunk of {length} bytes at offset {offset} runs past the end of "
                    f"upload {upload_id} ({status.size} bytes)"
                )
            os.lseek(fd, 0, os.SEEK_END)
            return ChunkWriter(fd, status)
        except BaseException:
            os.close(fd)
            raise

    def complete(self, upload_id: str, content: ContentStore) -> Blob:
        """Verify a fully received upload and store it; the upload is gone afterwards.

        Raises:
            ConflictError: bytes are still missing (or another request holds the upload).
            IntegrityError: the bytes do not hash to the digest; the upload is discarded.
        """
        fd, status = self._locked(upload_id)
        part, meta = self._paths(upload_id)
        try:
            if status.offset != status.size:
                raise ConflictError(
                    f"Upload {upload_id} is incomplete: {status.offset} of {status.size} bytes "
                    f"received; send the rest from offset {status.offset}"
                )
            try:
                return content.adopt_file(part, status.digest)
            finally:
                # adopt_file consumed the part file, stored or refused: the upload is over.
                meta.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def abort(self, upload_id: str) -> None:
        """Discard an upload (nothing happens if there is none)."""
        digest_for_upload(upload_id)
        part, meta = self._paths(upload_id)
        with contextlib.suppress(NotFoundError):
            fd, _ = self._locked(upload_id)
            try:
                part.unlink(missing_ok=True)
            finally:
                os.close(fd)
        meta.unlink(missing_ok=True)

    def new_temp(self) -> Path:
        """A fresh file name for a one-request upload (swept like uploads if left behind)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.maybe_sweep()
        return self.folder / f"{_TEMP_PREFIX}{uuid.uuid4().hex}.tmp"

    def _locked(self, upload_id: str) -> tuple[int, UploadStatus]:
        """Open and lock an upload's part file; return the fd and the upload's status."""
        self.status(upload_id)  # validates the id, NotFoundError for none
        part, _ = self._paths(upload_id)
        try:
            fd = os.open(part, os.O_RDWR)
        except FileNotFoundError:
            raise NotFoundError(f"No upload {upload_id} in progress; begin it again") from None
        try:
            _lock(fd, upload_id)
            # The file may have been completed (moved away) between open and lock.
            if not _same_file(part, fd):
                raise NotFoundError(f"No upload {upload_id} in progress; begin it again")
            return fd, self.status(upload_id)
        except BaseException:
            os.close(fd)
            raise

    def maybe_sweep(self) -> None:
        """Sweep stale uploads if the last sweep of this process was long enough ago."""
        now = time.monotonic()
        with self._sweep_lock:
            if now - self._last_sweep < self.sweep_every:
                return
            self._last_sweep = now
        self.sweep()

    def sweep(self) -> int:
        """Remove uploads and temporary files untouched for ``max_age`` s; return how many."""
        cutoff = time.time() - self.max_age
        removed = 0
        for path in _entries(self.folder):
            name = path.name
            if name.startswith(_TEMP_PREFIX) and name.endswith(".tmp"):
                if _older(path, cutoff):
                    path.unlink(missing_ok=True)
                    removed += 1
            elif name.endswith(".part") and _UPLOAD_ID.fullmatch(name[:-5]):
                removed += self._sweep_upload(name[:-5], cutoff)
            elif name.endswith(".new"):
                if _older(path, cutoff):
                    path.unlink(missing_ok=True)  # a meta file a crash left half-written
            elif name.endswith(".json") and _UPLOAD_ID.fullmatch(name[:-5]):
                part, meta = self._paths(name[:-5])
                if not part.exists() and _older(meta, cutoff):
                    meta.unlink(missing_ok=True)  # a meta whose part is gone
        return removed

    def _sweep_upload(self, upload_id: str, cutoff: float) -> int:
        part, meta = self._paths(upload_id)
        if not (_older(part, cutoff) and _older(meta, cutoff)):
            return 0
        try:
            fd = os.open(part, os.O_RDWR)
        except FileNotFoundError:
            return 0
        try:
            _lock(fd, upload_id)
        except ConflictError:
            os.close(fd)
            return 0  # someone is writing to it right now: not stale
        try:
            if _same_file(part, fd):
                meta.unlink(missing_ok=True)
                part.unlink(missing_ok=True)
                return 1
            return 0
        finally:
            os.close(fd)


def _lock(fd: int, upload_id: str) -> None:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConflictError(
            f"Another request is writing to upload {upload_id}; ask for its offset and retry"
        ) from None


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _read_meta(meta: Path) -> int | None:
    try:
        size = json.loads(meta.read_bytes())["size"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    return size if isinstance(size, int) else None


def _write_meta(meta: Path, digest: str, size: int) -> None:
    temp = meta.with_name(f"{meta.name}.{uuid.uuid4().hex}.new")
    temp.write_text(json.dumps({"digest": digest, "size": size}))
    os.replace(temp, meta)


def _entries(folder: Path) -> Iterator[Path]:
    try:
        with os.scandir(folder) as found:
            for entry in found:
                yield Path(entry.path)
    except FileNotFoundError:
        return


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False
