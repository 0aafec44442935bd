"""Experiment tracking: experiments, runs, params, metrics, tags, artifacts and search.

The names below are imported on first use (see :mod:`driftline.core.lazy`).
"""

from typing import TYPE_CHECKING

from driftline.core.lazy import lazy_exports

if TYPE_CHECKING:
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
    from driftline.tracking.service import (
        TrackingService,
        check_name,
        check_tags,
        validate_key,
    )

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
    "check_tags",
    "current_run",
    "validate_key",
]

_MODELS = "driftline.tracking.models"
__getattr__ = lazy_exports(
    __name__,
    {
        "ActiveRun": "driftline.tracking.active",
        "current_run": "driftline.tracking.active",
        "ArtifactEntry": _MODELS,
        "CodeVersion": _MODELS,
        "Experiment": _MODELS,
        "LifecycleStage": _MODELS,
        "MetricPoint": _MODELS,
        "Run": _MODELS,
        "RunStatus": _MODELS,
        "TrackingService": "driftline.tracking.service",
        "check_name": "driftline.tracking.service",
        "check_tags": "driftline.tracking.service",
        "validate_key": "driftline.tracking.service",
    },
)
