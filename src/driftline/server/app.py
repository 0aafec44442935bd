"""The ASGI application: ``create_app(settings)``.

Each worker process opens one :class:`~driftline.workspace.Workspace` at startup and
closes it at shutdown. The server logs synchronously (``async_logging=False``): a
request is answered only after what it wrote is committed, so an acknowledged write
survives a crash of the server right after.

Routes: ``/health`` (the process answers), ``/ready`` (the database answers),
``/api/v1/...`` (driftline's versioned REST API, documented at ``/openapi.json`` and
``/docs``), and the MLflow-compatible routes under ``/api/2.0/mlflow...``. Under
``/api/v1`` the kernel's object API is mounted, then the routers every declared stage
names (``Stage.routes``, see :mod:`driftline.stages`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from driftline.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServerOptions", "create_app", "create_app_from_env"]

# The kernel's routers under /api/v1 (the stages' come from their descriptors).
# The kernel's own routes: artifact bytes and the audit log, whatever the stages.
KERNEL_ROUTERS = (
    "driftline.server.routes.artifacts:router",
    "driftline.server.routes.audit:router",
)

_MiB = 1024 * 1024
_MAX_BODY = 32 * _MiB
_MAX_UPLOAD = 8 * 1024 * _MiB


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """How the server behaves, apart from the workspace it serves.

    Attributes:
        auth: Require credentials on every request but ``/health`` (``--auth``).
        cors_origins: Origins allowed to call the API from a browser; none by default.
        max_body: Byte limit of a request body on JSON routes.
        max_upload: Byte limit of one artifact upload request (a chunk, or an MLflow PUT).
    """

    auth: bool = False
    cors_origins: tuple[str, ...] = ()
    max_body: int = _MAX_BODY
    max_upload: int = _MAX_UPLOAD

    def to_env(self) -> dict[str, str]:
        """Environment variables that carry these options to worker processes."""
        return {
            "DRIFTLINE_SERVER_AUTH": "1" if self.auth else "0",
            "DRIFTLINE_SERVER_CORS": ",".join(self.cors_origins),
            "DRIFTLINE_SERVER_MAX_BODY": str(self.max_body),
            "DRIFTLINE_SERVER_MAX_UPLOAD": str(self.max_upload),
        }

    @classmethod
    def from_env(cls) -> ServerOptions:
        """The options :meth:`to_env` wrote."""
        env = os.environ
        return cls(
            auth=env.get("DRIFTLINE_SERVER_AUTH", "0") == "1",
            cors_origins=tuple(o for o in env.get("DRIFTLINE_SERVER_CORS", "").split(",") if o),
            max_body=int(env.get("DRIFTLINE_SERVER_MAX_BODY", _MAX_BODY)),
            max_upload=int(env.get("DRIFTLINE_SERVER_MAX_UPLOAD", _MAX_UPLOAD)),
        )


def server_settings(settings: Settings) -> Settings:
    """The settings a server opens its workspace with: synchronous, no client capture,
    and webhooks to public hosts only unless ``webhook_allow`` says otherwise (its
    editors are not its admins: see :mod:`driftline.core.destinations`)."""
    from driftline.core.destinations import SERVER_DEFAULT

    return dataclasses.replace(
        settings,
        async_logging=False,
        capture_environment=False,
        webhook_allow=settings.webhook_allow or SERVER_DEFAULT,
    )


def create_app(
    settings: Settings | None = None,
    options: ServerOptions | None = None,
    *,
    stages: Sequence[str] | None = None,
) -> FastAPI:
    """Build the server app for the workspace ``settings`` describe.

    ``stages`` are the import paths of the stage descriptors to serve (default: the
    stage list); each worker's workspace is opened with the same stages.
    """
    from fastapi import FastAPI
    from starlette.middleware.cors import CORSMiddleware

    from driftline import __version__
    from driftline.core.stage import load_object
    from driftline.server.errors import ServerErrors, document_errors, install_error_handlers
    from driftline.server.limits import BodyLimit
    from driftline.stages import STAGES, load_stages

    settings = server_settings(settings or Settings.load())
    if settings.is_remote:
        from driftline.errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"A server needs a database, not another server: uri={settings.uri!r}"
        )
    options = options or ServerOptions()
    stage_paths = tuple(STAGES if stages is None else stages)
    declared = load_stages(stage_paths)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from driftline.workspace import Workspace

        app.state.workspace = Workspace.from_settings(settings, stages=stage_paths)
        app.state.authorizer = None
        if options.auth:
            from driftline.server.auth import build_authorizer

            app.state.authorizer = build_authorizer(app.state.workspace)
        try:
            yield
        finally:
            app.state.workspace.close()

    app = FastAPI(
        title="driftline",
        version=__version__,
        description="Data versions, experiments, models and registry of one driftline workspace.",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves the pages with their assets from the package
        redoc_url=None,
    )
    from driftline.server.docs import install_docs

    install_docs(app)
    app.state.options = options
    install_error_handlers(app)
    from driftline.server.routes import system

    app.include_router(system.router)
    routers = [*KERNEL_ROUTERS, *(path for stage in declared for path in stage.routes)]
    for path in routers:
        app.include_router(load_object(path), prefix="/api/v1")
    from driftline.server.mlflow import install_mlflow_routes

    install_mlflow_routes(app)
    if options.auth:
        from driftline.server.auth import install_authentication

        install_authentication(app)
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(options.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
    upload_prefixes: Sequence[tuple[str, int]] = (
        ("/api/v1/artifacts/", options.max_upload),
        ("/api/2.0/mlflow-artifacts/", options.max_upload),
        # Labels come as Arrow or Parquet bytes too (the route reads and checks them),
        # within the JSON limit.
        ("/api/v1/monitoring/labels/", options.max_body),
    )
    app.add_middleware(BodyLimit, default=options.max_body, limits=upload_prefixes)
    app.add_middleware(ServerErrors)  # last, so outermost: it answers what all others raise
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(build_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def create_app_from_env() -> FastAPI:
    """The app of a worker process started by ``driftline server`` (settings from env)."""
    return create_app(Settings.load(), ServerOptions.from_env())
