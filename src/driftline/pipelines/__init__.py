"""Pipelines: steps and DAGs with caching that sees helper code, executors, resume.

Example:
    >>> import driftline as dl
    >>> @dl.step
    ... def load(dataset: str) -> pd.DataFrame: ...
    >>> @dl.step(retries=2, timeout="10m")
    ... def train(df: pd.DataFrame, C: float = 1.0) -> dict[str, float]: ...
    >>> @dl.pipeline
    ... def churn_training(dataset: str = "customers@latest", C: float = 1.0):
    ...     return train(load(dataset), C=C)
    >>> run = churn_training.run(C=0.5)                      # doctest: +SKIP
    >>> run = churn_training.run(executor="processes")       # doctest: +SKIP
    >>> {s.name: s.cache.reason for s in run.record.steps}   # doctest: +SKIP
    >>> best = dl.tune(objective, {"C": dl.loguniform(1e-3, 10)}, n_trials=50)  # doctest: +SKIP

A pipeline run is a tracking run and each executed step a nested run; see
:mod:`driftline.pipelines.service` for the cache key and :mod:`~.store` for how runs
are recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.pipelines.models import (
    CacheDecision,
    OutputRef,
    PipelineRun,
    PipelineStatus,
    StepRun,
    StepStatus,
)
from driftline.pipelines.pipeline import Pipeline, get_pipeline, list_pipelines, pipeline
from driftline.pipelines.space import choice, intrange, loguniform, uniform
from driftline.pipelines.step import Step, StepOptions, step
from driftline.pipelines.tuning import Trial, TuneResult, tune

if TYPE_CHECKING:
    from driftline.pipelines.service import RunResult

__all__ = [
    "CacheDecision",
    "OutputRef",
    "Pipeline",
    "PipelineRun",
    "PipelineStatus",
    "Step",
    "StepOptions",
    "StepRun",
    "StepStatus",
    "Trial",
    "TuneResult",
    "choice",
    "get_pipeline",
    "get_run",
    "intrange",
    "list_pipelines",
    "list_runs",
    "loguniform",
    "pipeline",
    "resume",
    "step",
    "tune",
    "uniform",
]


def get_run(run_id: str) -> PipelineRun:
    """A recorded pipeline run of the default workspace."""
    from driftline.pipelines.service import PipelineService

    return PipelineService.for_workspace(None).get_run(run_id)


def list_runs(pipeline: str, limit: int = 50) -> list[PipelineRun]:
    """A pipeline's recorded runs in the default workspace, newest first."""
    from driftline.pipelines.service import PipelineService

    return PipelineService.for_workspace(None).list_runs(pipeline, limit)


def resume(run_id: str, *, executor: str | None = None) -> RunResult:
    """Run a failed pipeline run again; steps that finished are cache hits.

    Example:
        >>> dl.pipelines.resume("0190f2...")  # doctest: +SKIP
    """
    from driftline.pipelines.service import PipelineService

    return PipelineService.for_workspace(None).resume(run_id, executor=executor)
