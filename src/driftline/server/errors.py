"""One place that turns every failure into the JSON error envelope.

``{"error": {"code": ..., "message": ..., "status": ...}}`` with the HTTP status of the
:mod:`driftline.errors` class, so the remote client can raise the same class. Routes
that do not exist answer 404; under the MLflow prefixes that 404 has a plain-text body,
which the MLflow client reads as "endpoint not implemented" and falls back from.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["MLFLOW_PREFIXES", "envelope", "error_response", "install_error_handlers"]

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
            return JSONResponse({"error_code": code, "message": message}, exc.status_code)
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route {request.method} {request.url.path}; see /openapi.json"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        code = _CODES.get(exc.status_code, "INVALID_ARGUMENT")
        return error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("%s %s crashed", request.method, request.url.path)
        return error_response(
            500,
            "INTERNAL_ERROR",
            f"Internal server error ({type(exc).__name__}); see the server log",
        )


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = str(error.get("msg", "invalid"))
    return f"{where}: {message}" if where else message
