"""REST routes: the audit log (``/api/v1/audit``): read entries, verify the hash chain.

The log is a kernel service (:mod:`driftline.core.auditlog`): written only by the
stores, in the same transaction as each change; over HTTP it can be read and verified,
never appended to or edited. Verification runs on the server, next to the data, and
answers with the report.

The auth stage's entries (:data:`driftline.auth.AUTH_ENTITIES`: users, grants, tokens)
are read only by admins: they list every user, its role and its grants, whom to phish
for the keys of the server. A reader who asks for the log at large gets the other
entries and is told which types were left out (``omitted``); one who asks for those
types by name is refused. The chain is verified for every reader: the report names
entry numbers, never their contents.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request

from driftline.api.codec import encode
from driftline.auth import AUTH_ENTITIES
from driftline.errors import PermissionDeniedError
from driftline.registry.service import MODEL_ENTITIES, check_model_name
from driftline.server.deps import allows, authorize, workspace

router = APIRouter(prefix="/audit", tags=["audit"])

_Entity = Annotated[
    str | None,
    Query(max_length=512, description="Only this entity and its parts (`churn`, `churn/3`)"),
]
_Types = Annotated[
    list[str] | None,
    Query(max_length=16, description="Only entities of these types (`model`, `alias`, ...)"),
]
_Excluded = Annotated[
    list[str] | None,
    Query(max_length=16, description="Never entities of these types"),
]


@router.get("", summary="Audit entries, newest first")
def entries(
    request: Request,
    model: Annotated[
        str | None, Query(max_length=256, description="Only this registered model's entries")
    ] = None,
    entity: _Entity = None,
    entity_type: _Types = None,
    exclude_type: _Excluded = None,
    limit: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="At most this many (default: all)")
    ] = None,
) -> dict[str, Any]:
    if model is not None:
        # A registered model's entries: its own, its versions' and its aliases'.
        entity, entity_type = check_model_name(model), list(MODEL_ENTITIES)
    types = None if entity_type is None else set(entity_type)
    # Reading one model's history needs read on that model; anything else, read at large.
    of_model = entity is not None and types is not None and types <= set(MODEL_ENTITIES)
    authorize(request, "read", model=entity if of_model else None)
    excluding = set(exclude_type or ())
    omitted: set[str] = set()
    if not allows(request, "read", admin=True):
        asked = AUTH_ENTITIES & (types or set())
        if asked:
            raise PermissionDeniedError(
                f"Only an admin may read the audit entries of {', '.join(sorted(asked))}: "
                "they name every user, role and grant"
            )
        if types is None:
            # The log at large: everything else, and the answer says what was left out
            # (whether or not any such entry exists, which is not the reader's to learn).
            omitted = set(AUTH_ENTITIES - excluding)
            excluding |= AUTH_ENTITIES
    found = workspace(request).audit.entries(
        entity=entity, entity_types=types, excluding=excluding, limit=limit
    )
    return {"entries": encode(found), "omitted": sorted(omitted)}


@router.get("/verify", summary="Recompute the hash chain; name the first bad entry")
def verify(request: Request) -> Any:
    authorize(request, "read")
    return encode(workspace(request).audit.verify())
