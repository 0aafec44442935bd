"""The retraining stage's declaration (see :mod:`driftline.core.stage`).

Retraining is the top layer: it reads every other stage's records (lineage from a
prediction to its data, maturity), re-runs pipelines and scripts (reproduce), and keeps
retraining policies and cycles in the ``retraining_*`` tables (its own migration
branch). It stores no objects, so it has no gc roots. Who may approve a cycle's
challenger comes from the auth stage's users and grants. The team server serves
policies, cycles, trace and maturity under ``/api/v1/retraining``; a remote workspace
reaches them there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.core.stage import Kernel, Services, Stage, no_roots

if TYPE_CHECKING:
    from driftline.retraining.service import RetrainingService

__all__ = ["STAGE"]


def _build(kernel: Kernel, uses: Services) -> RetrainingService:
    from driftline.data import DataService
    from driftline.monitoring import MonitoringService
    from driftline.registry import RegistryService
    from driftline.retraining.service import RetrainingService
    from driftline.serving import DeploymentService
    from driftline.tracking import TrackingService

    deployments = uses.get("serving", DeploymentService)
    retrainer = None
    server = None
    if kernel.database is not None:
        from driftline.auth import AuthService
        from driftline.core.notify import DeliveryPolicy
        from driftline.retraining._sql import SqlRetrainingStore
        from driftline.retraining.approvers import approvers
        from driftline.retraining.loop import Retrainer

        auth = uses.get("auth", AuthService)
        retrainer = Retrainer(
            SqlRetrainingStore(kernel.database),
            registry=uses.get("registry", RegistryService),
            data=uses.get("data", DataService),
            monitoring=uses.get("monitoring", MonitoringService),
            deployments=deployments,
            user=kernel.settings.user,
            approvers=lambda model: approvers(auth, model),
            delivery=DeliveryPolicy.from_settings(kernel.settings),
        )
    elif kernel.client is not None:
        from driftline.retraining._http import HttpRetrainer

        server = HttpRetrainer(kernel.client)
    return RetrainingService(
        settings=kernel.settings,
        content=kernel.content,
        tracking=uses.get("tracking", TrackingService),
        data=uses.get("data", DataService),
        registry=uses.get("registry", RegistryService),
        monitoring=uses.get("monitoring", MonitoringService),
        # Serving's deployments know where its prediction log lives.
        prediction_log=deployments.prediction_root,
        remote=kernel.is_remote,
        retrainer=retrainer,
        server=server,
    )


STAGE: Stage[RetrainingService] = Stage(
    name="retraining",
    uses=(
        "tracking",
        "data",
        "models",
        "registry",
        "auth",
        "serving",
        "monitoring",
        "pipelines",
    ),
    build=_build,
    gc_roots=no_roots,
    tables=("driftline.retraining._tables",),
    migrations="driftline.retraining.migrations",
    routes=("driftline.server.routes.retraining:router",),
    cli="driftline.cli.retraining:install_commands",
    api="driftline.retraining",
)
