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

__all__ = ["app", "build_app", "for_command"]

#: The global options that take a value (``root``'s non-flag options; a test checks).
VALUE_OPTIONS = frozenset({"--uri", "--artifact-root", "--home"})


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


def _command_names(app: typer.Typer) -> list[tuple[str, object]]:
    """``(name, registration)`` of every top-level command and group of ``app``."""
    from typer.main import get_command_name

    names: list[tuple[str, object]] = []
    for command in app.registered_commands:
        name = command.name
        if not name and command.callback is not None:
            name = get_command_name(command.callback.__name__)
        names.append((name or "", command))
    for group in app.registered_groups:
        group_name = group.name
        if not group_name and group.typer_instance is not None:
            group_name = group.typer_instance.info.name
        names.append((group_name if isinstance(group_name, str) else "", group))
    return names


def for_command(app: typer.Typer, args: Sequence[str]) -> typer.Typer:
    """``app`` holding only the top-level command ``args`` invoke, if it names one.

    Typer turns every registered command into a click command before running one (each
    function's signature and type hints read): ~70 commands, a tenth of a short
    command's time. Anything unclear (no command, an unknown name) keeps the whole app,
    so help and "No such command" read as before.
    """
    import copy

    command: str | None = None
    expects_value = False
    for arg in args:
        if expects_value:
            expects_value = False
        elif arg == "--":
            return app
        elif arg.startswith("-"):
            expects_value = arg in VALUE_OPTIONS
        else:
            command = arg
            break
    found = [(name, entry) for name, entry in _command_names(app) if name == command]
    if command is None or len(found) != 1:
        return app
    entry = found[0][1]
    pruned = copy.copy(app)
    pruned.registered_commands = [c for c in app.registered_commands if c is entry]
    pruned.registered_groups = [g for g in app.registered_groups if g is entry]
    return pruned


app = build_app()
