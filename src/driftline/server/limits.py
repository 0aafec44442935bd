"""Request limits, enforced while the body streams in (not after buffering it): size, and
no NUL characters in text.

NUL: no text driftline stores may hold one (PostgreSQL refuses it in text columns, so it
would surface as a database error, a 500). Rather than every route remembering that, a
NUL in the path or query, or in a JSON body (raw or as the ``\u0000`` escape), is
refused here with 400. Upload routes carry raw bytes and are exempt from the body check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "BodyTooLarge", "NulInText"]


class BodyTooLarge(HTTPException):
    """Raised inside ``receive`` when a body passes its limit.

    An ``HTTPException`` so that FastAPI's body parsing lets it through as a 413 rather
    than turning it into "error parsing the body".
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


class BodyLimit:
    """ASGI middleware: refuse bodies over a limit with 413 and the error envelope.

    ``limits`` maps path prefixes to byte limits (first match wins; ``default`` applies
    otherwise), so artifact uploads can be large while JSON routes stay small.
    """

    def __init__(
        self, app: ASGIApp, *, default: int, limits: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.app = app
        self.default = default
        self.limits = tuple(limits)

    def limit_for(self, path: str) -> tuple[int, bool]:
        """The byte limit of a path, and whether its body is text (not an upload)."""
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit, False
        return self.default, True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await _refuse_nul(scope, send)
            return
        # Bodies of upload routes (the prefixes with their own limits) are raw bytes.
        limit, text_body = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit)
            return
        seen = 0
        started = False
        tail = b""  # the end of the previous chunk: a mark may straddle two chunks

        async def limited_receive() -> Message:
            nonlocal seen, tail
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                seen += len(body)
                if seen > limit:
                    raise BodyTooLarge(limit)
                if text_body and body:
                    if _has_nul_mark(tail + body):
                        raise NulInText
                    tail = body[-16:]
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(scope, send, limit)
        except NulInText:
            if not started:
                await _refuse_nul(scope, send)


class NulInText(HTTPException):
    """Raised inside ``receive`` when a text body carries a NUL character."""

    def __init__(self) -> None:
        super().__init__(400, _NUL_MESSAGE)


_NUL_MESSAGE = "Text must not contain NUL characters (\\u0000)"


def _has_nul_mark(data: bytes) -> bool:
    """A raw NUL byte, or the JSON escape ``\\u0000`` (not an escaped backslash before
    the text ``u0000``: that is an odd run of backslashes only when it is the escape)."""
    if b"\x00" in data:
        return True
    start = data.find(b"u0000")
    while start != -1:
        slashes = len(data[:start]) - len(data[:start].rstrip(b"\\"))
        if slashes % 2:
            return True
        start = data.find(b"u0000", start + 1)
    return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    from driftline.server.errors import error_response

    response = error_response(413, "REQUEST_TOO_LARGE", _too_large(limit))
    await response(scope, _no_receive, send)


async def _refuse_nul(scope: Scope, send: Send) -> None:
    from driftline.server.errors import MLFLOW_PREFIXES, error_response

    if scope["path"].startswith(MLFLOW_PREFIXES):
        from starlette.responses import JSONResponse

        body = {"error_code": "INVALID_PARAMETER_VALUE", "message": _NUL_MESSAGE}
        await JSONResponse(body, 400)(scope, _no_receive, send)
        return
    await error_response(400, "INVALID_ARGUMENT", _NUL_MESSAGE)(scope, _no_receive, send)


async def _no_receive() -> Any:  # pragma: no cover - error responses do not read
    return {"type": "http.disconnect"}


def _too_large(limit: int) -> str:
    return (
        f"Request body is larger than this route's limit of {limit:,} bytes; "
        "send large artifacts through the chunked upload API"
    )
