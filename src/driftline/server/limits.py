"""Request limits, enforced while the body streams in (not after buffering it): size, and
text that every database can store.

Text: no text driftline stores may hold a NUL (PostgreSQL refuses it in text columns)
or a lone UTF-16 surrogate (``"\\ud800"`` in JSON decodes to a string that cannot be
encoded as UTF-8, so SQLite and PostgreSQL both fail on it). Either would surface as a
database error, a 500. Rather than every route remembering that, a NUL in the path or
query, and a NUL or a lone surrogate in a JSON body (as a ``\\u`` escape, or encoded in
bytes that are then not valid UTF-8; a surrogate pair is a valid character and passes),
are refused here with 400. A path or query cannot carry a surrogate: it is decoded from
UTF-8 with replacement. Upload routes carry raw bytes and are exempt from the body
check. UTF-8 is checked as the body streams in; escapes on the whole body once its last
chunk arrives, before the route has parsed any of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "BodyTooLarge", "UnstorableText", "text_problem"]


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
            await _refuse_text(scope, send, _NUL_MESSAGE)
            return
        # Bodies of upload routes (the prefixes with their own limits) are raw bytes.
        limit, text_body = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit)
            return
        seen = 0
        started = False
        text = _TextCheck() if text_body else None

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                seen += len(body)
                if seen > limit:
                    raise BodyTooLarge(limit)
                if text is not None:
                    problem = text.feed(body, final=not message.get("more_body", False))
                    if problem is not None:
                        raise UnstorableText(problem)
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
        except UnstorableText as exc:
            if not started:
                await _refuse_text(scope, send, str(exc.detail))


class UnstorableText(HTTPException):
    """Raised inside ``receive`` when a text body carries a NUL or a lone surrogate."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


_NUL_MESSAGE = "Text must not contain NUL characters (\\u0000)"
_SURROGATE_MESSAGE = (
    "Text must not contain lone UTF-16 surrogates (\\ud800-\\udfff not forming a pair); "
    "send valid Unicode"
)
# A ``\\u`` escape of NUL or of a surrogate, after an even run of backslashes (an odd run
# makes it the text "\\u..."). A high surrogate followed by a low one is one valid
# character and matches as a whole, so its low half is never seen alone.
_TEXT_MARK = re.compile(
    rb"(?<!\\)(?:\\\\)*\\u("
    rb"0000"
    rb"|[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    rb"|[dD][c-fC-F][0-9a-fA-F]{2})"
)


class _TextCheck:
    """The text checks of one body, fed chunk by chunk.

    UTF-8 is checked as the chunks come: Python's JSON reader decodes bytes with
    ``surrogatepass``, so encoded surrogates (``ED A0 80``) must be refused as invalid
    UTF-8 here. Escapes are checked on the whole body at its last chunk (the app keeps
    the whole body as well, to parse it).
    """

    def __init__(self) -> None:
        import codecs

        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.chunks: list[bytes] = []
        self.offset = 0

    def feed(self, chunk: bytes, *, final: bool) -> str | None:
        """Why the body so far cannot be stored, or ``None``."""
        if not chunk.isascii():
            try:
                self.decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return f"Text must be valid UTF-8: invalid byte at offset {self.offset + exc.start}"
        self.offset += len(chunk)
        self.chunks.append(chunk)
        if not final:
            return None
        try:
            self.decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "Text must be valid UTF-8: the body ends inside a character"
        whole = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        return text_problem(whole)


def text_problem(data: bytes) -> str | None:
    """Why JSON text cannot be stored (a NUL, or an escaped lone surrogate), or ``None``."""
    if b"\x00" in data:
        return _NUL_MESSAGE
    if b"\\u" not in data:  # the common case: no escapes at all
        return None
    for match in _TEXT_MARK.finditer(data):
        unit = match.group(1)
        if unit == b"0000":
            return _NUL_MESSAGE
        if len(unit) == 4:  # a surrogate without its partner
            return _SURROGATE_MESSAGE
    return None


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


async def _refuse_text(scope: Scope, send: Send, message: str) -> None:
    from driftline.server.errors import MLFLOW_PREFIXES, error_response

    if scope["path"].startswith(MLFLOW_PREFIXES):
        from starlette.responses import JSONResponse

        body = {"error_code": "INVALID_PARAMETER_VALUE", "message": message}
        await JSONResponse(body, 400)(scope, _no_receive, send)
        return
    await error_response(400, "INVALID_ARGUMENT", message)(scope, _no_receive, send)


async def _no_receive() -> Any:  # pragma: no cover - error responses do not read
    return {"type": "http.disconnect"}


def _too_large(limit: int) -> str:
    return (
        f"Request body is larger than this route's limit of {limit:,} bytes; "
        "send large artifacts through the chunked upload API"
    )
