"""Error messages a newcomer meets first: each says what is accepted, where, and what to do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.cli.conftest import Cli

_DATABASES = ("sqlite://", "postgresql://", "postgres://", "postgresql+psycopg://")
_BYTE_STORES = ("file://", "s3://", "gs://", "az://", "memory://")


def _schemes(message: str) -> set[str]:
    return set(re.findall(r"[a-z][a-z0-9+.-]*://", message.split("known", 1)[1]))


# -- each URL setting lists exactly the schemes it accepts ------------------------------


def test_a_bad_workspace_uri_lists_databases_and_servers(workdir: Path, cli: Cli) -> None:
    code, _, err = cli("--uri", "mysql://x/y", "runs", "list")
    assert code == 1
    assert err.startswith("InvalidArgumentError: Unsupported workspace URI 'mysql://x/y'")
    assert _schemes(err) == {*_DATABASES, "http://", "https://"}
    assert not (workdir / ".driftline" / "driftline.db").exists()


def test_a_server_database_url_lists_only_databases(workdir: Path, cli: Cli) -> None:
    code, _, err = cli("server", "--uri", "mysql://x/y")
    assert code == 1
    assert "Unsupported metadata database URL 'mysql://x/y'" in err
    assert _schemes(err) == set(_DATABASES)  # a server cannot serve another server


def test_a_bad_artifact_root_lists_the_byte_stores(workdir: Path, cli: Cli) -> None:
    code, _, err = cli("--artifact-root", "ftp://host/x", "runs", "list")
    assert code == 1
    assert "Unsupported artifact root 'ftp://host/x'; known: a local folder" in err
    assert _schemes(err) >= set(_BYTE_STORES)
    assert not _schemes(err) & {"http://", "https://", "ftp://"}
    assert not (workdir / ".driftline" / "driftline.db").exists(), "nothing stored on refusal"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "https://example.org/x"])
def test_a_server_url_as_artifact_root_says_where_it_belongs(
    workdir: Path, cli: Cli, url: str
) -> None:
    code, _, err = cli("--artifact-root", url, "runs", "list")
    assert code == 1
    assert f"Unsupported artifact root {url!r}" in err
    assert "make it the workspace URI (DRIFTLINE_URI or --uri)" in err


def test_a_bad_data_remote_is_named_as_such(workdir: Path, cli: Cli) -> None:
    code, _, err = cli("data", "push", "--remote", "ftp://host/x")
    assert code == 1
    assert "Unsupported data remote 'ftp://host/x'; known: a local folder" in err
    assert _schemes(err) >= set(_BYTE_STORES)


def test_the_python_api_gives_the_same_workspace_uri_message(workdir: Path) -> None:
    from driftline.errors import InvalidArgumentError
    from driftline.workspace import Workspace

    with pytest.raises(InvalidArgumentError, match="Unsupported workspace URI") as info:
        Workspace.from_settings(uri="mysql://x/y")
    assert {"http://", "https://", "sqlite://"} <= _schemes(str(info.value))


# -- a bad value in a config file or the environment fails every command, naming it ------


def test_an_invalid_boolean_in_config_toml_fails_the_cli_naming_the_file(
    workdir: Path, cli: Cli
) -> None:
    config = workdir / ".driftline" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    # the CLI sets async_logging itself; the file's value must be refused all the same
    config.write_text('async_logging = "flase"\n')
    code, out, err = cli("runs", "list")
    assert code == 1
    assert out == ""
    assert err == (
        f"InvalidArgumentError: Invalid value async_logging = 'flase' in config file {config}: "
        "expected a boolean (true or false, without quotes)\n"
    )


def test_an_invalid_environment_variable_fails_the_cli_naming_it(
    workdir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_ASYNC_LOGGING", "maybe")
    code, _, err = cli("runs", "list")
    assert code == 1
    assert "Invalid environment variable DRIFTLINE_ASYNC_LOGGING='maybe'" in err
    assert "expected a boolean" in err


# -- help: every option and argument explained, no summary cut off at 80 columns ---------

# The command groups (and root commands) whose help this file checks.
_GROUPS = ("data", "runs", "artifacts", "experiments", "db")
_ROOT_COMMANDS = ("init", "server", "gc")


def _commands() -> list[tuple[str, object]]:
    import typer

    from driftline.cli.app import app

    root = typer.main.get_command(app)
    found: list[tuple[str, object]] = [(n, root.commands[n]) for n in _ROOT_COMMANDS]  # type: ignore[attr-defined]
    for group in _GROUPS:
        for name, command in root.commands[group].commands.items():  # type: ignore[attr-defined]
            found.append((f"{group} {name}", command))
    return found


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{name} {param.name}"
        for name, command in _commands()
        for param in command.params  # type: ignore[attr-defined]
        if not getattr(param, "help", None)
    ]
    assert missing == []


@pytest.mark.parametrize("group", [*_GROUPS, None])
def test_command_summaries_are_not_cut_off_at_80_columns(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, group: str | None
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli(*([group] if group else []), "--help")
    assert code == 0
    listing = out.split("Commands:", 1)[1].splitlines()
    wanted = _ROOT_COMMANDS if group is None else None
    cut = [
        line
        for line in listing
        if line.split() and (wanted is None or line.split()[0] in wanted)
        if line.rstrip().endswith(("...", "…"))
    ]
    assert cut == []
    assert all(len(line) <= 80 for line in listing)
