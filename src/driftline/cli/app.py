"""The root ``driftline`` command and its global options."""

from __future__ import annotations

from pathlib import Path

import typer

from driftline.cli import (
    artifacts,
    data,
    db,
    experiments,
    models,
    monitoring,
    quickstart,
    runs,
    server,
    tokens,
    users,
    workspace,
)
from driftline.cli._context import CliState

app = typer.Typer(
    name="driftline",
    help="driftline: data versions, experiments, models and their lifecycle, in one tool.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain click help: rendering help through rich costs ~110 ms of imports per call,
    # and `driftline --help` should answer in well under 300 ms.
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from driftline import __version__

        typer.echo(f"driftline {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    uri: str | None = typer.Option(
        None,
        "--uri",
        envvar="DRIFTLINE_URI",
        show_envvar=True,
        help="Metadata database URL (default: the workspace's SQLite file).",
    ),
    artifact_root: str | None = typer.Option(
        None,
        "--artifact-root",
        envvar="DRIFTLINE_ARTIFACT_ROOT",
        show_envvar=True,
        help="Where artifact bytes live: a folder or an fsspec URL such as s3://bucket/prefix.",
    ),
    home: Path | None = typer.Option(
        None,
        "--home",
        envvar="DRIFTLINE_HOME",
        show_envvar=True,
        help="The workspace folder (default: the nearest .driftline/ here or above).",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Global options apply to every command."""
    ctx.obj = CliState(
        overrides={"uri": uri, "artifact_root": artifact_root, "home": home}, debug=debug
    )


workspace.register(app)
quickstart.register(app)
server.register(app)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
app.add_typer(models.audit_app, name="audit")
data.register_gc(app)
monitoring.register(app)
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
