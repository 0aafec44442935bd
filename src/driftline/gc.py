"""Garbage collection of the artifact store: mark from every stage, sweep after a grace period.

Marks come from every declared stage's ``gc_roots`` (see :mod:`driftline.core.stage`):
dataset versions (manifests, shards, files, profiles), run artifacts, registered model
versions (their pinned packages), and whatever a later stage declares. A stage's roots
are exercised by the stage contract test, so a stage cannot forget them silently.
Objects younger than the grace period are never swept, because a commit in progress has
written objects before the metadata that refers to them.

A local store also collects what crashed writes left behind, once older than the grace
period: temporary files, and packs no reader sees (a torn index, or a pack whose index
was never published). Before such a pack goes, every object its index still names that
something refers to and that is stored nowhere else is salvaged, if its bytes match its
digest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.core.artifacts.bytestore import LocalObjects, local_objects
from driftline.core.hashing import ALGORITHMS, hash_bytes, key_digest, parse_digest

if TYPE_CHECKING:
    from driftline.workspace import Workspace

__all__ = ["GcResult", "collect_garbage", "referenced_digests"]

DEFAULT_GRACE_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GcResult:
    """What a collection found (and, unless ``dry_run``, removed)."""

    dry_run: bool
    referenced: int
    unreferenced: tuple[str, ...]
    bytes: int
    kept_young: int
    #: Files crashed writes left (paths inside the store), and their total size.
    leftovers: tuple[str, ...] = ()
    leftover_bytes: int = 0
    #: Referenced objects recovered from packs whose index was torn.
    salvaged: tuple[str, ...] = ()


def _stored_digests(workspace: Workspace) -> Iterator[tuple[str, str]]:
    for algorithm in ALGORITHMS:
        for key in workspace.content.backend.iter_keys(algorithm):
            digest = key_digest(key)
            if digest is not None:
                yield key, digest


def referenced_digests(workspace: Workspace) -> set[str]:
    """Every digest some stage's records refer to: the union of the stages' gc roots."""
    marked: set[str] = set()
    for stage in workspace.stages:
        marked |= stage.roots(workspace.service(stage.name, object))
    return marked


def collect_garbage(
    workspace: Workspace, *, dry_run: bool = False, grace_seconds: float = DEFAULT_GRACE_SECONDS
) -> GcResult:
    """Delete stored objects nothing refers to and that are older than ``grace_seconds``.

    Garbage collection runs where the artifact store is: on a server's workspace, not
    through it (a client cannot see every reference, and should not delete for a team).
    """
    if workspace.is_remote:
        from driftline.errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"gc runs on the server, not through it: run `driftline gc` on the machine of "
            f"{workspace.settings.uri} with the server's --uri and --artifacts"
        )
    marked = referenced_digests(workspace)
    backend = workspace.content.backend
    cutoff = time.time() - grace_seconds
    doomed: dict[str, str] = {}
    size = young = 0
    for key, digest in _stored_digests(workspace):
        if digest in marked:
            continue
        modified = backend.modified(key)
        if modified > cutoff:
            young += 1
            continue
        doomed[digest] = key
        size += backend.size(key)
    leftovers: dict[str, int] = {}
    salvaged: list[str] = []
    local = local_objects(backend)
    if local is not None:
        leftovers, salvaged = _clear_leftovers(local, marked, cutoff, dry_run=dry_run)
    if not dry_run:
        if local is not None:
            local.delete_many(list(doomed.values()))  # rewrites each affected pack once
        else:
            for key in doomed.values():
                backend.delete(key)
    return GcResult(
        dry_run=dry_run,
        referenced=len(marked),
        unreferenced=tuple(sorted(doomed)),
        bytes=size,
        kept_young=young,
        leftovers=tuple(sorted(leftovers)),
        leftover_bytes=sum(leftovers.values()),
        salvaged=tuple(sorted(salvaged)),
    )


def _clear_leftovers(
    backend: LocalObjects, marked: set[str], cutoff: float, *, dry_run: bool
) -> tuple[dict[str, int], list[str]]:
    """Salvage what stray packs still hold of ``marked``, then remove stray files older
    than ``cutoff``; return ``({file inside the store: its size}, the salvaged digests)``."""
    files = backend.stale_temps(cutoff)
    salvaged = []
    for stray in backend.stray_packs():
        if stray.modified > cutoff:  # perhaps a pack being published right now
            continue
        for key, where in stray.named.items():
            digest = key_digest(key)
            if digest is None or digest not in marked or backend.exists(key):
                continue
            try:
                data = where.read()
            except FileNotFoundError:  # the torn index names bytes the pack never got
                continue
            if hash_bytes(data, parse_digest(digest)[0]) != digest:
                continue
            salvaged.append(digest)
            if not dry_run:
                backend.write_bytes(key, data)  # stored loose, synced, before the pack goes
        files.extend(stray.files)
    sizes = {path.relative_to(backend.root).as_posix(): _size_of(path) for path in files}
    if not dry_run:
        for path in files:
            path.unlink(missing_ok=True)
    return sizes, salvaged


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
