"""Garbage collection of the artifact store: mark from every stage, sweep after a grace period.

Marks come from every dataset version (manifests, shards, files, profiles), every run
artifact and every registered model version (its pinned package); later stages add
theirs here. Objects younger than the grace
period are never swept, because a commit in progress has written objects before the
metadata that refers to them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftline.core.artifacts.local import LocalByteStore
from driftline.core.hashing import ALGORITHMS

if TYPE_CHECKING:
    from driftline.workspace import Workspace

__all__ = ["GcResult", "collect_garbage"]

DEFAULT_GRACE_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GcResult:
    """What a collection found (and, unless ``dry_run``, removed)."""

    dry_run: bool
    referenced: int
    unreferenced: tuple[str, ...]
    bytes: int
    kept_young: int


def _stored_digests(workspace: Workspace) -> Iterator[tuple[str, str]]:
    for algorithm in ALGORITHMS:
        for key in workspace.content.backend.iter_keys(algorithm):
            parts = key.split("/")
            if len(parts) == 3:
                yield key, f"{algorithm}:{parts[1]}{parts[2]}"


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
    marked = (
        workspace.data.referenced_digests()
        | workspace.tracking.referenced_digests()
        | workspace.registry.referenced_digests()
    )
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
    if not dry_run:
        if isinstance(backend, LocalByteStore):
            backend.delete_many(list(doomed.values()))  # rewrites each affected pack once
        else:
            for key in doomed.values():
                backend.delete(key)
    return GcResult(
        dry_run=dry_run,
        referenced=len(marked),
        unreferenced=tuple(sorted(doomed)),
        bytes=size,
        kept_young=young,
    )
