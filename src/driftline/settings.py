"""One frozen :class:`Settings` object: the only place driftline reads its environment.

Precedence, highest first:

1. explicit arguments to :meth:`Settings.load`,
2. ``DRIFTLINE_*`` environment variables,
3. the project's ``.driftline/config.toml``,
4. the user's ``~/.config/driftline/config.toml`` (``$XDG_CONFIG_HOME`` honoured),
5. defaults.

The project workspace is the nearest ``.driftline/`` folder in the current directory
or one of its parents (as git finds ``.git``); with none, it is ``./.driftline``, which
is created on first write. By default the metadata database is the SQLite file
``.driftline/driftline.db`` and artifacts live in ``.driftline/artifacts``.

Every value is checked against its field's type where it is read, even one a higher
source overrides, and a bad one is refused naming the config file and key or the
environment variable.

Nothing is read at import time: call :meth:`Settings.load`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = ["WORKSPACE_DIRNAME", "Settings", "find_workspace_home"]

WORKSPACE_DIRNAME = ".driftline"
_ENV_PREFIX = "DRIFTLINE_"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Resolved configuration of one driftline workspace.

    Attributes:
        home: The workspace folder (``.driftline``); default database and artifacts live here.
        uri: Metadata database URL (``sqlite:///...``, ``postgresql+psycopg://...``).
        artifact_root: Where content-addressed bytes live: a local path or any fsspec URL.
        experiment: Experiment used by ``start_run`` when none is named.
        async_logging: Queue metrics, params and tags and write them in background batches.
            ``False`` writes each call before returning (for tests and debugging).
        flush_interval: Seconds the background writer waits to gather a batch.
        hash_algorithm: ``blake3`` or ``sha256``; stored in every content address.
        capture_environment: Record git state, command line, platform and packages per run.
        user: Recorded as the author of runs.
        stale_after: Seconds without a heartbeat after which a RUNNING run is shown as stale.
        data_remote: Default remote for ``data push``/``data pull`` (a folder or fsspec URL).
        token: API token sent to a driftline server (remote mode, ``uri`` = ``http(s)://``).
        model_cache_gb: Size of the local cache of loaded model packages; beyond it the
            least recently used packages no process is using are evicted.
        webhook_allow: Where alert webhooks may go, as a comma-separated list of hosts
            (``hooks.example.com``), host patterns (``*.example.com``), IP networks
            (``10.1.0.0/16``, ``127.0.0.1``), ``public`` (hosts with public addresses
            only) or ``*`` (everything). Unset: every host except link-local and cloud
            metadata addresses; on a team server, and wherever the metadata database is
            shared (not a local SQLite file), ``public``. Checked when a channel is
            accepted and, against the resolved addresses, at each delivery (see
            :mod:`driftline.core.destinations`).
    """

    home: Path
    uri: str
    artifact_root: str
    experiment: str = "default"
    async_logging: bool = True
    flush_interval: float = 0.2
    hash_algorithm: str = "blake3"
    capture_environment: bool = True
    user: str = "unknown"
    stale_after: float = 600.0
    data_remote: str | None = None
    token: str | None = None
    model_cache_gb: float = 10.0
    webhook_allow: str | None = None

    @property
    def is_remote(self) -> bool:
        """Whether ``uri`` names a driftline server rather than a database."""
        return self.uri.startswith(("http://", "https://"))

    def __repr__(self) -> str:
        # The token is a credential: never print it (settings end up in logs and tracebacks).
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if shown["token"]:
            shown["token"] = "***"
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Resolve settings from arguments, environment and config files.

        Example:
            >>> Settings.load(uri="sqlite://")  # doctest: +SKIP
        """
        known = {f.name for f in dataclasses.fields(cls)}
        explicit = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(explicit) - known)
        if unknown:
            raise InvalidArgumentError(
                f"Unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        env = _from_env(known)
        explicit = {
            name: _converted(name, value, f"setting {name}={value!r}", text=True)
            for name, value in explicit.items()
        }
        home = Path(explicit.get("home") or env.get("home") or find_workspace_home()).absolute()
        values: dict[str, Any] = {}
        values.update(_from_file(_user_config_path(), known))
        values.update(_from_file(home / "config.toml", known))
        values.update(env)
        values.update(explicit)
        values["home"] = home
        values.setdefault("uri", f"sqlite:///{home / 'driftline.db'}")
        values.setdefault("artifact_root", str(home / "artifacts"))
        values.setdefault("user", _current_user())
        return cls(**values)


def find_workspace_home(start: Path | None = None) -> Path:
    """Return the nearest ``.driftline`` folder at or above ``start``, else ``start/.driftline``."""
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / WORKSPACE_DIRNAME
        if candidate.is_dir():
            return candidate
    return here / WORKSPACE_DIRNAME


def _user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "driftline" / "config.toml"


def _from_env(known: set[str]) -> dict[str, Any]:
    values = {}
    for name in known:
        variable = _ENV_PREFIX + name.upper()
        text = os.environ.get(variable)
        if text:
            values[name] = _converted(
                name, text, f"environment variable {variable}={text!r}", text=True
            )
    return values


def _from_file(path: Path, known: set[str]) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgumentError(f"Cannot read config file {path}: {exc}") from exc
    unknown = sorted(set(data) - known - {"home"})
    if unknown:
        raise InvalidArgumentError(
            f"Unknown key(s) {', '.join(unknown)} in {path}; known: {', '.join(sorted(known))}"
        )
    data.pop("home", None)  # the file lives in home; it cannot move it
    # Checked here, whether or not a higher source overrides the key: a bad value in a file
    # must fail in every command that reads the file, naming it, not only in some.
    data = {
        name: _converted(name, value, f"value {name} = {value!r} in config file {path}", text=False)
        for name, value in data.items()
    }
    # Relative paths in a project config are relative to the project, not to the caller's cwd.
    root = path.parent.parent
    if "artifact_root" in data and "://" not in data["artifact_root"]:
        data["artifact_root"] = str((root / data["artifact_root"]).absolute())
    return data


_BOOL_WORDS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}

# What a value of each field must be, in words (for messages), beyond its type.
_EXPECTED_RANGE = {
    "flush_interval": "a positive number of seconds",
    "stale_after": "a positive number of seconds",
    "model_cache_gb": "a number of GiB, 0 or more",
    "hash_algorithm": "'blake3' or 'sha256'",
}


def _converted(name: str, value: Any, where: str, *, text: bool) -> Any:
    """``value`` as the type of field ``name``, or an error naming ``where`` it came from.

    ``text`` is true for environment variables and arguments, whose values may be strings
    (``"yes"``, ``"2.5"``); a config file is TOML, which has booleans and numbers of its
    own, so there a quoted ``"true"`` or ``"2.5"`` is a mistake worth reporting.
    """
    kind = next(f.type for f in dataclasses.fields(Settings) if f.name == name)
    result: Any = None
    if kind == "bool":
        if isinstance(value, bool):
            result = value
        elif text and isinstance(value, str):
            result = _BOOL_WORDS.get(value.strip().lower())
        expected = (
            "a boolean (true or false; also yes/no, on/off, 1/0)"
            if text
            else "a boolean (true or false, without quotes)"
        )
    elif kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            result = float(value)
        elif text and isinstance(value, str):
            with contextlib.suppress(ValueError):
                result = float(value)
        expected = _EXPECTED_RANGE.get(name, "a number") + ("" if text else " (without quotes)")
        if result is not None and not _in_range(name, result):
            result = None
    elif kind == "Path":
        result = Path(value) if isinstance(value, str | os.PathLike) and str(value) else None
        expected = "a folder path"
    else:  # str and str | None
        if isinstance(value, str) or (text and isinstance(value, os.PathLike)):
            result = str(value)
        expected = _EXPECTED_RANGE.get(name, "a string" if text else "a string (in quotes)")
        if name == "hash_algorithm" and result not in ("blake3", "sha256"):
            result = None
        if name == "webhook_allow" and result is not None:
            from driftline.core.destinations import WebhookAllow

            try:
                WebhookAllow.parse(result)
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(f"Invalid {where}: {exc}") from None
    if result is None:
        raise InvalidArgumentError(f"Invalid {where}: expected {expected}")
    return result


def _in_range(name: str, value: float) -> bool:
    if name == "model_cache_gb":
        return math.isfinite(value) and value >= 0
    if name in ("flush_interval", "stale_after"):
        return math.isfinite(value) and value > 0
    return True


def _current_user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # getpass raises OSError/KeyError in containers without a passwd entry
        return "unknown"
