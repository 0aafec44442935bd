"""The pipelines stage's declaration (see :mod:`driftline.core.stage`).

A pipeline run is a tracking run and each executed step a nested run; step outputs and
the run's record are run artifacts (see :mod:`driftline.pipelines.store`). So the
pipelines stage has no tables, and its stored objects are tracking's roots: ``gc``
keeps them for as long as the runs exist. Its service is built per call
(:class:`~driftline.pipelines.service.PipelineService` takes the workspace), so the
declaration builds nothing.
"""

from __future__ import annotations

from driftline.core.stage import Kernel, Services, Stage, no_roots

__all__ = ["STAGE"]


def _build(_kernel: Kernel, _uses: Services) -> None:
    return None


STAGE: Stage[None] = Stage(
    name="pipelines",
    uses=("tracking", "data", "models", "registry"),
    build=_build,
    gc_roots=no_roots,
    cli="driftline.cli.pipelines:install_commands",
    api="driftline.pipelines",
)
