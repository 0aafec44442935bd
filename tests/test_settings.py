"""Settings: one precedence order, workspace discovery, clear errors; naive times are UTC."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftline.core.clock import to_ms
from driftline.errors import InvalidArgumentError
from driftline.settings import Settings, find_workspace_home
from driftline.workspace import Workspace


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with a ``.driftline`` workspace; the test runs inside it."""
    root = tmp_path / "project"
    (root / ".driftline").mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


def user_config(tmp_path: Path) -> Path:
    return tmp_path / "xdg-config" / "driftline" / "config.toml"  # XDG_CONFIG_HOME of conftest


def test_defaults_live_in_the_discovered_workspace(project: Path) -> None:
    settings = Settings.load()
    home = project / ".driftline"
    assert settings.home == home
    assert settings.uri == f"sqlite:///{home / 'driftline.db'}"
    assert settings.artifact_root == str(home / "artifacts")
    assert settings.experiment == "default"
    assert settings.async_logging is True
    assert settings.flush_interval == 0.2
    assert settings.hash_algorithm == "blake3"
    assert settings.capture_environment is True
    assert settings.stale_after == 600.0
    assert settings.user


def test_without_a_workspace_home_is_dot_driftline_here(tmp_path: Path) -> None:
    here = tmp_path / "empty"
    here.mkdir()
    if any((folder / ".driftline").is_dir() for folder in here.parents):
        pytest.skip("a parent of the temporary folder has a .driftline of its own")
    assert find_workspace_home(here) == here / ".driftline"
    assert not (here / ".driftline").exists(), "discovery must not create anything"


def test_discovery_from_a_subfolder_finds_the_nearest_workspace(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = project / "src" / "pkg" / "deeper"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_workspace_home() == project / ".driftline"
    assert Settings.load().home == project / ".driftline"
    (project / "src" / ".driftline").mkdir()
    assert Settings.load().home == project / "src" / ".driftline"
    assert find_workspace_home(project) == project / ".driftline"


def test_a_project_config_is_found_from_a_subfolder(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        project / ".driftline" / "config.toml",
        'experiment = "from-project"\nartifact_root = "shared/artifacts"\n',
    )
    (project / "notebooks").mkdir()
    monkeypatch.chdir(project / "notebooks")
    settings = Settings.load()
    assert settings.experiment == "from-project"
    # a relative path in the project config is relative to the project, not to the cwd
    assert settings.artifact_root == str(project / "shared" / "artifacts")


def test_precedence_arguments_env_project_user_defaults(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(user_config(tmp_path), 'experiment = "user"\nflush_interval = 1.5\nuser = "u-file"\n')
    assert Settings.load().experiment == "user"
    assert Settings.load().flush_interval == 1.5

    write(project / ".driftline" / "config.toml", 'experiment = "project"\nflush_interval = 2.5\n')
    settings = Settings.load()
    assert (settings.experiment, settings.flush_interval) == ("project", 2.5)
    assert settings.user == "u-file"  # keys the project does not set still come from the user

    monkeypatch.setenv("DRIFTLINE_EXPERIMENT", "env")
    monkeypatch.setenv("DRIFTLINE_FLUSH_INTERVAL", "3.5")
    settings = Settings.load()
    assert (settings.experiment, settings.flush_interval) == ("env", 3.5)

    settings = Settings.load(experiment="argument", flush_interval=4.5)
    assert (settings.experiment, settings.flush_interval) == ("argument", 4.5)
    # None means "not given", so the next source decides
    assert Settings.load(experiment=None).experiment == "env"

    monkeypatch.delenv("DRIFTLINE_EXPERIMENT")
    monkeypatch.delenv("DRIFTLINE_FLUSH_INTERVAL")
    (project / ".driftline" / "config.toml").unlink()
    user_config(tmp_path).unlink()
    assert Settings.load().experiment == "default"


def test_an_empty_environment_variable_is_ignored(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_EXPERIMENT", "")
    assert Settings.load().experiment == "default"


def test_home_from_environment_or_argument_picks_the_project_config(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere" / ".driftline"
    write(other / "config.toml", 'experiment = "elsewhere"\n')
    monkeypatch.setenv("DRIFTLINE_HOME", str(other))
    settings = Settings.load()
    assert settings.home == other
    assert settings.experiment == "elsewhere"
    assert settings.uri == f"sqlite:///{other / 'driftline.db'}"
    assert Settings.load(home=project / ".driftline").experiment == "default"


def test_a_config_file_cannot_move_home(project: Path) -> None:
    write(project / ".driftline" / "config.toml", 'home = "/somewhere/else"\n')
    assert Settings.load().home == project / ".driftline"


def test_unknown_arguments_are_refused_with_the_known_names(project: Path) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Settings.load(urii="sqlite://")
    assert "urii" in str(info.value)
    assert "uri" in str(info.value).split("known:")[1]


@pytest.mark.parametrize("where", ["project", "user"])
def test_unknown_keys_in_config_files_are_refused_naming_the_file(
    project: Path, tmp_path: Path, where: str
) -> None:
    path = project / ".driftline" / "config.toml" if where == "project" else user_config(tmp_path)
    write(path, 'experiment = "x"\nflush_intervall = 1\n')
    with pytest.raises(InvalidArgumentError) as info:
        Settings.load()
    assert "flush_intervall" in str(info.value)
    assert str(path) in str(info.value)


def test_a_broken_config_file_is_a_clear_error(project: Path) -> None:
    path = write(project / ".driftline" / "config.toml", "experiment = \n")
    with pytest.raises(InvalidArgumentError, match="Cannot read config file") as info:
        Settings.load()
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("1", True),
        ("true", True),
        ("Yes", True),
        ("ON", True),
        (" false ", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ],
)
def test_boolean_words(
    project: Path, monkeypatch: pytest.MonkeyPatch, word: str, value: bool
) -> None:
    monkeypatch.setenv("DRIFTLINE_ASYNC_LOGGING", word)
    assert Settings.load().async_logging is value


def test_toml_types_are_kept(project: Path) -> None:
    write(
        project / ".driftline" / "config.toml",
        "async_logging = false\ncapture_environment = false\nflush_interval = 1\n",
    )
    settings = Settings.load()
    assert settings.async_logging is False
    assert settings.capture_environment is False
    assert settings.flush_interval == 1.0
    assert isinstance(settings.flush_interval, float)


_BOOLEAN_WORDS = "expected a boolean (true or false; also yes/no, on/off, 1/0)"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ASYNC_LOGGING", "maybe", _BOOLEAN_WORDS),
        ("CAPTURE_ENVIRONMENT", "2", _BOOLEAN_WORDS),
        ("FLUSH_INTERVAL", "fast", "expected a positive number of seconds"),
        ("STALE_AFTER", "ten minutes", "expected a positive number of seconds"),
        ("FLUSH_INTERVAL", "0", "expected a positive number of seconds"),
        ("FLUSH_INTERVAL", "-1", "expected a positive number of seconds"),
        ("MODEL_CACHE_GB", "-1", "expected a number of GiB, 0 or more"),
        ("HASH_ALGORITHM", "md5", "expected 'blake3' or 'sha256'"),
    ],
)
def test_bad_environment_values_name_the_variable(
    project: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(f"DRIFTLINE_{name}", value)
    with pytest.raises(InvalidArgumentError) as info:
        Settings.load()
    assert str(info.value) == (
        f"Invalid environment variable DRIFTLINE_{name}={value!r}: {expected}"
    )


def test_a_bad_environment_value_fails_even_when_an_argument_overrides_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_ASYNC_LOGGING", "maybe")
    with pytest.raises(InvalidArgumentError, match="DRIFTLINE_ASYNC_LOGGING='maybe'"):
        Settings.load(async_logging=False)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('async_logging = "maybe"', "expected a boolean (true or false, without quotes)"),
        ('async_logging = "true"', "expected a boolean (true or false, without quotes)"),
        ("capture_environment = 2", "expected a boolean (true or false, without quotes)"),
        ('flush_interval = "2"', "expected a positive number of seconds (without quotes)"),
        ("stale_after = -5", "expected a positive number of seconds (without quotes)"),
        ("flush_interval = true", "expected a positive number of seconds (without quotes)"),
        ("experiment = 5", "expected a string (in quotes)"),
        ('hash_algorithm = "md5"', "expected 'blake3' or 'sha256'"),
        ("artifact_root = [1]", "expected a string (in quotes)"),
    ],
)
@pytest.mark.parametrize("where", ["project", "user"])
def test_bad_config_file_values_name_the_file_key_and_type(
    project: Path, tmp_path: Path, line: str, expected: str, where: str
) -> None:
    path = project / ".driftline" / "config.toml" if where == "project" else user_config(tmp_path)
    write(path, f'user = "fine"\n{line}\n')
    key = line.partition(" = ")[0]
    value = tomllib.loads(line)[key]
    with pytest.raises(InvalidArgumentError) as info:
        # overridden by an argument, as the CLI overrides async_logging: still refused
        Settings.load(async_logging=False)
    assert str(info.value) == (f"Invalid value {key} = {value!r} in config file {path}: {expected}")


def test_bad_argument_values_are_clear_errors(project: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="async_logging='perhaps'"):
        Settings.load(async_logging="perhaps")
    with pytest.raises(InvalidArgumentError, match="flush_interval"):
        Settings.load(flush_interval="soon")


def test_a_nan_flush_interval_is_refused(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_FLUSH_INTERVAL", "nan")
    with pytest.raises(InvalidArgumentError, match="DRIFTLINE_FLUSH_INTERVAL='nan'"):
        Settings.load()


def test_settings_are_frozen(project: Path) -> None:
    settings = Settings.load()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.uri = "sqlite://"  # type: ignore[misc]
    changed = dataclasses.replace(settings, experiment="other")
    assert changed.experiment == "other"
    assert settings.experiment == "default"


def test_nothing_is_read_at_import(tmp_path: Path) -> None:
    broken = write(tmp_path / "xdg" / "driftline" / "config.toml", "this is not toml")
    done = subprocess.run(
        [sys.executable, "-c", "import driftline, driftline.settings, driftline.workspace"],
        env={
            **os.environ,
            "XDG_CONFIG_HOME": str(broken.parent.parent),
            "DRIFTLINE_FLUSH_INTERVAL": "nonsense",
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr


# -- naive datetimes are UTC, whatever TZ says ----------------------------------------------


@pytest.mark.usefixtures("new_york_time")
def test_to_ms_treats_naive_datetimes_as_utc_under_new_york_time() -> None:
    assert time.strftime("%Z", time.localtime(1_720_000_000)) in ("EDT", "EST")
    naive = datetime(2024, 7, 1, 12, 0, 0)
    assert to_ms(naive) == 1_719_835_200_000
    assert to_ms(naive) == to_ms(naive.replace(tzinfo=UTC))


@pytest.mark.usefixtures("new_york_time")
def test_search_filters_read_naive_iso_times_as_utc_under_new_york_time(
    open_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = open_workspace(f"sqlite:///{tmp_path / 'tz.db'}")
    run = ws.tracking.create_run("tz")
    naive_utc = run.start_time.astimezone(UTC).replace(tzinfo=None)
    just_before = (naive_utc - timedelta(seconds=1)).isoformat()
    just_after = (naive_utc + timedelta(seconds=1)).isoformat()

    def ids(text: str) -> list[str]:
        return [r.id for r in ws.tracking.search_runs(filter=text)]

    assert ids(f"attributes.start_time >= '{just_before}'") == [run.id]
    assert ids(f"attributes.start_time <= '{just_after}'") == [run.id]
    assert ids(f"attributes.start_time > '{just_after}'") == []
    assert ids(f"attributes.start_time < '{just_before}'") == []
