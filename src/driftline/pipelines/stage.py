"""The pipelines stage's declaration (see :mod:`driftline.core.stage`).

A pipeline run is a tracking run and each executed step a nested run; step outputs and
the run's record are run artifacts (see :mod:`driftline.pipelines.store`), so they are
tracking's roots: ``gc`` keeps them for as long as the runs exist, and this stage
stores no objects of its own. Its tables (its own migration branch) hold schedules,
triggers, their firings and the agent's lease; the service it builds is their store
(:class:`~driftline.pipelines._sql.SqlAutomationStore`, or against a server
:class:`~driftline.pipelines._http.HttpAutomationStore`).
Running pipelines needs the whole workspace, so
:class:`~driftline.pipelines.service.PipelineService` is built per call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.core.stage import Kernel, Services, Stage, no_roots

if TYPE_CHECKING:
    from driftline.pipelines.automation_store import AutomationStore

__all__ = ["STAGE"]


def _build(kernel: Kernel, _uses: Services) -> AutomationStore:
    if kernel.is_remote:
        from driftline.pipelines._http import HttpAutomationStore

        return HttpAutomationStore(kernel.require_client("pipelines"))
    from driftline.pipelines._sql import SqlAutomationStore

    return SqlAutomationStore(kernel.require_database("pipelines"))


STAGE: Stage[AutomationStore] = Stage(
    name="pipelines",
    uses=("tracking", "data", "models", "registry"),
    build=_build,
    gc_roots=no_roots,
    tables=("driftline.pipelines._tables",),
    migrations="driftline.pipelines.migrations",
    routes=(
        "driftline.server.routes.pipelines:router",
        "driftline.server.routes.pipeline_records:router",
    ),
    cli="driftline.cli.pipelines:install_commands",
    api="driftline.pipelines",
)
