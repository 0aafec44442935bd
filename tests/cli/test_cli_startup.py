"""A command runs on an app holding only itself (typer converts every registered command
before running one); anything unclear keeps the whole app."""

from __future__ import annotations

import typer.main

from driftline.cli.app import VALUE_OPTIONS, _command_names, app, for_command


def _top_level(pruned: typer.Typer) -> list[str]:
    return sorted(name for name, _ in _command_names(pruned))


def test_the_value_options_are_the_root_options_that_take_a_value() -> None:
    root = typer.main.get_command(app)
    takes_value = {
        opt
        for param in root.params
        if not getattr(param, "is_flag", False)
        for opt in param.opts
        if opt.startswith("--")
    }
    assert takes_value == VALUE_OPTIONS


def test_every_top_level_command_has_one_name() -> None:
    names = [name for name, _ in _command_names(app)]
    assert "" not in names
    assert len(names) == len(set(names))
    assert {"runs", "data", "models", "quickstart", "server", "db"} <= set(names)


def test_the_invoked_command_alone_is_kept() -> None:
    assert _top_level(for_command(app, ["runs", "list"])) == ["runs"]
    assert _top_level(for_command(app, ["--debug", "quickstart"])) == ["quickstart"]
    # A global option's value is not the command, even when it reads like one.
    assert _top_level(for_command(app, ["--home", "data", "runs", "list"])) == ["runs"]
    assert _top_level(for_command(app, ["--uri=sqlite://", "models", "list"])) == ["models"]
    assert len(_command_names(app)) > 10  # the app itself is untouched


def test_anything_unclear_keeps_the_whole_app() -> None:
    for args in ([], ["--help"], ["nope"], ["--home", "x"], ["--", "runs"]):
        assert for_command(app, args) is app
