"""The serving stage's declaration (see :mod:`driftline.core.stage`).

Serving's records are deployments (``serving_deployments``, on its own migration
branch ``serving``). It stores no content-addressed objects: what it writes, the
prediction log, is Parquet under ``predictions/`` (see :mod:`driftline.serving.predlog`),
outside the ``<algorithm>/`` keys that ``gc`` lists and sweeps, so it has no roots. Its
service is :class:`~driftline.serving.deployments.DeploymentService`; the server it runs
is built by ``driftline serve``.

Its extension points (what later stages contribute through ``Stage.extends``):
:data:`~driftline.serving.analysis.CANARY_CHECKS` (checks run at every canary check) and
:data:`~driftline.serving.metrics.METRICS` (Prometheus collectors on ``/metrics``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.core.stage import Kernel, Services, Stage, no_roots

if TYPE_CHECKING:
    from driftline.serving.deployments import DeploymentService

__all__ = ["STAGE"]


def _build(kernel: Kernel, uses: Services) -> DeploymentService:
    from driftline.core.notify import DeliveryPolicy
    from driftline.models import ModelCache
    from driftline.registry import RegistryService
    from driftline.serving.analysis import CANARY_CHECKS
    from driftline.serving.deployments import DeploymentService
    from driftline.serving.predlog import prediction_root
    from driftline.serving.store import DeploymentFigures, DeploymentStore

    store: DeploymentStore
    figures: DeploymentFigures | None = None
    if kernel.is_remote:
        from driftline.serving._http import HttpDeploymentFigures, HttpDeploymentStore

        store = HttpDeploymentStore(kernel.require_client("serving"))
        figures = HttpDeploymentFigures(kernel.require_client("serving"))
    else:
        from driftline.serving._sql import SqlDeploymentStore

        store = SqlDeploymentStore(kernel.require_database("serving"))
    return DeploymentService(
        store,
        registry=uses.get("registry", RegistryService),
        cache=uses.get("models", ModelCache),
        prediction_root=prediction_root(kernel.settings.home, kernel.settings.artifact_root),
        user=kernel.settings.user,
        # Asked when a canary check is due: a process that never drives a rollout never
        # builds the stages contributing checks.
        canary_checks=lambda: kernel.contributions(CANARY_CHECKS),
        figures=figures,
        delivery=DeliveryPolicy.from_settings(kernel.settings),
    )


STAGE: Stage[DeploymentService] = Stage(
    name="serving",
    uses=("models", "registry"),
    build=_build,
    gc_roots=no_roots,
    tables=("driftline.serving._tables",),
    migrations="driftline.serving.migrations",
    routes=("driftline.server.routes.serving:router",),
    cli="driftline.cli.serving:install_commands",
    api="driftline.serving",
)
