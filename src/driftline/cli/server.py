"""``driftline server``: serve a workspace over HTTP to a team."""

from __future__ import annotations

import os

import typer

from driftline.cli._context import CliState


def register(app: typer.Typer) -> None:
    """Add the ``server`` command to the root app."""
    app.command(name="server")(server)


def server(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (0.0.0.0 exposes the server to the network)."
    ),
    port: int = typer.Option(8080, "--port", "-p", help="Port to listen on."),
    uri: str | None = typer.Option(
        None, "--uri", help="Metadata database URL (default: the workspace's SQLite file)."
    ),
    artifacts: str | None = typer.Option(
        None, "--artifacts", help="Artifact store: a folder or an fsspec URL (s3://bucket/prefix)."
    ),
    workers: int = typer.Option(
        0, "--workers", "-w", help="Worker processes (default: one per CPU core, at most 8)."
    ),
    auth: bool = typer.Option(
        False, "--auth", help="Require a token (or basic auth) on every request but /health."
    ),
    cors_origin: list[str] = typer.Option(
        [],
        "--cors-origin",
        help="Allow browser calls from this origin (repeatable). Off by default.",
    ),
    max_body_mb: int = typer.Option(32, "--max-body-mb", help="Largest JSON request body, MiB."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        "--forwarded-allow-ips",
        help="Behind a reverse proxy: its addresses (comma-separated, or *), whose "
        "X-Forwarded-For the server then trusts for the client's address.",
    ),
) -> None:
    """Serve this workspace over HTTP to a team.

    It serves the REST API and the MLflow-compatible routes.

    Clients set DRIFTLINE_URI=http://HOST:PORT; with --auth also DRIFTLINE_TOKEN.
    """
    from driftline.server.app import ServerOptions
    from driftline.server.main import serve
    from driftline.settings import Settings

    state: CliState = ctx.find_root().obj
    overrides = dict(state.overrides)
    if uri:
        overrides["uri"] = uri
    if artifacts:
        overrides["artifact_root"] = artifacts
    settings = Settings.load(**overrides)
    if workers <= 0:
        workers = max(1, min(8, os.cpu_count() or 1))
    options = ServerOptions(
        auth=auth, cors_origins=tuple(cors_origin), max_body=max_body_mb * 1024 * 1024
    )
    banner = (
        f"driftline server on http://{host}:{port} ({workers} worker(s), "
        f"auth {'on' if auth else 'off'}); metadata {settings.uri.split('@')[-1]}"
    )
    # serve() prints the banner only once the database and the port are known to work.
    serve(
        settings,
        options,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        forwarded_allow_ips=forwarded_allow_ips,
        banner=banner,
    )
