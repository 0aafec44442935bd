"""The root ``driftline`` command: its global options, the workspace-wide commands, and
the commands every declared stage adds (``Stage.cli``, see :mod:`driftline.stages`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from driftline.cli import data, db, quickstart, server, workspace
from driftline.cli._context import CliState
from driftline.core.stage import load_object
from driftline.stages import STAGES, load_stages

__all__ = ["app", "build_app"]


def _version(value: bool) -> None:
    if value:
        from driftline import __version__

        typer.echo(f"driftline {__version__}")
        raise typer.Exit()


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
        overrides={"uri": uri, "artifact_root": artifact_root, "home": home},
        debug=debug,
        stages=ctx.obj if isinstance(ctx.obj, tuple) else None,
    )


def build_app(stages: Sequence[str] = STAGES) -> typer.Typer:
    """The ``driftline`` command with the commands of ``stages`` (import paths of stage
    descriptors); every workspace its commands open has the same stages."""
    paths = tuple(stages)
    app = typer.Typer(
        name="driftline",
        help="driftline: data versions, experiments, models and their lifecycle, in one tool.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        # Plain click help: rendering help through rich costs ~110 ms of imports per call,
        # and `driftline --help` should answer in well under 300 ms.
        rich_markup_mode=None,
        add_completion=False,
        # The stage paths reach `root` as the context's initial object.
        context_settings={"help_option_names": ["-h", "--help"], "obj": paths},
    )

    app.callback()(root)
    workspace.register(app)
    quickstart.register(app)
    server.register(app)
    for stage in load_stages(paths):
        if stage.cli is not None:
            load_object(stage.cli)(app)
    data.register_gc(app)
    app.add_typer(db.app, name="db")
    return app


app = build_app()
