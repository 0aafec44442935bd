"""The registry stage's declaration (see :mod:`driftline.core.stage`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.core.stage import Host, Kernel, Services, Stage

if TYPE_CHECKING:
    from driftline.registry.service import RegistryService

__all__ = ["STAGE"]


def _build(kernel: Kernel, uses: Services) -> RegistryService:
    from driftline.data import DataService
    from driftline.registry.service import RegistryService
    from driftline.registry.store import RegistryStore
    from driftline.tracking import TrackingService

    store: RegistryStore
    if kernel.is_remote:
        from driftline.registry._http import HttpRegistryStore

        store = HttpRegistryStore(kernel.require_client("registry"))
    else:
        from driftline.registry._sql import SqlRegistryStore

        store = SqlRegistryStore(kernel.require_database("registry"))
    return RegistryService(
        store,
        audit=kernel.audit,
        content=kernel.content,
        tracking=uses.get("tracking", TrackingService),
        data=uses.get("data", DataService),
        user=kernel.settings.user,
    )


def _roots(service: RegistryService) -> Iterable[str]:
    return service.referenced_digests()


def _resolve_models_uri(uri: str, scratch: Path) -> Path:
    """``models:/churn/3`` or ``models:/churn@champion`` -> the version's pinned package."""
    from driftline.registry import resolve_models_uri

    return resolve_models_uri(uri, scratch)


def _example(host: Host, tmp_path: Path) -> Iterable[str]:
    import json

    from driftline.data import DataService
    from driftline.registry.service import RegistryService

    folder = tmp_path / "registry-package"
    folder.mkdir()
    (folder / "driftline-model.json").write_text(json.dumps({"flavor": "sklearn"}))
    (folder / "weights.bin").write_bytes(b"weights the contract test keeps")
    version = host.service("registry", RegistryService).register_model(folder, "contract")
    return host.service("data", DataService).pin_objects(version.package_digest)


STAGE: Stage[RegistryService] = Stage(
    name="registry",
    uses=("tracking", "data"),
    build=_build,
    gc_roots=_roots,
    tables=("driftline.registry._tables",),
    routes=("driftline.server.routes.registry:router",),
    cli="driftline.cli.models:install_commands",
    resolvers={"models": _resolve_models_uri},
    api="driftline.registry",
    example=_example,
)
