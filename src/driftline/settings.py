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

Nothing is read at import time: call :meth:`Settings.load`.
"""

from __future__ import annotations

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
        return cls(**_coerce(values))


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


def _from_env(known: set[str]) -> dict[str, str]:
    return {
        name: os.environ[_ENV_PREFIX + name.upper()]
        for name in known
        if os.environ.get(_ENV_PREFIX + name.upper())
    }


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
    # Relative paths in a project config are relative to the project, not to the caller's cwd.
    root = path.parent.parent
    if "artifact_root" in data and "://" not in str(data["artifact_root"]):
        data["artifact_root"] = str((root / str(data["artifact_root"])).absolute())
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


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """Convert strings from env/files to each field's type, with a clear error on bad values."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(Settings):
        if field.name not in values:
            continue
        value = values[field.name]
        try:
            if field.type == "bool" and isinstance(value, str):
                value = _BOOL_WORDS[value.strip().lower()]
            elif field.type == "float":
                value = float(value)
            elif field.type == "Path":
                value = Path(value)
            elif field.type in ("str", "str | None"):
                value = str(value)
        except (KeyError, ValueError) as exc:
            raise InvalidArgumentError(
                f"Setting {field.name}={value!r} is not a valid {field.type}"
            ) from exc
        out[field.name] = value
    if out.get("hash_algorithm", "blake3") not in ("blake3", "sha256"):
        raise InvalidArgumentError(
            f"hash_algorithm must be 'blake3' or 'sha256', not {out['hash_algorithm']!r}"
        )
    for name in ("flush_interval", "stale_after"):
        if name in out and not (math.isfinite(out[name]) and out[name] > 0):
            raise InvalidArgumentError(f"{name} must be a positive number of seconds")
    if "model_cache_gb" in out and not (
        math.isfinite(out["model_cache_gb"]) and out["model_cache_gb"] >= 0
    ):
        raise InvalidArgumentError("model_cache_gb must be a number of GiB, 0 or more")
    return out


def _current_user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # getpass raises OSError/KeyError in containers without a passwd entry
        return "unknown"
