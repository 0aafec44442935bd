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

Schedules and triggers are records in the workspace's database; ``driftline agent``
starts the runs they call for (see :mod:`driftline.pipelines.automation`):

    >>> dl.pipelines.schedule("nightly", "churn_training", cron="0 3 * * *",
    ...                       timezone="Europe/Berlin")              # doctest: +SKIP
    >>> dl.pipelines.trigger("on-new-data", "churn_training", on_dataset="customers",
    ...     params={"dataset": "customers@{trigger.dataset_version}"})  # doctest: +SKIP
    >>> dl.pipelines.fire("monitoring:churn", {"alert": "drift"})   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftline.core.lazy import lazy_exports

if TYPE_CHECKING:
    from driftline.pipelines.agent import add_periodic
    from driftline.pipelines.automation import (
        Automation,
        dataset_payload,
        due_to_fire,
        schedule_payload,
    )
    from driftline.pipelines.cron import Cron, parse_cron
    from driftline.pipelines.discovery import discover
    from driftline.pipelines.models import (
        CacheDecision,
        OutputRef,
        PipelineRun,
        PipelineStatus,
        StepRun,
        StepStatus,
    )
    from driftline.pipelines.pipeline import Pipeline, get_pipeline, list_pipelines, pipeline
    from driftline.pipelines.records import Firing, Lease, Schedule, Trigger
    from driftline.pipelines.service import PipelineService, RunResult
    from driftline.pipelines.space import choice, intrange, loguniform, uniform
    from driftline.pipelines.step import Step, StepOptions, step
    from driftline.pipelines.tuning import Trial, TuneResult, tune

__all__ = [
    "Automation",
    "CacheDecision",
    "Cron",
    "Lease",
    "OutputRef",
    "Pipeline",
    "PipelineRun",
    "PipelineService",
    "PipelineStatus",
    "Step",
    "StepOptions",
    "StepRun",
    "StepStatus",
    "Trial",
    "TuneResult",
    "add_periodic",
    "choice",
    "dataset_payload",
    "discover",
    "due_to_fire",
    "fire",
    "fire_trigger",
    "get_pipeline",
    "get_run",
    "intrange",
    "list_pipelines",
    "list_runs",
    "list_schedules",
    "list_triggers",
    "loguniform",
    "parse_cron",
    "pipeline",
    "resume",
    "schedule",
    "schedule_payload",
    "step",
    "trigger",
    "tune",
    "uniform",
]

# Imported on first use: the CLI imports this package (for the stage's descriptor) to
# run any command, and `driftline runs list` should not pay for the pipeline records.
_MODELS = "driftline.pipelines.models"
_PIPELINE = "driftline.pipelines.pipeline"
_STEP = "driftline.pipelines.step"
_SPACE = "driftline.pipelines.space"
_TUNING = "driftline.pipelines.tuning"
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
        "discover": "driftline.pipelines.discovery",
        "Lease": "driftline.pipelines.records",
        **dict.fromkeys(("Cron", "parse_cron"), "driftline.pipelines.cron"),
        **dict.fromkeys(
            ("Automation", "dataset_payload", "due_to_fire", "schedule_payload"),
            "driftline.pipelines.automation",
        ),
        "add_periodic": "driftline.pipelines.agent",
        "PipelineService": "driftline.pipelines.service",
        **dict.fromkeys(("choice", "intrange", "loguniform", "uniform"), _SPACE),
        **dict.fromkeys(("Trial", "TuneResult", "tune"), _TUNING),
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


def schedule(
    name: str,
    pipeline: str | Pipeline,
    *,
    cron: str,
    timezone: str = "UTC",
    params: dict[str, Any] | None = None,
    catchup: str = "once",
    module: str | None = None,
) -> Schedule:
    """Run ``pipeline`` whenever ``cron`` comes due in ``timezone`` (``driftline agent``
    starts the runs). See :meth:`~driftline.pipelines.automation.Automation.create_schedule`.

    Example:
        >>> dl.pipelines.schedule("nightly", churn_training, cron="0 3 * * *",
        ...                       params={"dataset": "customers@latest"})  # doctest: +SKIP
    """
    from driftline.pipelines.automation import Automation

    return Automation.for_workspace(None).create_schedule(
        name,
        pipeline,
        cron=cron,
        timezone=timezone,
        params=params,
        catchup=catchup,
        module=module,
    )


def trigger(
    name: str,
    pipeline: str | Pipeline,
    *,
    on_dataset: str | None = None,
    on_alert: str | None = None,
    params: dict[str, Any] | None = None,
    module: str | None = None,
) -> Trigger:
    """Run ``pipeline`` on each new version of ``on_dataset``, on alerts from source
    ``on_alert`` (:func:`fire`), or, with neither, when fired by hand.

    Example:
        >>> dl.pipelines.trigger("on-new-data", churn_training, on_dataset="customers",
        ...     params={"dataset": "customers@{trigger.dataset_version}"})  # doctest: +SKIP
    """
    from driftline.pipelines.automation import Automation

    return Automation.for_workspace(None).create_trigger(
        name, pipeline, on_dataset=on_dataset, on_alert=on_alert, params=params, module=module
    )


def fire(
    source: str, payload: dict[str, Any] | None = None, *, key: str | None = None
) -> list[Firing]:
    """Report an alert from ``source``: each alert trigger on it gets a run (by the agent).

    ``payload`` fills ``{trigger.KEY}`` parameters; firing twice with one ``key`` fires once.

    Example:
        >>> dl.pipelines.fire("monitoring:churn", {"dataset": "customers@9"}, key=alert_id)
        ... # doctest: +SKIP
    """
    from driftline.pipelines.automation import Automation

    return Automation.for_workspace(None).fire(source, payload, key=key)


def fire_trigger(name: str, payload: dict[str, Any] | None = None) -> Firing:
    """Fire the trigger ``name`` by hand; the agent starts its run at its next look."""
    from driftline.pipelines.automation import Automation

    return Automation.for_workspace(None).fire_trigger(name, payload)


def list_schedules() -> list[Schedule]:
    """The default workspace's schedules."""
    from driftline.pipelines.automation import Automation

    return Automation.for_workspace(None).list_schedules()


def list_triggers() -> list[Trigger]:
    """The default workspace's triggers."""
    from driftline.pipelines.automation import Automation

    return Automation.for_workspace(None).list_triggers()
