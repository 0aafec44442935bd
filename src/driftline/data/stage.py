"""The data stage's declaration (see :mod:`driftline.core.stage`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.core.stage import Host, Kernel, Services, Stage

if TYPE_CHECKING:
    from driftline.data.service import DataService

__all__ = ["STAGE"]


def _build(kernel: Kernel, uses: Services) -> DataService:
    from driftline.data.service import DataService
    from driftline.data.store import DataStore

    store: DataStore
    if kernel.is_remote:
        from driftline.data._http import HttpDataStore

        store = HttpDataStore(kernel.require_client("data"))
    else:
        from driftline.data._sql import SqlDataStore

        store = SqlDataStore(kernel.require_database("data"))

    def run_exists(run_id: str) -> bool:
        # Tracking is built only when a commit names its producing run.
        from driftline.tracking import TrackingService

        return uses.get("tracking", TrackingService).store.find_run(run_id) is not None

    return DataService(
        store,
        kernel.content,
        stat_cache=kernel.settings.home / "cache" / "stat.db",
        user=kernel.settings.user,
        run_exists=run_exists,
    )


def _roots(service: DataService) -> Iterable[str]:
    return service.referenced_digests()


def _close(service: DataService, _timeout: float | None) -> None:
    service.close()


def _example(host: Host, tmp_path: Path) -> Iterable[str]:
    from driftline.data.service import DataService

    service = host.service("data", DataService)
    folder = tmp_path / "data-example"
    folder.mkdir()
    (folder / "rows.csv").write_text("a,b\n1,2\n")
    (folder / "notes.txt").write_text("a file the contract test keeps")
    return service.version_objects(service.commit("contract", folder))


STAGE: Stage[DataService] = Stage(
    name="data",
    uses=("tracking",),
    build=_build,
    gc_roots=_roots,
    close=_close,
    tables=("driftline.data._tables",),
    routes=("driftline.server.routes.data:router",),
    cli="driftline.cli.data:install_commands",
    api="driftline.data",
    example=_example,
)
