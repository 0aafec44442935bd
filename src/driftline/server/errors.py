"""One place that turns every failure into the JSON error envelope.

``{"error": {"code": ..., "message": ..., "status": ...}}`` with the HTTP status of the
:mod:`driftline.errors` class, so the remote client can raise the same class. Routes
that do not exist answer 404; under the MLflow prefixes that 404 has a plain-text body,
which the MLflow client reads as "endpoint not implemented" and falls back from.

Unexpected exceptions (bugs) are answered by :class:`ServerErrors`, a middleware, not by
an ``Exception`` handler: Starlette runs such a handler in its outermost middleware and
then re-raises the exception so the server can log it, and uvicorn, seeing an exception
after a complete response, closes the keep-alive connection without saying
``Connection: close``, so the client's next request on it fails. ServerErrors logs the
exception, answers the 500 envelope and keeps the connection usable.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "MLFLOW_PREFIXES",
    "ServerErrors",
    "document_errors",
    "envelope",
    "error_response",
    "install_error_handlers",
]

log = logging.getLogger("driftline.server")

MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/")

_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    411: "LENGTH_REQUIRED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_ARGUMENT",
}


def envelope(status: int, code: str, message: str, **details: Any) -> dict[str, Any]:
    """The error body every driftline route answers with."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(status: int, code: str, message: str, **details: Any) -> Response:
    """An error envelope as a response."""
    from starlette.responses import JSONResponse

    headers = {"WWW-Authenticate": 'Bearer realm="driftline"'} if status == 401 else None
    return JSONResponse(envelope(status, code, message, **details), status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map driftline errors, validation errors, HTTP errors and crashes to envelopes."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.responses import PlainTextResponse

    @app.exception_handler(DriftlineError)
    async def _driftline(request: Request, exc: DriftlineError) -> Response:
        if exc.http_status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(exc.http_status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [_describe(error) for error in exc.errors()]
        return error_response(
            400, "INVALID_ARGUMENT", "Invalid request: " + "; ".join(problems), problems=problems
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        mlflow = request.url.path.startswith(MLFLOW_PREFIXES)
        if exc.status_code == 404 and mlflow:
            return PlainTextResponse("Endpoint not implemented", 404)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if mlflow:  # the MLflow client reads error_code and message
            from starlette.responses import JSONResponse

            code = "INVALID_PARAMETER_VALUE" if exc.status_code < 500 else "INTERNAL_ERROR"
            body = {"error_code": code, "message": message}
            return JSONResponse(body, exc.status_code, headers=exc.headers)
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route {request.method} {request.url.path}; see /openapi.json"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
            # Starlette's Allow names the methods of the first route on the path only.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        code = _CODES.get(exc.status_code, "INVALID_ARGUMENT")
        response = error_response(exc.status_code, code, message)
        response.headers.update(headers)
        return response


class ServerErrors:
    """ASGI middleware: an unexpected exception becomes a logged 500 envelope.

    Add it last (outermost of the app's own middleware). A response that already started
    (a stream failing midway) cannot become a 500: the exception propagates, so the
    server aborts the connection and the client sees a failed transfer, not a short body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            log.exception("%s %s crashed", scope.get("method", "?"), scope.get("path", "?"))
            await _crash_response(scope["path"], exc)(scope, receive, send)


def _crash_response(path: str, exc: Exception) -> Response:
    """The 500 of an unexpected exception: the envelope, or MLflow's shape on its routes."""
    message = f"Internal server error ({type(exc).__name__}); see the server log"
    if path.startswith(MLFLOW_PREFIXES):
        from starlette.responses import JSONResponse

        return JSONResponse({"error_code": "INTERNAL_ERROR", "message": message}, 500)
    return error_response(500, "INTERNAL_ERROR", message)


_ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "string", "description": "e.g. INVALID_ARGUMENT, NOT_FOUND"},
                "message": {"type": "string", "description": "What was wrong, what to do"},
                "status": {"type": "integer"},
                "details": {"type": "object"},
            },
        }
    },
}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Say in an OpenAPI document how every operation fails: the envelope, any status.

    FastAPI documents a 422 for invalid input, but this server answers those with 400
    (see :func:`install_error_handlers`); the 422 is replaced by a ``default`` response
    that covers 400, 401, 403, 404, 409, 413 and 500 alike.
    """
    schema.setdefault("components", {}).setdefault("schemas", {})["ErrorEnvelope"] = (
        _ENVELOPE_SCHEMA
    )
    error = {
        "description": "An error: its code and a message that says what was wrong",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].pop("422", None)
                operation["responses"].setdefault("default", error)
    return schema


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route on the request's path answers (RFC 9110's ``Allow``)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = str(error.get("msg", "invalid"))
    return f"{where}: {message}" if where else message
