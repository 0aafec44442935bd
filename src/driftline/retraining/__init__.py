"""Retraining: the loop from production back to training: policies, cycles, lineage.

Example:
    >>> import driftline as dl
    >>> dl.retraining.apply("retrain.yaml")                                 # doctest: +SKIP
    >>> dl.retraining.run("churn").cycle.state                              # doctest: +SKIP
    >>> [(c.state, c.version, c.reason) for c in dl.retraining.history("churn")]  # doctest: +SKIP

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

- :func:`apply`, :func:`run`, :func:`status`, :func:`history`: a model's retraining
  policy (``retrain.yaml``, see :mod:`driftline.retraining.policy`) and its cycles
  (see :mod:`driftline.retraining.cycles` and :mod:`driftline.retraining.driver`);
  ``driftline agent`` drives them (see :mod:`driftline.retraining.autopilot`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.core.lazy import lazy_exports

if TYPE_CHECKING:
    from driftline.retraining.cycles import Cycle, CycleState, TriggerOutcome
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
    from driftline.retraining.policy import RetrainPolicy
    from driftline.retraining.service import RetrainingService

__all__ = [
    "CAPABILITIES",
    "LEVELS",
    "MAX_TRACE_DAYS",
    "TRACE_DAYS",
    "CapabilityCheck",
    "CodeState",
    "Cycle",
    "CycleState",
    "DataInput",
    "MetricComparison",
    "MissingLineageError",
    "ModelMaturity",
    "PipelineLink",
    "ReproduceReport",
    "RetrainPolicy",
    "RetrainingService",
    "RunLineage",
    "ServedPrediction",
    "Trace",
    "TriggerOutcome",
    "VersionLineage",
    "apply",
    "history",
    "lineage",
    "maturity",
    "reproduce",
    "run",
    "service_for",
    "status",
    "trace",
]

#: How many days back ``trace`` looks for a request id that carries no day of its own,
#: unless the caller widens it; and the most a caller may ask for (each day is a folder
#: of the prediction log read per deployment). Here, not in ``lineage``, so the CLI's
#: and the server's defaults cost no import.
TRACE_DAYS = 7
MAX_TRACE_DAYS = 90

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
        **dict.fromkeys(("Cycle", "CycleState", "TriggerOutcome"), "driftline.retraining.cycles"),
        "RetrainPolicy": "driftline.retraining.policy",
    },
)


def service_for(workspace: object | None = None) -> RetrainingService:
    """The retraining service of ``workspace`` (default: the default workspace)."""
    from driftline.core.session import default_workspace
    from driftline.retraining.service import RetrainingService

    host = workspace if workspace is not None else default_workspace()
    return host.service("retraining", RetrainingService)  # type: ignore[attr-defined,no-any-return]


def trace(
    request_id: str,
    *,
    deployment: str | None = None,
    days: int = TRACE_DAYS,
    log_root: str | None = None,
) -> Trace:
    """Everything behind one served prediction (see :meth:`RetrainingService.trace`):
    a request id that carries no day is looked for in the last ``days`` days (at most
    :data:`MAX_TRACE_DAYS`)."""
    return service_for().trace(request_id, deployment=deployment, days=days, log_root=log_root)


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


def apply(source: str | Path | Mapping[str, Any]) -> RetrainPolicy:
    """Check a retraining policy (file, YAML text or mapping) and store it."""
    return service_for().policies.apply(source)


def run(model: str, *, payload: Mapping[str, Any] | None = None) -> TriggerOutcome:
    """A manual trigger: start ``model``'s cycle and drive it as far as it goes now (on a
    team server: ask for it; the agent beside the server drives it)."""
    from driftline.core.session import default_workspace

    return service_for().policies.run(model, default_workspace(), payload=payload)


def status(model: str) -> Cycle | None:
    """``model``'s newest retraining cycle."""
    return service_for().policies.status(model)


def history(model: str, *, limit: int | None = 100) -> list[Cycle]:
    """``model``'s retraining cycles, newest first."""
    return service_for().policies.history(model, limit=limit)
