"""The tracking stage's declaration (see :mod:`driftline.core.stage`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.core.stage import Host, Kernel, Services, Stage

if TYPE_CHECKING:
    from driftline.tracking.service import TrackingService

__all__ = ["STAGE"]


def _build(kernel: Kernel, _uses: Services) -> TrackingService:
    from driftline.tracking.service import TrackingService
    from driftline.tracking.store import LoggedModelStore, RunArtifactStore, TrackingStore
    from driftline.tracking.writer import BatchWriter

    store: TrackingStore
    artifacts: RunArtifactStore
    logged_models: LoggedModelStore | None = None
    if kernel.is_remote:
        from driftline.tracking._http import HttpTrackingStore

        store = artifacts = HttpTrackingStore(kernel.require_client("tracking"))
    else:
        from driftline.tracking._logged_models import SqlLoggedModelStore
        from driftline.tracking._sql import SqlTrackingStore

        database = kernel.require_database("tracking")
        store = artifacts = SqlTrackingStore(database)
        logged_models = SqlLoggedModelStore(database)
    settings = kernel.settings
    writer = (
        BatchWriter(store.write_batch, interval=settings.flush_interval, heartbeat=kernel.live_runs)
        if settings.async_logging
        else None
    )
    return TrackingService(
        store,
        artifacts,
        kernel.content,
        writer=writer,
        user=settings.user,
        logged_models=logged_models,
    )


def _roots(service: TrackingService) -> Iterable[str]:
    return service.referenced_digests()


def _close(service: TrackingService, timeout: float | None) -> None:
    if service.writer is not None:
        service.writer.close(timeout)


def _example(host: Host, tmp_path: Path) -> Iterable[str]:
    from driftline.tracking.service import TrackingService

    service = host.service("tracking", TrackingService)
    run = service.create_run("contract")
    artifact = tmp_path / "tracking-artifact.bin"
    artifact.write_bytes(b"a run artifact the contract test keeps")
    return [service.log_artifact(run.id, artifact).digest]


STAGE: Stage[TrackingService] = Stage(
    name="tracking",
    build=_build,
    gc_roots=_roots,
    close=_close,
    tables=("driftline.tracking._tables",),
    migrations="driftline.tracking.migrations",
    routes=("driftline.server.routes.tracking:router",),
    cli="driftline.cli.tracking:install_commands",
    api="driftline._fluent",
    example=_example,
)
