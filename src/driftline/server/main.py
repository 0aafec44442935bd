"""Run the server: ``serve(settings, options, host=..., port=..., workers=...)``.

uvicorn starts ``workers`` processes sharing one listening socket; each builds its app
with :func:`~driftline.server.app.create_app_from_env` from the environment this
function prepares. The database schema is checked (and an empty database created) once
here, before any worker starts, so a wrong URL or an old schema fails at once with the
real error instead of in every worker; so is the address (:func:`check_address`), so a
port another process holds fails with what to do instead of after a success banner.

SIGTERM/SIGINT stop accepting connections and let requests in flight finish (up to
``graceful_timeout`` seconds): a batch the server acknowledged was committed first.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket

from driftline.errors import InvalidArgumentError
from driftline.server.app import ServerOptions, server_settings
from driftline.settings import Settings

__all__ = ["check_address", "serve", "settings_env"]


def check_address(host: str, port: int) -> None:
    """Raise :class:`InvalidArgumentError` unless the server could listen on ``host:port``.

    The socket is opened as uvicorn opens its own (same family, ``SO_REUSEADDR``), so a
    port that only has connections of a stopped server waiting to close still counts as
    free, as it is for uvicorn.
    """
    if not 1 <= port <= 65535:
        raise InvalidArgumentError(f"Port {port} is not a TCP port: use --port 1 to 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except socket.gaierror as exc:
        raise InvalidArgumentError(
            f"Cannot listen on {host}:{port}: the host {host!r} is unknown ({exc.strerror}); "
            "pass --host 127.0.0.1 (this machine) or 0.0.0.0 (every network interface)"
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise InvalidArgumentError(
                f"Port {port} on {host} is already in use by another process (another "
                f"driftline server?): choose a free port with --port N, or stop the process "
                f"listening on {port}"
            ) from None
        if exc.errno == errno.EACCES:
            raise InvalidArgumentError(
                f"Cannot listen on {host}:{port}: permission denied (ports below 1024 need "
                "privileges); choose a port above 1023 with --port N"
            ) from None
        raise InvalidArgumentError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port"
        ) from None


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
    banner: str | None = None,
) -> None:
    """Serve the workspace until interrupted.

    ``banner`` is printed once the database and the address are known to be usable,
    just before the workers start.

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
    check_address(host, port)
    if banner:
        print(banner, flush=True)  # flushed: a piped stdout would hold it until exit
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
