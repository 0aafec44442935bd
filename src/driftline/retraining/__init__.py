"""Retraining: the loop from production back to training. This release: lineage.

Example:
    >>> import driftline as dl
    >>> t = dl.trace("0190f2a4c3e27b1d8f0e4a5b6c7d8e9f")   # a request id   # doctest: +SKIP
    >>> t.versions[0].run.code.commit, t.versions[0].run.inputs             # doctest: +SKIP
    >>> report = dl.reproduce("churn/4")                                    # doctest: +SKIP
    >>> [(m.model, m.level, m.next_steps) for m in dl.maturity()]           # doctest: +SKIP

- :func:`trace`: a request id in the prediction log -> deployment and variant -> model
  version -> run -> code commit (and uncommitted diff) -> params -> dataset versions.
- :func:`reproduce`: re-run what produced a version (its pipeline or its command) at the
  recorded commit, and compare metrics and model bytes.
- :func:`maturity`: each model's MLOps maturity level (0-4) and the steps to the next.

Retraining policies and cycles come next; a version's lineage has a
``retraining_cycle`` field waiting for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.core.lazy import lazy_exports

if TYPE_CHECKING:
    from driftline.retraining.maturity import (
        CAPABILITIES,
        LEVELS,
        CapabilityCheck,
        ModelMaturity,
    )
    from driftline.retraining.models import (
        CodeState,
        DataInput,
        MetricComparison,
        MissingLineageError,
        PipelineLink,
        ReproduceReport,
        RunLineage,
        ServedPrediction,
        Trace,
        VersionLineage,
    )
    from driftline.retraining.service import RetrainingService

__all__ = [
    "CAPABILITIES",
    "LEVELS",
    "CapabilityCheck",
    "CodeState",
    "DataInput",
    "MetricComparison",
    "MissingLineageError",
    "ModelMaturity",
    "PipelineLink",
    "ReproduceReport",
    "RetrainingService",
    "RunLineage",
    "ServedPrediction",
    "Trace",
    "VersionLineage",
    "lineage",
    "maturity",
    "reproduce",
    "service_for",
    "trace",
]

_MODELS = "driftline.retraining.models"
_RECORDS = (
    "CodeState", "DataInput", "MetricComparison", "MissingLineageError", "PipelineLink",
    "ReproduceReport", "RunLineage", "ServedPrediction", "Trace", "VersionLineage",
)  # fmt: skip
_MATURITY = "driftline.retraining.maturity"
__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(("CAPABILITIES", "LEVELS", "CapabilityCheck", "ModelMaturity"), _MATURITY),
        **dict.fromkeys(_RECORDS, _MODELS),
        "RetrainingService": "driftline.retraining.service",
    },
)


def service_for(workspace: object | None = None) -> RetrainingService:
    """The retraining service of ``workspace`` (default: the default workspace)."""
    from driftline.core.session import default_workspace
    from driftline.retraining.service import RetrainingService

    host = workspace if workspace is not None else default_workspace()
    return host.service("retraining", RetrainingService)  # type: ignore[attr-defined,no-any-return]


def trace(request_id: str, *, deployment: str | None = None, log_root: str | None = None) -> Trace:
    """Everything behind one served prediction (see :meth:`RetrainingService.trace`)."""
    return service_for().trace(request_id, deployment=deployment, log_root=log_root)


def lineage(ref: str) -> VersionLineage:
    """Everything recorded behind a model version, ``churn/4``."""
    return service_for().lineage(ref)


def reproduce(
    ref: str,
    *,
    repo: str | Path | None = None,
    code: str = "recorded",
    apply_diff: bool = True,
    tolerances: Mapping[str, float] | None = None,
    default_tolerance: float | None = None,
    timeout: float | None = None,
) -> ReproduceReport:
    """Re-run what produced a version and compare (see :meth:`RetrainingService.reproduce`)."""
    return service_for().reproduce(
        ref,
        repo=repo,
        code=code,
        apply_diff=apply_diff,
        tolerances=tolerances,
        default_tolerance=default_tolerance,
        timeout=timeout,
    )


def maturity(model: str | None = None, *, log_root: str | None = None) -> list[ModelMaturity]:
    """Each registered model's MLOps maturity level 0-4 and the steps to the next one."""
    return service_for().maturity(model, log_root=log_root)
