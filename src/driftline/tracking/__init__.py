"""Experiment tracking: experiments, runs, params, metrics, tags, artifacts and search."""

from driftline.tracking.active import ActiveRun, current_run
from driftline.tracking.models import (
    ArtifactEntry,
    CodeVersion,
    Experiment,
    LifecycleStage,
    MetricPoint,
    Run,
    RunStatus,
)
from driftline.tracking.service import TrackingService, check_name, validate_key

__all__ = [
    "ActiveRun",
    "ArtifactEntry",
    "CodeVersion",
    "Experiment",
    "LifecycleStage",
    "MetricPoint",
    "Run",
    "RunStatus",
    "TrackingService",
    "check_name",
    "current_run",
    "validate_key",
]
