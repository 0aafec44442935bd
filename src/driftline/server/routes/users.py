"""REST routes: users, grants and API tokens.

Admins manage everything. Any authenticated user may read itself (``GET /whoami``,
``GET /users/{own name}``), change its own password (giving the current one), and
create, list and revoke its own tokens. What a credential may grant (nothing that
outlives it) is decided by :class:`~driftline.auth.service.AuthService`, which gets the
caller. Without ``--auth`` the routes that manage users and tokens are refused:
accounts made on an open server would become valid credentials the day it is restarted
with ``--auth`` (``whoami`` answers the server's user as an admin). The first admin is
made on the server's machine, against its database: ``driftline users create``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from driftline.api.auth import CreateTokenBody, CreateUserBody, GrantBody, UpdateUserBody
from driftline.api.codec import encode
from driftline.auth import Principal, Role
from driftline.core.clock import from_ms
from driftline.errors import ConflictError, InvalidArgumentError, PermissionDeniedError
from driftline.server.auth import server_auth_service
from driftline.server.deps import actor, authorize

router = APIRouter(tags=["users"])


def _caller(request: Request) -> Principal | None:
    user = getattr(request.state, "user", None)
    return user if isinstance(user, Principal) else None


def _require_auth(request: Request) -> None:
    if not request.app.state.options.auth:
        raise PermissionDeniedError(
            "Users and tokens are managed on a server started with --auth; on this one, "
            "run `driftline users ...` on the server's machine with its --uri"
        )


def _require_admin(request: Request) -> None:
    _require_auth(request)
    authorize(request, "manage", admin=True)


def _require_self_or_admin(request: Request, name: str | None) -> None:
    _require_auth(request)
    caller = _caller(request)
    if caller is not None and name is not None and caller.name == name:
        return
    _require_admin(request)


@router.get("/whoami", summary="The authenticated user, its role and grants")
def whoami(request: Request) -> Any:
    caller = _caller(request)
    if caller is None:
        # Without --auth there is no caller; everything is allowed, as for an admin.
        caller = Principal(user_id="", name=actor(request), role=Role.ADMIN)
    return encode(caller)


@router.get("/users", summary="Every user (admins only)")
def list_users(request: Request) -> Any:
    _require_admin(request)
    return {"users": encode(server_auth_service(request).list_users())}


@router.post("/users", status_code=201, summary="Create a user (admins only)")
def create_user(request: Request, body: CreateUserBody) -> Any:
    _require_admin(request)
    user = server_auth_service(request).create_user(
        body.name,
        role=body.role,
        password=body.password,
        actor=actor(request),
        caller=_caller(request),
    )
    return encode(user)


@router.get("/users/{name}", summary="One user (admins, or the user itself)")
def get_user(request: Request, name: str) -> Any:
    _require_self_or_admin(request, name)
    return encode(server_auth_service(request).get_user(name))


@router.patch(
    "/users/{name}",
    summary="Change a user's role, disabled flag or password (a user may set its own password)",
    description=(
        "A password is changed in a request of its own. One's own password needs "
        "current_password; an admin sets another user's without it. A password change "
        "revokes the user's other tokens and answers how many (revoked_tokens)."
    ),
)
def update_user(request: Request, name: str, body: UpdateUserBody) -> Any:
    caller = _caller(request)
    service = server_auth_service(request)
    if body.password is not None:
        if body.role is not None or body.disabled is not None:
            raise InvalidArgumentError(
                "Change a password in a request of its own, not with a role or disabled flag"
            )
        _require_self_or_admin(request, name)
        change = service.set_password(
            name,
            body.password,
            current_password=body.current_password,
            actor=actor(request),
            caller=caller,
            client=request.client.host if request.client else "",
        )
        return {**encode(change.user), "revoked_tokens": change.revoked_tokens}
    if body.current_password is not None:
        raise InvalidArgumentError("current_password goes with a new password")
    if body.role is not None or body.disabled is not None:
        _require_admin(request)
        if caller is not None and caller.name == name:
            # The last admin locking itself out would need the database to recover.
            raise ConflictError(
                "You cannot change your own role or disable yourself; ask another admin"
            )
    else:
        _require_self_or_admin(request, name)
    user = service.update_user(
        name, role=body.role, disabled=body.disabled, actor=actor(request), caller=caller
    )
    return encode(user)


@router.put("/users/{name}/grants", summary="Grant a permission on an experiment or a model")
def put_grant(request: Request, name: str, body: GrantBody) -> Any:
    _require_admin(request)
    grant = server_auth_service(request).grant(
        name,
        permission=body.permission,
        experiment=body.experiment,
        model=body.model,
        actor=actor(request),
        caller=_caller(request),
    )
    return encode(grant)


@router.delete("/users/{name}/grants", summary="Revoke a grant on an experiment or a model")
def delete_grant(
    request: Request, name: str, experiment: str | None = None, model: str | None = None
) -> Any:
    _require_admin(request)
    server_auth_service(request).revoke(
        name, experiment=experiment, model=model, actor=actor(request)
    )
    return {"revoked": True}


@router.get("/grants", summary="Grants of one user (admins, or the user itself) or of all")
def list_grants(request: Request, user: str | None = None) -> Any:
    _require_self_or_admin(request, user)
    return {"grants": encode(server_auth_service(request).list_grants(user))}


@router.post("/tokens", status_code=201, summary="Create an API token (its secret is shown once)")
def create_token(request: Request, body: CreateTokenBody) -> Any:
    caller = _caller(request)
    user = body.user if body.user is not None else (caller.name if caller else None)
    _require_self_or_admin(request, user)
    expires_at = None if body.expires_at is None else from_ms(body.expires_at)
    issued = server_auth_service(request).create_token(
        user, name=body.name, expires_at=expires_at, actor=actor(request), caller=caller
    )
    return encode(issued)


@router.get("/tokens", summary="Tokens of one user (admins, or the user itself) or of all")
def list_tokens(request: Request, user: str | None = None) -> Any:
    caller = _caller(request)
    if user is None and caller is not None and caller.role is not Role.ADMIN:
        user = caller.name  # a non-admin's listing is its own tokens
    _require_self_or_admin(request, user)
    return {"tokens": encode(server_auth_service(request).list_tokens(user))}


@router.delete("/tokens/{token_id}", summary="Revoke a token (admins, or its owner)")
def revoke_token(request: Request, token_id: str) -> Any:
    service = server_auth_service(request)
    token = service.get_token(token_id)
    try:
        _require_self_or_admin(request, token.user)
    except PermissionDeniedError:
        raise PermissionDeniedError(
            f"Token {token_id} belongs to another user; only its owner or an admin may revoke it"
        ) from None
    return encode(service.revoke_token(token_id, actor=actor(request)))
