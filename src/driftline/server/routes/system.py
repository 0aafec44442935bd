"""System routes: liveness, readiness, and what a client needs to know about the server."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from driftline import __version__
from driftline.server.deps import workspace
from driftline.server.errors import error_response

router = APIRouter(tags=["system"])
log = logging.getLogger("driftline.server")


@router.get("/health", summary="The server process answers (never needs credentials)")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="The metadata database answers")
def ready(request: Request) -> Any:
    from sqlalchemy import text

    database = workspace(request).database
    assert database is not None  # a server's workspace always has its database
    try:
        database.read(lambda conn: conn.execute(text("SELECT 1")).scalar())
    except Exception as exc:
        # The details (host names, driver messages) go to the log, not to callers.
        log.error("readiness check failed: %s", exc)
        return error_response(503, "BACKEND_UNAVAILABLE", "The metadata database does not answer")
    return {"status": "ready"}


@router.get("/api/v1/info", summary="Server version and the settings clients must share")
def info(request: Request) -> dict[str, Any]:
    return {
        "version": __version__,
        "api": "v1",
        "hash_algorithm": workspace(request).settings.hash_algorithm,
        "auth": request.app.state.options.auth,
    }
