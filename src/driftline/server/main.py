"""Run the server: ``serve(settings, options, host=..., port=..., workers=...)``.

uvicorn starts ``workers`` processes sharing one listening socket; each builds its app
with :func:`~driftline.server.app.create_app_from_env` from the environment this
function prepares. The database schema is checked (and an empty database created) once
here, before any worker starts, so a wrong URL or an old schema fails at once with the
real error instead of in every worker.

SIGTERM/SIGINT stop accepting connections and let requests in flight finish (up to
``graceful_timeout`` seconds): a batch the server acknowledged was committed first.
"""

from __future__ import annotations

import dataclasses
import os

from driftline.server.app import ServerOptions, server_settings
from driftline.settings import Settings

__all__ = ["serve", "settings_env"]


def settings_env(settings: Settings) -> dict[str, str]:
    """``DRIFTLINE_*`` variables that make ``Settings.load()`` in a worker equal ``settings``."""
    env = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if value is not None:
            env[f"DRIFTLINE_{field.name.upper()}"] = str(value)
    return env


def serve(
    settings: Settings,
    options: ServerOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    log_level: str = "info",
    graceful_timeout: float = 30.0,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Serve the workspace until interrupted.

    ``forwarded_allow_ips`` names the reverse proxies whose ``X-Forwarded-For`` header
    gives the client's address (which the limits on failed password checks count by);
    by default no proxy is trusted and the address is the connection's.
    """
    import uvicorn

    from driftline.core.metadata import Database, ensure_schema
    from driftline.stages import migration_history

    settings = server_settings(settings)
    database = Database(settings.uri)
    try:
        ensure_schema(database, migration_history())
    finally:
        database.dispose()
    os.environ.update(settings_env(settings))
    os.environ.update(options.to_env())
    uvicorn.run(
        "driftline.server.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=int(graceful_timeout),
        # Keep-alive long enough for a client's next batch; uvicorn's 5 s default makes
        # a client that logs every few seconds reconnect each time.
        timeout_keep_alive=30,
        server_header=False,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
    )
