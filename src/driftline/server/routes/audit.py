"""REST routes: the audit log (``/api/v1/audit``): read entries, verify the hash chain.

The log is written only by the stores, in the same transaction as each change; over
HTTP it can be read and verified, never appended to or edited. Verification runs on the
server, next to the data, and answers with the report.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request

from driftline.api.codec import encode
from driftline.registry.service import check_model_name
from driftline.server.deps import authorize, workspace

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", summary="Audit entries, newest first")
def entries(
    request: Request,
    model: Annotated[
        str | None, Query(max_length=256, description="Only this registered model's entries")
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="At most this many (default: all)")
    ] = None,
) -> dict[str, Any]:
    if model is not None:
        check_model_name(model)
    authorize(request, "read", model=model)
    found = workspace(request).registry.audit_log(model=model, limit=limit)
    return {"entries": encode(found)}


@router.get("/verify", summary="Recompute the hash chain; name the first bad entry")
def verify(request: Request) -> Any:
    authorize(request, "read")
    return encode(workspace(request).registry.verify_audit())
