"""Verified downloads of stored objects: no corrupt byte is served as if it were good.

Every route that sends an object's bytes (``GET /api/v1/artifacts/objects/{digest}``
and MLflow's ``GET /api/2.0/mlflow-artifacts/artifacts/...``) answers through
:func:`object_response`, which checks the bytes against the object's digest:

- **Small objects** (up to :data:`VERIFY_WHOLE_UP_TO`) are read whole and verified
  before the first byte is sent. A corrupt one is a 500 ``DATA_INTEGRITY`` error (under
  the MLflow prefixes also MLflow's ``error_code``), never its bytes. A ``Range``
  request of a small object is served from the verified whole.
- **Large objects** stream while they are hashed, and the last piece is held back until
  the digest is checked. If it does not match, the stream raises: the ASGI server
  drops the connection before the declared ``Content-Length`` is complete, so every
  HTTP client sees a broken transfer instead of a finished file, and the server logs
  the ``IntegrityError``.
- **Ranged reads of large objects** are served as stored, unverified: a range cannot be
  checked without reading the whole object, which would make each resumed piece of a
  large download cost a full read. driftline's own client (``HttpByteStore``) verifies
  every object it downloads as a whole, resumed or not, and raises ``IntegrityError``.
  Other clients asking for ranges of large objects must check the digest (the
  ``ETag``) themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from starlette.responses import Response, StreamingResponse

from driftline.core.hashing import CHUNK_SIZE, digest_key
from driftline.errors import IntegrityError

if TYPE_CHECKING:
    from driftline.core.artifacts import ContentStore
    from driftline.core.artifacts.content import VerifyingReader

__all__ = ["VERIFY_WHOLE_UP_TO", "object_response"]

# Objects up to this size are verified before the answer starts. Bounded because the
# object is held in memory meanwhile, once per concurrent download.
VERIFY_WHOLE_UP_TO = 4 << 20

_OCTETS = "application/octet-stream"
log = logging.getLogger("driftline.server")


def object_response(
    content: ContentStore,
    digest: str,
    *,
    size: int,
    name: str,
    span: tuple[int, int] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The answer carrying an object's bytes (``span``: only ``[start, end)``, a 206).

    Args:
        content: The content store holding the object.
        digest: The object's digest.
        size: Its stored size in bytes (decides whether it is verified before sending).
        name: What to call it in errors and logs.
        span: A byte range (the caller sets ``Content-Range``), or ``None`` for all.
        headers: More headers of the answer.

    Raises:
        NotFoundError: the object is not stored (before any byte is sent).
        IntegrityError: a small object's bytes do not match its digest.
    """
    headers = dict(headers or {})
    status = 200 if span is None else 206
    start, end = span or (0, size)
    headers["Content-Length"] = str(end - start)
    if size <= VERIFY_WHOLE_UP_TO:
        data = content.read_bytes(digest, name=name)  # raises IntegrityError before sending
        return Response(data[start:end], status_code=status, headers=headers, media_type=_OCTETS)
    if span is None:
        body = _verified_chunks(content.open(digest, name=name), name)
    else:
        body = _span(content.backend.open_read(digest_key(digest)), start, end - start)
    return StreamingResponse(body, status_code=status, headers=headers, media_type=_OCTETS)


def _verified_chunks(reader: VerifyingReader, name: str) -> Iterator[bytes]:
    """The object's pieces, each sent only once the next is read, so the last goes out
    only after the reader checked the digest at end of stream."""
    with reader:
        try:
            held = reader.read(CHUNK_SIZE)
            while held:
                following = reader.read(CHUNK_SIZE)  # at the end: verifies, or raises
                yield held
                held = following
        except IntegrityError:
            # Raising aborts the transfer: the connection is dropped short of its
            # Content-Length, so the client cannot take the body for the whole object.
            log.error("Aborted the download of %s: its stored bytes are corrupt", name)
            raise


def _span(stream: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes from ``start``, as stored."""
    with stream:
        if start:
            stream.seek(start)
        remaining = length
        while remaining > 0:
            data = stream.read(min(CHUNK_SIZE, remaining))
            if not data:
                break  # the object shrank under us: the client sees a short body and fails
            remaining -= len(data)
            yield data
