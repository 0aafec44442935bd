"""Where pipeline runs are recorded: the narrow protocol the service uses.

The one backend (:mod:`driftline.pipelines._tracking`) keeps pipeline records *in
tracking*: a pipeline run is a tracking run, each executed step a nested run, and the
pipeline run's document (:func:`~driftline.pipelines.models.to_json`) an artifact of it
whose digest is also a tag, so the last runs of a pipeline load with one search. We
chose this over tables of our own because it needs no migration, works against a team
server unchanged (remote mode), and puts every output under gc's roots (run artifacts).
When schedules and triggers arrive (records queried by time, leased by agents) they
get tables of their own; run records can stay here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from driftline.pipelines.models import OutputRef, PipelineRun

if TYPE_CHECKING:
    from driftline.tracking import Run

__all__ = ["PipelineRunStore"]


class PipelineRunStore(Protocol):
    """Records of pipeline runs and their steps."""

    def start_run(
        self,
        *,
        pipeline: str,
        module: str,
        experiment: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
    ) -> str:
        """Start the pipeline's run; return its id."""
        ...

    def start_step(
        self,
        run_id: str,
        *,
        experiment: str,
        step: str,
        params: Mapping[str, str],
        key: str,
        run_name: str | None = None,
    ) -> Run:
        """Start a step's nested run, named ``run_name`` (default: ``step``); return it
        (executors activate it for the step)."""
        ...

    def end_step(
        self,
        step_run_id: str,
        *,
        ok: bool,
        outputs: Mapping[str, OutputRef],
        traceback: str | None,
    ) -> None:
        """Record a step's outputs (or its traceback) and end its run."""
        ...

    def save(self, run: PipelineRun, *, final: bool) -> None:
        """Store the run's document; with ``final`` also end its tracking run."""
        ...

    def get(self, run_id: str) -> PipelineRun:
        """A pipeline run by id; ``NotFoundError`` when it is not one or has no record."""
        ...

    def recent(self, pipeline: str, limit: int) -> list[PipelineRun]:
        """The pipeline's last ``limit`` recorded runs, newest first."""
        ...
