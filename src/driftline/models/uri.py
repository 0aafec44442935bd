"""Model URIs: ``runs:/<run id>/<path>``, ``models:/...`` (the registry's), local folders.

A URI is turned into a local package folder by the resolver registered for its scheme::

    resolver(uri, scratch_dir) -> Path of a folder holding the package

Stages declare the schemes they resolve (``runs`` here, ``models`` in the registry, see
``Stage.resolvers``) and the composition root registers them when it opens a workspace,
not as a side effect of importing anything. A scheme nobody registered yet opens the
default workspace, which registers the declared ones, before it is refused. A resolver
may put the package in ``scratch_dir`` (a fresh temporary folder kept for as long as the
loaded model lives) or return a folder of its own, such as a cache. Either way the
folder is verified file by file against its manifest before anything is loaded.

The ``runs`` resolver keeps downloaded packages in the workspace's model cache
(:mod:`driftline.models.cache`) under the hex digest of their manifest. The manifest's
digest comes from the run's artifact index, and a cached copy is used only if its
manifest still hashes to it; the other files are then verified against that manifest
like any package.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from driftline.core.hashing import hash_file, parse_digest
from driftline.errors import IntegrityError, InvalidArgumentError, NotFoundError

# The model cache and the package format are imported where they are used: opening a
# workspace imports this module to register the stages' resolvers, and a command that
# loads no model should not pay for the flavors.

__all__ = [
    "cached_package",
    "parse_uri",
    "register_uri_resolver",
    "resolve",
    "resolve_run_uri",
    "run_uri",
]

Resolver = Callable[[str, Path], Path]

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
_lock = threading.Lock()
_resolvers: dict[str, Resolver] = {}


def register_uri_resolver(scheme: str, resolver: Resolver) -> None:
    """Make ``load`` understand ``<scheme>:...`` URIs (registering again replaces).

    Args:
        scheme: Lowercase letters, digits, ``+ . -``; e.g. ``models``.
        resolver: ``resolver(uri, scratch_dir) -> local package folder``.

    Example:
        >>> register_uri_resolver("models", lambda uri, scratch: fetch(uri, scratch))
        ... # doctest: +SKIP
    """
    if not isinstance(scheme, str) or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        raise InvalidArgumentError(
            f"Invalid URI scheme {scheme!r}: use lowercase letters, digits, + . -"
        )
    if not callable(resolver):
        raise InvalidArgumentError("resolver must be callable as resolver(uri, scratch_dir)")
    with _lock:
        _resolvers[scheme] = resolver


def known_schemes() -> list[str]:
    """Schemes ``load`` understands now."""
    with _lock:
        return sorted(_resolvers)


def parse_uri(uri: str) -> tuple[str | None, str]:
    """``(scheme, rest)``; the scheme is ``None`` for a plain path (``C:\\...`` included)."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidArgumentError("A model URI must be a non-empty string")
    match = _SCHEME.match(uri)
    if match is None or len(match.group(1)) == 1:  # one letter: a Windows drive
        return None, uri
    return match.group(1), uri[match.end() :]


def resolve(uri: str, scratch: Path) -> Path:
    """The local package folder for ``uri`` (see the module docstring)."""
    scheme, rest = parse_uri(uri)
    if scheme is None or scheme == "file":
        path = Path(rest.removeprefix("//") if scheme == "file" else rest)
        if not path.is_dir():
            hint = _hint(rest) if scheme is None else ""
            raise NotFoundError(f"No model package folder at {path}{hint}")
        return path
    with _lock:
        resolver = _resolvers.get(scheme)
    if resolver is None:
        # The resolvers the stages declare are registered when a workspace opens; the
        # stage URIs (runs:, models:) name objects of the default workspace anyway.
        from driftline.core.session import default_workspace

        default_workspace()
        with _lock:
            resolver = _resolvers.get(scheme)
    if resolver is None:
        known = ", ".join(f"{s}:" for s in known_schemes())
        raise InvalidArgumentError(
            f"Unknown model URI scheme {scheme!r} in {uri}; known: {known}, local folders"
        )
    folder = Path(resolver(uri, scratch))
    if not folder.is_dir():
        raise NotFoundError(f"The {scheme}: resolver gave {folder} for {uri}, which is no folder")
    return folder


# Refs that read like a registry version or a run id, given without their scheme.
_VERSION_REF = re.compile(r"[^\s/\\@:]+/[0-9]+")
_ALIAS_REF = re.compile(r"[^\s/\\@:]+@[^\s/\\@:]+")
_RUN_REF = re.compile(r"([0-9a-f]{32})(?:/(.+))?")


def _hint(text: str) -> str:
    """What the user probably meant by a plain ``text`` that is no folder, as a sentence."""
    text = text.strip()
    if _VERSION_REF.fullmatch(text) or _ALIAS_REF.fullmatch(text):
        return f". A registered model version is loaded by its URI: models:/{text}"
    run = _RUN_REF.fullmatch(text)
    if run:
        return (
            ". A model a run logged is loaded by its URI: "
            f"{run_uri(run.group(1), run.group(2) or 'model')}"
        )
    return ""


def run_uri(run_id: str, path: str) -> str:
    """``runs:/<run id>/<path>``."""
    return f"runs:/{run_id}/{path.strip('/')}"


def parse_run_uri(uri: str) -> tuple[str, str]:
    """``(run id, artifact path)`` of a ``runs:/<run id>/<path>`` URI."""
    _, rest = parse_uri(uri)
    run_id, _, path = rest.lstrip("/").partition("/")
    if not run_id or not path.strip("/"):
        raise InvalidArgumentError(
            f"Malformed run URI {uri!r}: expected runs:/<run id>/<artifact path>, "
            "e.g. runs:/0190b2.../model"
        )
    return run_id, path.strip("/")


def resolve_run_uri(uri: str, scratch: Path) -> Path:
    """``runs:/<run id>/<path>`` -> the package in the default workspace's model cache."""
    from driftline.core.session import default_workspace
    from driftline.tracking import TrackingService

    run_id, path = parse_run_uri(uri)
    workspace = default_workspace()
    tracking = workspace.service("tracking", TrackingService)
    return cached_package(
        workspace,
        list_entries=lambda: tracking.list_artifacts(run_id, path),
        download=lambda dest: tracking.download_artifacts(run_id, path, dest),
        prefix=path,
        what=f"run {run_id}",
    )


def cached_package(
    workspace: Any,
    *,
    list_entries: Callable[[], list[Any]],
    download: Callable[[Path], Any],
    prefix: str,
    what: str,
) -> Path:
    """Fetch a stored package into the workspace's model cache (or reuse the cached copy).

    Args:
        workspace: The workspace (its settings say where the cache is, and its size).
        list_entries: Returns the stored files (objects with ``path`` and ``digest``).
        download: Copies the package's files, verified, into the folder it is given.
        prefix: The package's folder among the entries' paths.
        what: What to call the owner in messages (``run <id>``).

    Returns:
        The package's folder in the cache, named by the hex digest of its manifest.
    """
    from driftline.models.cache import ModelCache
    from driftline.models.package import MANIFEST_FILE

    entries = list_entries()
    manifest_path = f"{prefix}/{MANIFEST_FILE}"
    manifest = next((e for e in entries if e.path == manifest_path), None)
    if manifest is None:
        listed = ", ".join(e.path for e in entries[:5]) or "nothing"
        raise NotFoundError(
            f"{what} has no model at {prefix!r}: no {MANIFEST_FILE} there (found {listed})"
        )
    algorithm, hexdigest = parse_digest(manifest.digest)
    return ModelCache.of(workspace.settings).fetch(
        hexdigest,
        download,
        check=lambda cached: _check_cached_manifest(cached, manifest.digest, algorithm),
    )


def _check_cached_manifest(folder: Path, digest: str, algorithm: str) -> None:
    from driftline.models.package import MANIFEST_FILE

    manifest = folder / MANIFEST_FILE
    actual = hash_file(manifest, algorithm)[0] if manifest.is_file() else "missing"
    if actual != digest:
        raise IntegrityError(
            f"The cached model package {folder} is corrupt or was modified: its "
            f"{MANIFEST_FILE} is {actual}, the store says {digest}. The model was not "
            "loaded; delete that folder to download a fresh verified copy."
        )
