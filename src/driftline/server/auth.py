"""Authentication and authorization of ``driftline server --auth``.

Authentication is an ASGI middleware in front of every route but ``/health``
(``/ready``, ``/openapi.json`` and ``/docs`` included: the API's shape is not public
on a server that asks for credentials). It accepts

- ``Authorization: Bearer <token>`` everywhere (``driftline tokens create``);
- ``Authorization: Basic ...`` with a user name and password, or with a token as the
  password (any user name): the MLflow client sends basic auth from
  ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``.

No or bad credentials answer 401 in the error envelope with a ``WWW-Authenticate``
challenge, and a client past the limits on failed password checks
(:mod:`driftline.auth.throttle`) gets 429 with ``Retry-After`` (under the MLflow
prefixes the body also carries MLflow's ``error_code`` and ``message``, which its
client reports). The authenticated :class:`~driftline.auth.Principal` is
``request.state.user``; handlers then call :func:`driftline.server.deps.authorize`,
which asks :class:`ServerAuthorizer` (rules in :mod:`driftline.auth.policy`) and answers
403 when the caller lacks the permission. An ``edit`` with ``content=True`` is an upload
of content-addressed objects, which any user allowed to edit something may do
(``driftline.auth.policy.may_store_content``): the object routes cannot know which run
will refer to the bytes.

Credential checks that miss the cache (see :mod:`driftline.auth.cache`) read the
database and may run scrypt, so they run in the thread pool, not on the event loop.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from driftline.auth import AuthService, Principal
from driftline.auth.policy import require
from driftline.errors import DriftlineError, TooManyAttemptsError, UnauthenticatedError
from driftline.server.errors import MLFLOW_PREFIXES, envelope

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.datastructures import State
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

    from driftline.server.deps import Action
    from driftline.workspace import Workspace

__all__ = [
    "Authentication",
    "ServerAuthorizer",
    "build_authorizer",
    "install_authentication",
    "principal",
    "server_auth_service",
]

# Paths answered without credentials: a load balancer's liveness probe.
PUBLIC_PATHS = frozenset({"/health"})
CHALLENGE = 'Bearer realm="driftline", Basic realm="driftline", charset="UTF-8"'


class ServerAuthorizer:
    """The server's :class:`~driftline.server.deps.Authorizer`: roles and grants."""

    def __init__(self, service: AuthService) -> None:
        self.service = service

    def check(
        self,
        request: Request,
        action: Action,
        *,
        experiment: str | None = None,
        model: str | None = None,
        admin: bool = False,
        content: bool = False,
    ) -> None:
        """Return if the caller may; raise ``PermissionDeniedError`` (403) otherwise."""
        require(
            principal(request),
            action,
            experiment=experiment,
            model=model,
            admin=admin,
            content=content,
        )


def build_authorizer(workspace: Workspace) -> ServerAuthorizer:
    """The authorizer of a worker, on the workspace's auth service."""
    return ServerAuthorizer(workspace.service("auth", AuthService))


def server_auth_service(request: Request) -> AuthService:
    """The auth service of this worker (also without ``--auth``, for user administration)."""
    ws: Workspace = request.app.state.workspace
    return ws.service("auth", AuthService)


def principal(request: Request) -> Principal:
    """The authenticated caller; ``UnauthenticatedError`` if the request has none."""
    user = getattr(request.state, "user", None)
    if not isinstance(user, Principal):
        raise UnauthenticatedError("This request carries no credentials")
    return user


class Authentication:
    """ASGI middleware: authenticate every HTTP request but :data:`PUBLIC_PATHS`."""

    def __init__(self, app: ASGIApp, *, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        header = _authorization(scope)
        try:
            if header is None:
                raise UnauthenticatedError(
                    "Authentication required: send 'Authorization: Bearer <token>' "
                    "(create one with `driftline tokens create`, then set DRIFTLINE_TOKEN)"
                )
            authorizer: ServerAuthorizer | None = getattr(self.state, "authorizer", None)
            if authorizer is None:
                raise UnauthenticatedError("The server is starting; try again")
            service = authorizer.service
            caller = service.peek_authorization(header)
            if caller is None:
                caller = await run_in_threadpool(
                    partial(service.authenticate_authorization, header, client=_client(scope))
                )
        except DriftlineError as exc:
            # Out here the app's error handlers do not apply: answer the envelope directly
            # (401, or 503 when the database cannot be asked).
            await _refusal(scope["path"], exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = caller
        await self.app(scope, receive, send)


def _refusal(path: str, exc: DriftlineError) -> Response:
    """The error envelope; under the MLflow prefixes also MLflow's ``error_code``/``message``
    (its client reads those and would otherwise report an internal error)."""
    from starlette.responses import JSONResponse

    body: dict[str, Any] = envelope(exc.http_status, exc.code, str(exc))
    if path.startswith(MLFLOW_PREFIXES):
        body.update(error_code=exc.code, message=str(exc))
    headers = {"WWW-Authenticate": CHALLENGE} if exc.http_status == 401 else None
    if isinstance(exc, TooManyAttemptsError) and exc.retry_after is not None:
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(body, exc.http_status, headers=headers)


def _client(scope: Scope) -> str:
    """The caller's address (as the ASGI server reports it, proxy headers applied)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def _authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return None


def install_authentication(app: FastAPI) -> None:
    """Require credentials on every request but ``/health`` (``--auth``)."""
    kwargs: dict[str, Any] = {"state": app.state}
    app.add_middleware(Authentication, **kwargs)
