"""Request size limits, enforced while the body streams in (not after buffering it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "BodyTooLarge"]


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

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
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


async def _no_receive() -> Any:  # pragma: no cover - error responses do not read
    return {"type": "http.disconnect"}


def _too_large(limit: int) -> str:
    return (
        f"Request body is larger than this route's limit of {limit:,} bytes; "
        "send large artifacts through the chunked upload API"
    )
