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

A pipeline run is a tracking run and each executed step a nested run; see
:mod:`driftline.pipelines.service` for the cache key and :mod:`~.store` for how runs
are recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.core.lazy import lazy_exports

if TYPE_CHECKING:
    from driftline.pipelines.models import (
        CacheDecision,
        OutputRef,
        PipelineRun,
        PipelineStatus,
        StepRun,
        StepStatus,
    )
    from driftline.pipelines.pipeline import Pipeline, get_pipeline, list_pipelines, pipeline
    from driftline.pipelines.service import RunResult
    from driftline.pipelines.step import Step, StepOptions, step

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
    "get_pipeline",
    "get_run",
    "list_pipelines",
    "list_runs",
    "pipeline",
    "resume",
    "step",
]

# Imported on first use: the CLI imports this package (for the stage's descriptor) to
# run any command, and `driftline runs list` should not pay for the pipeline records.
_MODELS = "driftline.pipelines.models"
_PIPELINE = "driftline.pipelines.pipeline"
_STEP = "driftline.pipelines.step"
__getattr__ = lazy_exports(
    __name__,
    {
        "CacheDecision": _MODELS,
        "OutputRef": _MODELS,
        "PipelineRun": _MODELS,
        "PipelineStatus": _MODELS,
        "StepRun": _MODELS,
        "StepStatus": _MODELS,
        "Pipeline": _PIPELINE,
        "get_pipeline": _PIPELINE,
        "list_pipelines": _PIPELINE,
        "pipeline": _PIPELINE,
        "Step": _STEP,
        "StepOptions": _STEP,
        "step": _STEP,
    },
)


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
