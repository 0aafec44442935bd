"""REST routes: the content-object API, what ``HttpByteStore`` talks to.

Objects are named by their content digest (``blake3:<hex>``)::

    POST   /api/v1/artifacts/missing                 which of these digests are not stored
    HEAD   /api/v1/artifacts/objects/{digest}        exists? size, modification time
    GET    /api/v1/artifacts/objects/{digest}        stream the bytes (Range: resume)
    PUT    /api/v1/artifacts/objects/{digest}        one-request upload (small objects)
    POST   /api/v1/artifacts/batches                 many small objects in one request
    POST   /api/v1/artifacts/uploads                 begin or resume a chunked upload
    GET    /api/v1/artifacts/uploads/{id}            its offset
    PUT    /api/v1/artifacts/uploads/{id}?offset=N   append a chunk (409 + offset if N is stale)
    POST   /api/v1/artifacts/uploads/{id}/complete   verify the hash, store the object
    DELETE /api/v1/artifacts/uploads/{id}            abandon it

Nothing large is held whole in memory: downloads stream from the store in 1 MiB reads,
a batch of small objects is at most 32 MiB, and other uploads stream to a temporary
file (:mod:`driftline.core.artifacts.uploads`). Uploads become visible only after
their bytes hash to the digest they claim, through
:meth:`ContentStore.adopt_file <driftline.core.artifacts.ContentStore.adopt_file>` (a
rename on a local store, an upload on S3 and friends). A body that does not match its
digest is refused with 400 ``DATA_INTEGRITY`` and nothing is stored.

Why some handlers are ``async``: a streamed request body can only be read from the event
loop. Those handlers do every blocking step (permission checks, file writes in ~1 MiB
pieces, hashing) in the thread pool. JSON bodies are read here too, with a small cap,
because this prefix shares the large upload limit of ``ServerOptions.max_upload``.

Chunked uploads keep their state on the server's disk, so every worker of one server
shares it; servers behind a load balancer need sticky sessions for chunked uploads.
Downloads are verified against the digest as :mod:`driftline.server.downloads` says
(whole objects always; ranges of large objects are served as stored, and the client
verifies every object it downloads as a whole).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import formatdate
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from driftline.api.artifacts import (
    MAX_JSON_BODY,
    MissingRequest,
    MissingResponse,
    StoredBatch,
    StoredObject,
    UploadRequest,
    UploadState,
    json_body_schema,
    parse_body,
)
from driftline.core.artifacts import batch
from driftline.core.artifacts.bytestore import local_objects
from driftline.core.artifacts.uploads import UploadArea, UploadStatus, digest_for_upload
from driftline.core.hashing import digest_key
from driftline.errors import ConflictError, IntegrityError, NotFoundError
from driftline.server.deps import authorize, workspace
from driftline.server.downloads import object_response
from driftline.server.errors import error_response

router = APIRouter(prefix="/artifacts", tags=["artifacts"])

_BYTES = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_BINARY_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": _BYTES}}
_BYTES_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": _BYTES},
    206: {"description": "The requested byte range", "content": _BYTES},
}
# Path parameters, documented with their form but checked by the handlers, whose
# messages say more than a pattern mismatch does.
Digest = Annotated[
    str,
    PathParam(
        description="A content digest, '<algorithm>:<64 hex digits>'",
        json_schema_extra={"pattern": "^(blake3|sha256):[0-9a-f]{64}$"},
    ),
]
UploadId = Annotated[
    str,
    PathParam(
        description="An upload id as returned when the upload began",
        json_schema_extra={"pattern": "^(blake3|sha256)-[0-9a-f]{64}$"},
    ),
]
# Request body pieces are gathered to this size before a write is sent to the thread pool.
_FLUSH_SIZE = 1 << 20
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


# -- objects ---------------------------------------------------------------------------


@router.post(
    "/missing",
    response_model=MissingResponse,
    summary="Which of these objects the server lacks (ask before uploading)",
    openapi_extra=json_body_schema(MissingRequest),
)
async def missing_objects(request: Request) -> dict[str, Any]:
    await run_in_threadpool(authorize, request, "read")
    body = parse_body(MissingRequest, await _read_json(request))
    wanted = list(dict.fromkeys(body.digests))
    for digest in wanted:
        digest_key(digest)  # InvalidArgumentError (400) names a malformed digest
    content = workspace(request).content
    stored = await run_in_threadpool(content.stored, wanted)
    # The client will refer to these instead of sending them: keep gc off them meanwhile.
    await run_in_threadpool(content.refresh, stored)
    return {"missing": [digest for digest in wanted if digest not in stored]}


@router.head("/objects/{digest:path}", summary="Whether an object is stored, and its size")
def head_object(request: Request, digest: Digest) -> Response:
    authorize(request, "read")
    key = digest_key(digest)
    backend = workspace(request).content.backend
    size = _size(backend, key, digest)
    modified = backend.modified(key)
    headers = _object_headers(digest)
    headers.update(
        {
            "Content-Length": str(size),
            "Last-Modified": formatdate(modified, usegmt=True),
            "X-Driftline-Modified": repr(modified),
        }
    )
    return Response(status_code=200, headers=headers, media_type="application/octet-stream")


@router.get(
    "/objects/{digest:path}",
    summary="Stream an object (Range requests resume a download)",
    response_class=StreamingResponse,
    responses=_BYTES_RESPONSE,
)
def get_object(request: Request, digest: Digest) -> Response:
    authorize(request, "read")
    key = digest_key(digest)
    backend = workspace(request).content.backend
    size = _size(backend, key, digest)
    # A store whose streams cannot seek answers with the whole object (RFC 9110 lets a
    # server ignore Range).
    ranged = backend.capabilities.ranged_reads
    try:
        span = _byte_range(request.headers.get("range"), size) if ranged else None
    except _RangeNotSatisfiable:
        refusal = error_response(
            416, "RANGE_NOT_SATISFIABLE", f"Range not satisfiable: {digest} has {size} bytes"
        )
        refusal.headers["Content-Range"] = f"bytes */{size}"
        return refusal
    headers = _object_headers(digest)
    if not ranged:
        headers["Accept-Ranges"] = "none"
    if span is not None:
        headers["Content-Range"] = f"bytes {span[0]}-{span[1] - 1}/{size}"
    try:
        return object_response(
            workspace(request).content, digest, size=size, name=digest, span=span, headers=headers
        )
    except NotFoundError:
        raise _no_object(digest) from None


@router.put(
    "/objects/{digest:path}",
    response_model=StoredObject,
    summary="Upload a small object in one request (verified before it is stored)",
    openapi_extra=_BINARY_BODY,
)
async def put_object(request: Request, digest: Digest) -> Any:
    await run_in_threadpool(partial(authorize, content=True), request, "edit")
    digest_key(digest)
    content = workspace(request).content
    area = await run_in_threadpool(upload_area, request)
    temp = await run_in_threadpool(area.new_temp)
    try:
        handle = await run_in_threadpool(open, temp, "wb")
        try:
            await receive_body(request, handle.write)
        finally:
            await run_in_threadpool(handle.close)
        blob = await run_in_threadpool(content.adopt_file, temp, digest)
    except ClientDisconnect:
        return _disconnected()
    except IntegrityError as exc:
        return error_response(400, exc.code, str(exc))
    finally:
        temp.unlink(missing_ok=True)
    return {"digest": blob.digest, "size": blob.size}


@router.post(
    "/batches",
    response_model=StoredBatch,
    summary="Upload many small objects in one request (each verified; all or none stored)",
    openapi_extra=_BINARY_BODY,
)
async def put_batch(request: Request) -> Any:
    """The body format is :mod:`driftline.core.artifacts.batch`'s. The whole body is held
    in memory (it is at most ``MAX_BATCH_BYTES``) while its objects are verified."""
    await run_in_threadpool(partial(authorize, content=True), request, "edit")
    declared = _declared_length(request)
    if declared is not None and declared > batch.MAX_BATCH_BYTES:
        raise _batch_too_large()
    body = bytearray()
    try:
        async for piece in request.stream():
            body += piece
            if len(body) > batch.MAX_BATCH_BYTES:
                raise _batch_too_large()
    except ClientDisconnect:
        return _disconnected()
    objects = batch.decode(bytes(body))
    content = workspace(request).content
    try:
        await run_in_threadpool(content.adopt_batch, objects)
    except IntegrityError as exc:
        return error_response(400, exc.code, str(exc))
    return {"objects": len(objects), "size": sum(len(data) for _digest, data in objects)}


def _batch_too_large() -> HTTPException:
    return HTTPException(
        413, f"A batch body is at most {batch.MAX_BATCH_BYTES:,} bytes; send several batches"
    )


# -- chunked uploads -------------------------------------------------------------------


@router.post(
    "/uploads",
    response_model=UploadState,
    summary="Begin (or resume) a chunked upload; says so if the object is stored already",
    openapi_extra=json_body_schema(UploadRequest),
)
async def begin_upload(request: Request) -> dict[str, Any]:
    await run_in_threadpool(partial(authorize, content=True), request, "edit")
    body = parse_body(UploadRequest, await _read_json(request))
    return await run_in_threadpool(_begin, request, body.digest, body.size)


def _begin(request: Request, digest: str, size: int) -> dict[str, Any]:
    key = digest_key(digest)
    backend = workspace(request).content.backend
    if backend.exists(key):
        stored = backend.size(key)
        return {
            "upload_id": None,
            "digest": digest,
            "size": stored,
            "offset": stored,
            "stored": True,
        }
    return _state(upload_area(request).begin(digest, size))


@router.get("/uploads/{upload_id}", response_model=UploadState, summary="A chunked upload's offset")
def get_upload(request: Request, upload_id: UploadId) -> dict[str, Any]:
    authorize(request, "edit", content=True)
    return _state(upload_area(request).status(upload_id))


@router.put(
    "/uploads/{upload_id}",
    response_model=UploadState,
    summary="Append a chunk at ?offset= (409 with the current offset if it is stale)",
    openapi_extra=_BINARY_BODY,
)
async def put_chunk(
    request: Request,
    upload_id: UploadId,
    offset: int = Query(ge=0, description="Where this chunk starts in the object"),
) -> Any:
    await run_in_threadpool(partial(authorize, content=True), request, "edit")
    area = await run_in_threadpool(upload_area, request)
    try:
        writer = await run_in_threadpool(
            area.open_chunk, upload_id, offset, _declared_length(request)
        )
    except ConflictError as exc:
        where = getattr(exc, "offset", None)
        details = {} if where is None else {"offset": where}
        return error_response(409, exc.code, str(exc), **details)
    try:
        await receive_body(request, writer.write)
    except ClientDisconnect:
        # What arrived stays appended: the client resumes from the server's offset.
        return _disconnected()
    finally:
        await run_in_threadpool(writer.close)
    return _state(writer.status, offset=writer.offset)


@router.post(
    "/uploads/{upload_id}/complete",
    response_model=StoredObject,
    summary="Verify a fully sent upload against its digest and store it",
)
def complete_upload(request: Request, upload_id: UploadId) -> Any:
    authorize(request, "edit", content=True)
    content = workspace(request).content
    try:
        blob = upload_area(request).complete(upload_id, content)
    except NotFoundError:
        # A retried completion whose first attempt succeeded finds the object stored.
        digest = digest_for_upload(upload_id)
        key = digest_key(digest)
        if content.backend.exists(key):
            return {"digest": digest, "size": content.backend.size(key)}
        raise
    except IntegrityError as exc:
        return error_response(400, exc.code, str(exc))
    return {"digest": blob.digest, "size": blob.size}


@router.delete("/uploads/{upload_id}", summary="Abandon a chunked upload")
def abort_upload(request: Request, upload_id: UploadId) -> dict[str, Any]:
    authorize(request, "edit", content=True)
    upload_area(request).abort(upload_id)
    return {"upload_id": upload_id, "aborted": True}


# -- helpers ---------------------------------------------------------------------------


def upload_area(request: Request) -> UploadArea:
    """This worker's upload area: inside a local store (so completing is a rename)."""
    area: UploadArea | None = getattr(request.app.state, "artifact_uploads", None)
    if area is None:
        ws = workspace(request)
        local = local_objects(ws.content.backend)
        if local is not None:
            folder = local.root / ".tmp" / "uploads"
        else:
            folder = ws.settings.home / "uploads"
        area = UploadArea(folder)
        request.app.state.artifact_uploads = area
    return area


def _state(status: UploadStatus, *, offset: int | None = None) -> dict[str, Any]:
    return {
        "upload_id": status.upload_id,
        "digest": status.digest,
        "size": status.size,
        "offset": status.offset if offset is None else offset,
        "stored": False,
    }


def _size(backend: Any, key: str, digest: str) -> int:
    try:
        return int(backend.size(key))
    except NotFoundError:
        raise _no_object(digest) from None


def _no_object(digest: str) -> NotFoundError:
    return NotFoundError(f"The server stores no object {digest}")


def _object_headers(digest: str) -> dict[str, str]:
    # Content never changes under a digest: caches may keep it forever.
    return {
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=31536000, immutable",
    }


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` of a single ``Range: bytes=...`` header, ``None`` for the whole object.

    Forms this server does not serve (several ranges, other units, nonsense) are ignored
    as RFC 9110 allows: the answer is the whole object. A range starting at or past the
    end is 416.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or not (match[1] or match[2]):
        return None
    if match[1]:
        start = int(match[1])
        if match[2] and int(match[2]) < start:
            return None
        end = min(int(match[2]) + 1, size) if match[2] else size
    else:
        start, end = max(0, size - int(match[2])), size
        if int(match[2]) == 0:
            start = size
    if start >= size:
        raise _RangeNotSatisfiable
    return start, end


class _RangeNotSatisfiable(Exception):
    """The range starts at or past the end of the object (answered with 416)."""


async def _read_json(request: Request) -> bytes:
    declared = _declared_length(request)
    if declared is not None and declared > MAX_JSON_BODY:
        raise _too_large()
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_JSON_BODY:
            raise _too_large()
    return bytes(body)


def _too_large() -> HTTPException:
    return HTTPException(
        413, f"JSON body is larger than {MAX_JSON_BODY:,} bytes; send digests in batches"
    )


async def receive_body(request: Request, write: Callable[[bytes], object]) -> None:
    """Feed the request body to ``write`` in ~1 MiB pieces, each written in the thread pool."""
    pending = bytearray()
    try:
        async for piece in request.stream():
            pending += piece
            if len(pending) >= _FLUSH_SIZE:
                data = bytes(pending)
                pending.clear()
                await run_in_threadpool(write, data)
    except ClientDisconnect:
        if pending:
            await run_in_threadpool(write, bytes(pending))
        raise
    if pending:
        await run_in_threadpool(write, bytes(pending))


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def _disconnected() -> Response:
    # Nobody reads this answer; it keeps a client that went away out of the crash log.
    return error_response(400, "INVALID_ARGUMENT", "The client disconnected mid-body")
