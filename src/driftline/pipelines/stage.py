"""The pipelines stage's declaration (see :mod:`driftline.core.stage`).

A pipeline run is a tracking run and each executed step a nested run; step outputs and
the run's record are run artifacts (see :mod:`driftline.pipelines.store`), so they are
tracking's roots: ``gc`` keeps them for as long as the runs exist, and this stage
stores no objects of its own. Its tables (its own migration branch) hold schedules,
triggers, their firings and the agent's lease; the service it builds is their store
(:class:`~driftline.pipelines._sql.SqlAutomationStore`), ``None`` against a server.
Running pipelines needs the whole workspace, so
:class:`~driftline.pipelines.service.PipelineService` is built per call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.core.stage import Kernel, Services, Stage, no_roots

if TYPE_CHECKING:
    from driftline.pipelines._sql import SqlAutomationStore

__all__ = ["STAGE"]


def _build(kernel: Kernel, _uses: Services) -> SqlAutomationStore | None:
    if kernel.database is None:
        return None
    from driftline.pipelines._sql import SqlAutomationStore

    return SqlAutomationStore(kernel.database)


STAGE: Stage[SqlAutomationStore | None] = Stage(
    name="pipelines",
    uses=("tracking", "data", "models", "registry"),
    build=_build,
    gc_roots=no_roots,
    tables=("driftline.pipelines._tables",),
    migrations="driftline.pipelines.migrations",
    routes=("driftline.server.routes.pipelines:router",),
    cli="driftline.cli.pipelines:install_commands",
    api="driftline.pipelines",
)
