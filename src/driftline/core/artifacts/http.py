"""Byte store on a driftline server's content-object API: the artifact store of remote mode.

``ContentStore(HttpByteStore(client), algorithm)`` behaves like a local content store
whose objects live on the server (``/api/v1/artifacts/...``, see
``driftline.server.routes.artifacts``):

- Keys are the content store's digest keys (``blake3/ab/cdef...``); they map one to one
  to digests (``blake3:abcdef...``), which is what the server's routes take. Any other
  key is refused with :class:`~driftline.errors.InvalidArgumentError`.
- Nothing is sent that the server has: ``put_file`` asks first (one ``HEAD``, or nothing
  when a bulk :meth:`HttpByteStore.existing` call just said the object is missing), and
  :meth:`HttpByteStore.existing` asks for thousands of digests in one request, which
  :meth:`ContentStore.stored` and :meth:`ContentStore.put_files` use.
- Uploads stream from the file (never whole in memory). Files up to ``chunk_size`` go in
  one ``PUT``; larger ones in chunks of ``chunk_size`` that the server appends to a
  resumable upload: a chunk that fails is sent again from the offset the server reports,
  and an upload interrupted for good (the process died) resumes where the server stands
  the next time the same content is stored.
- Downloads stream: :meth:`HttpByteStore.open_read` returns a file-like object that reads
  the response as it arrives and, if the connection breaks, continues with a ``Range``
  request from the byte it had reached. :class:`ContentStore` verifies the bytes against
  the digest, so an object corrupted on the server raises
  :class:`~driftline.errors.IntegrityError` on the client.
- ``delete`` and ``iter_keys`` are refused: objects on a server are removed by its own
  garbage collection (``driftline gc`` where the server's store is), which sees every
  reference; a client sees only its own and must not delete for a team.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from driftline.core.artifacts import batch
from driftline.core.artifacts.bytestore import Capabilities
from driftline.core.backoff import backoff
from driftline.core.hashing import parse_digest
from driftline.errors import (
    BackendError,
    ConflictError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
)

if TYPE_CHECKING:
    import httpx

    from driftline.api.client import ApiClient

__all__ = ["DEFAULT_CHUNK_SIZE", "HttpByteStore"]

DEFAULT_CHUNK_SIZE = 32 << 20
# Digests per "missing" request (the server accepts up to 10,000).
_MISSING_BATCH = 5_000
# Pieces a request body is streamed from the file in.
_READ_SIZE = 1 << 20
# How long to wait for the server to verify and store a large upload (see _complete).
_COMPLETE_PATIENCE = 3600.0
# Remembered "the server lacks this" answers, so a put right after a bulk check skips its HEAD.
_MAX_HINTS = 100_000


class HttpByteStore:
    """A :class:`~driftline.core.artifacts.ByteStore` on a driftline server (remote mode).

    Args:
        client: The client of the server (its token, retries and connection pools).
        chunk_size: Files larger than this are uploaded in chunks of this size
            (resumable); smaller ones in one request. Keep it well under the server's
            upload limit.
        retries: Extra attempts for a failed upload or a broken-off download, each
            resuming from what the server already has.

    Example:
        >>> client = ApiClient("http://127.0.0.1:8080")              # doctest: +SKIP
        >>> store = ContentStore(HttpByteStore(client), "blake3")    # doctest: +SKIP
        >>> blob = store.put_file("model.pkl")                       # doctest: +SKIP
    """

    # One round trip per existence check or upload is what this store avoids.
    capabilities = Capabilities(bulk_existence=True, batch_upload=True)

    def __init__(
        self, client: ApiClient, *, chunk_size: int = DEFAULT_CHUNK_SIZE, retries: int = 5
    ) -> None:
        if chunk_size < 1:
            raise InvalidArgumentError(f"chunk_size must be positive, not {chunk_size}")
        self.client = client
        self.url = client.base_url
        self.chunk_size = chunk_size
        self.retries = retries
        self._missing_hints: set[str] = set()
        self._lock = threading.Lock()

    # -- existence ----------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        digest = _digest(key)
        try:
            self._head(digest)
        except NotFoundError:
            self._hint_missing([digest])
            return False
        return True

    def existing(self, keys: Collection[str]) -> set[str]:
        """The subset of ``keys`` the server stores, asked in batches of thousands."""
        by_digest = {_digest(key): key for key in keys}
        digests = list(by_digest)
        found: set[str] = set()
        for start in range(0, len(digests), _MISSING_BATCH):
            batch = digests[start : start + _MISSING_BATCH]
            answer = self.client.post_json("artifacts/missing", {"digests": batch}, idempotent=True)
            missing = set(answer["missing"])
            self._hint_missing(missing)
            found.update(by_digest[digest] for digest in batch if digest not in missing)
        return found

    def size(self, key: str) -> int:
        return int(self._head(_digest(key), key).headers["content-length"])

    def modified(self, key: str) -> float:
        return float(self._head(_digest(key), key).headers["x-driftline-modified"])

    def _head(self, digest: str, key: str | None = None) -> httpx.Response:
        try:
            return self.client.request("HEAD", f"artifacts/objects/{digest}")
        except NotFoundError:
            raise NotFoundError(f"No object {key or digest!r} on the server {self.url}") from None

    def _hint_missing(self, digests: Collection[str]) -> None:
        with self._lock:
            if len(self._missing_hints) + len(digests) > _MAX_HINTS:
                self._missing_hints.clear()
            self._missing_hints.update(digests)

    def _known_missing(self, digest: str) -> bool:
        """Whether an answer just said the server lacks ``digest`` (consumes the answer)."""
        with self._lock:
            if digest in self._missing_hints:
                self._missing_hints.discard(digest)
                return True
            return False

    # -- uploads ------------------------------------------------------------------------

    def put_file(self, key: str, source: Path) -> bool:
        """Upload ``source`` as the object ``key`` unless the server has it; return whether sent.

        Raises:
            IntegrityError: the server found that the bytes do not hash to the key's
                digest (the file changed after it was hashed); nothing was stored.
        """
        digest = _digest(key)
        source = Path(source)
        if not self._known_missing(digest):
            if self.exists(key):
                return False
            self._known_missing(digest)  # exists() just noted the answer: drop it
        size = source.stat().st_size
        try:
            if size > self.chunk_size:
                self._put_chunked(digest, source, size)
            else:
                self._put_whole(digest, source, size)
        except IntegrityError as exc:
            raise IntegrityError(f"Upload of {source} refused: {exc}") from None
        return True

    def put_batch(self, objects: Sequence[tuple[str, Path]]) -> None:
        """Upload small files in one request (see :mod:`driftline.core.artifacts.batch`).

        Raises:
            IntegrityError: a file's bytes no longer hash to its digest (it changed
                after it was hashed); the server stored nothing of the batch.
        """
        contents = []
        for digest, source in objects:
            with open(source, "rb") as handle:
                contents.append((digest, handle.read(batch.MAX_OBJECT + 1)))
        body = batch.encode(contents)
        try:
            # A bytes body is retried by the client; storing the same objects twice is
            # harmless (content-addressed), so the POST is safe to repeat.
            self.client.request(
                "POST",
                "artifacts/batches",
                content=body,
                headers=_body_headers(len(body)),
                idempotent=True,
            )
        except IntegrityError as exc:
            names = ", ".join(str(source) for _digest, source in objects[:3])
            raise IntegrityError(f"Upload of {names}... refused: {exc}") from None

    def _put_whole(self, digest: str, source: Path, size: int) -> None:
        for attempt in range(self.retries + 1):
            try:
                self.client.request(
                    "PUT",
                    f"artifacts/objects/{digest}",
                    content=_file_body(source, 0, size),
                    headers=_body_headers(size),
                )
                return
            except BackendError:
                # A streamed body is not replayed by the client: retry here, from the file.
                if attempt == self.retries:
                    raise
                backoff(attempt)

    def _put_chunked(self, digest: str, source: Path, size: int) -> None:
        state: dict[str, Any] | None = None
        failures = 0
        while True:
            try:
                if state is None:
                    state = self.client.post_json(
                        "artifacts/uploads", {"digest": digest, "size": size}, idempotent=True
                    )
                if state["stored"]:
                    return  # someone else stored the same content meanwhile
                upload = f"artifacts/uploads/{state['upload_id']}"
                offset = int(state["offset"])
                while offset < size:
                    length = min(self.chunk_size, size - offset)
                    response = self.client.request(
                        "PUT",
                        upload,
                        params={"offset": offset},
                        content=_file_body(source, offset, length),
                        headers=_body_headers(length),
                    )
                    offset = int(response.json()["offset"])
                    failures = 0  # progress: a long upload may survive many glitches
                if self._complete(upload, size):
                    return
                state = self._upload_state(upload)  # bytes went missing: send them
            except (BackendError, ConflictError, NotFoundError) as exc:
                failures += 1
                if failures > self.retries:
                    raise
                if not isinstance(exc, NotFoundError):
                    backoff(failures - 1)
                # Ask where the server stands; an upload that vanished (completed by a
                # client sending the same bytes, or swept) begins again.
                if isinstance(exc, NotFoundError) or state is None:
                    state = None
                else:
                    # Unreachable server: keep the old state; a stale offset gets a 409.
                    with contextlib.suppress(BackendError):
                        state = self._upload_state(upload)

    def _complete(self, upload: str, size: int) -> bool:
        """Have the server verify and store a fully sent upload; ``False`` if bytes are missing.

        Completing hashes the whole object and, on S3 and the like, copies it there: for
        a large object that may outlast a request's timeout. A retry then finds the
        upload busy, and waits for it (with patience, not the small retry budget).
        """
        deadline = time.monotonic() + _COMPLETE_PATIENCE
        attempt = 0
        while True:
            try:
                self.client.post_json(f"{upload}/complete", idempotent=True)
                return True
            except (BackendError, ConflictError):
                if time.monotonic() > deadline:
                    raise
                state = self._upload_state(upload)
                if state is None:
                    # Gone: completed meanwhile (the next begin says "stored") or swept.
                    raise NotFoundError(f"Upload {upload} ended while completing") from None
                if int(state["offset"]) < size:
                    return False
                backoff(min(attempt, 6))
                attempt += 1

    def _upload_state(self, upload: str) -> dict[str, Any] | None:
        """The server's state of an upload; ``None`` when it no longer has it."""
        try:
            answer: dict[str, Any] = self.client.get_json(upload)
        except NotFoundError:
            return None
        return answer

    # -- downloads ----------------------------------------------------------------------

    def open_read(self, key: str) -> BinaryIO:
        """Stream the object; reading resumes with a ``Range`` request if the link breaks."""
        digest = _digest(key)
        try:
            return _ObjectReader(self.client, digest, self.retries)  # type: ignore[return-value]
        except NotFoundError:
            raise NotFoundError(f"No object {key!r} on the server {self.url}") from None

    # -- what a client does not do -------------------------------------------------------

    def delete(self, key: str) -> None:
        """Refused: the server's garbage collection removes objects (see the module docstring)."""
        raise InvalidArgumentError(
            f"Objects on the driftline server {self.url} are removed by its garbage "
            "collection, not by clients: run `driftline gc` where the server's store is"
        )

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Refused: a client does not list a server's objects (use ``existing`` for a set)."""
        raise InvalidArgumentError(
            f"Listing the objects of the driftline server {self.url} is not offered to "
            "clients; ask about specific digests (ContentStore.stored) instead"
        )

    def local_path(self, key: str) -> Path | None:
        """Always ``None``: the bytes are on the server."""
        return None


class _ObjectReader(io.RawIOBase):
    """Reads an object's response body as it arrives; resumes broken transfers by Range."""

    def __init__(self, client: ApiClient, digest: str, retries: int) -> None:
        super().__init__()
        self._client = client
        self._digest = digest
        self._retries = retries
        self._failures = 0
        self._position = 0
        self._size: int | None = None
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] = iter(())
        self._pending = memoryview(b"")
        self._open()

    def _open(self) -> None:
        start = self._position
        headers = {"Range": f"bytes={start}-"} if start else None
        response = self._client.request(
            "GET", f"artifacts/objects/{self._digest}", headers=headers, stream=True
        )
        if start:
            expected = f"bytes {start}-"
            if response.status_code != 206 or not response.headers.get(
                "content-range", ""
            ).startswith(expected):
                response.close()
                raise BackendError(
                    f"The server did not resume {self._digest} at byte {start} "
                    f"(HTTP {response.status_code})"
                )
        elif "content-length" in response.headers:
            self._size = int(response.headers["content-length"])
        self._response = response
        self._chunks = response.iter_raw()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import httpx

        wanted = len(buffer)
        if wanted == 0:
            return 0
        while not self._pending:
            try:
                chunk = next(self._chunks, b"")
            except httpx.TransportError as exc:
                self._resume(exc)
                continue
            if not chunk:
                if self._size is None or self._position >= self._size:
                    return 0  # end of object
                self._resume(None)  # the body ended early: fetch the rest
                continue
            self._pending = memoryview(chunk)
        taken = min(wanted, len(self._pending))
        buffer[:taken] = self._pending[:taken]
        self._pending = self._pending[taken:]
        self._position += taken
        return taken

    def _resume(self, cause: Exception | None) -> None:
        self._failures += 1
        if self._failures > self._retries:
            raise BackendError(
                f"Download of {self._digest} broke off at byte {self._position} of "
                f"{self._size}: {cause or 'the response ended early'}"
            )
        self._close_response()
        backoff(self._failures - 1)
        self._open()

    def _close_response(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def close(self) -> None:
        try:
            self._close_response()
        finally:
            super().close()


def _digest(key: str) -> str:
    """``blake3/ab/cdef...`` -> ``blake3:abcdef...`` (refusing keys that are not digests)."""
    parts = key.split("/") if isinstance(key, str) else []
    digest = f"{parts[0]}:{parts[1]}{parts[2]}" if len(parts) == 3 and len(parts[1]) == 2 else ""
    try:
        parse_digest(digest)
    except InvalidArgumentError:
        raise InvalidArgumentError(
            f"A driftline server stores content-addressed objects only; {key!r} is not the "
            "key of a digest ('<algorithm>/<2 hex>/<62 hex>')"
        ) from None
    return digest


def _file_body(source: Path, offset: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``source`` from ``offset``, in pieces (never all in memory)."""
    with open(source, "rb") as stream:
        stream.seek(offset)
        remaining = length
        while remaining > 0:
            data = stream.read(min(_READ_SIZE, remaining))
            if not data:
                raise InvalidArgumentError(
                    f"{source} shrank while it was being uploaded; store it again"
                )
            remaining -= len(data)
            yield data


def _body_headers(length: int) -> dict[str, str]:
    return {"Content-Length": str(length), "Content-Type": "application/octet-stream"}
