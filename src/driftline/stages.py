"""The stage list: every stage the workspace, gc, migrations, the server and the CLI assemble.

Adding a stage is a package declaring a :class:`~driftline.core.stage.Stage` plus one
line here. The list holds import paths, so listing the stages imports nothing; a
stage's descriptor is imported when something assembles it, and its heavy parts
(stores, routers, CLI commands) only when those are built.

Order matters only for ``uses``: a stage comes after the stages whose services it uses.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from driftline.core.stage import Stage, load_object
from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from driftline.core.metadata import MigrationHistory

__all__ = [
    "KERNEL_TABLES",
    "STAGES",
    "install_resolvers",
    "load_stages",
    "migration_history",
]

STAGES: tuple[str, ...] = (
    "driftline.tracking.stage:STAGE",
    "driftline.data.stage:STAGE",
    "driftline.models.stage:STAGE",
    "driftline.registry.stage:STAGE",
    "driftline.auth.stage:STAGE",
    "driftline.serving.stage:STAGE",
    "driftline.monitoring.stage:STAGE",
    "driftline.pipelines.stage:STAGE",
    "driftline.retraining.stage:STAGE",
)

#: Modules of the kernel that declare tables (they belong to no stage).
KERNEL_TABLES: tuple[str, ...] = ("driftline.core.audit",)

_cache: dict[tuple[str, ...], tuple[Stage[Any], ...]] = {}
_lock = threading.Lock()


def load_stages(paths: Sequence[str] = STAGES) -> tuple[Stage[Any], ...]:
    """The descriptors the import paths name, checked: unique names, and every stage
    after the stages it ``uses``."""
    key = tuple(paths)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    stages: list[Stage[Any]] = []
    for path in key:
        stage = load_object(path)
        if not isinstance(stage, Stage):
            raise InvalidArgumentError(f"{path} is not a driftline Stage but {type(stage)!r}")
        seen = {s.name for s in stages}
        if stage.name in seen:
            raise InvalidArgumentError(f"Two stages are named {stage.name!r} ({path})")
        missing = [name for name in stage.uses if name not in seen]
        if missing:
            raise InvalidArgumentError(
                f"The {stage.name} stage uses {', '.join(missing)}, which must come before "
                "it in the stage list"
            )
        stages.append(stage)
    loaded = tuple(stages)
    with _lock:
        _cache[key] = loaded
    return loaded


def migration_history(stages: Iterable[Stage[Any]] | None = None) -> MigrationHistory:
    """The Alembic history of the kernel plus every stage's migration branch (of the
    declared stages by default)."""
    from driftline.core.metadata.migrate import MigrationHistory

    chosen = load_stages() if stages is None else stages
    return MigrationHistory.of(s.migrations for s in chosen if s.migrations)


def install_resolvers(stages: Iterable[Stage[Any]]) -> None:
    """Register the model URI resolvers the stages declare (the composition root calls
    this when it opens a workspace; registering is process-wide)."""
    from driftline.models.uri import known_schemes, register_uri_resolver

    for stage in stages:
        for scheme, resolver in stage.resolvers.items():
            # A scheme already served (by the user's own resolver, say) keeps its resolver.
            if scheme not in known_schemes():
                register_uri_resolver(scheme, resolver)
