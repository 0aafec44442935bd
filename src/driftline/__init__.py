"""driftline: the ML lifecycle in one install.

Example:
    >>> import driftline as dl
    >>> with dl.start_run(experiment="churn", name="lr") as run:  # doctest: +SKIP
    ...     dl.log_params({"C": 1.0})
    ...     dl.log_metric("loss", 0.25, step=0)

``import driftline`` stays light: every heavy library is imported when first needed,
and the stage facades (``dl.data``, ``dl.models``, ``dl.registry``, ``dl.monitoring``) on
first use.
"""

from typing import Any

from driftline._fluent import (
    active_run,
    autolog,
    compare_models,
    configure,
    create_experiment,
    end_run,
    evaluate,
    flush,
    get_experiment,
    get_metric_history,
    get_run,
    get_workspace,
    log_artifact,
    log_artifacts,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    register_model,
    search_runs,
    set_tag,
    set_tags,
    start_run,
)
from driftline.errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    DriftlineError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from driftline.settings import Settings

__version__ = "0.1.0"

_LAZY_STAGES = (
    "data", "models", "monitoring", "pipelines", "registry", "retraining", "serving",
)  # fmt: skip
# Names that live in a stage, imported with it on first use: ``dl.step`` -> pipelines.
_LAZY_NAMES = {
    **{
        name: "pipelines"
        for name in ("pipeline", "step", "tune", "loguniform", "uniform", "intrange", "choice")
    },
    "maturity": "retraining",
    "reproduce": "retraining",
    "trace": "retraining",
}


def __getattr__(name: str) -> Any:
    """Import a stage facade (``dl.data``, ``dl.models``, ``dl.pipelines``, ``dl.registry``)
    or one of its names (``dl.step``, ``dl.pipeline``, ``dl.tune``) on first use."""
    import importlib

    if name in _LAZY_STAGES:
        return importlib.import_module(f"driftline.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"driftline.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'driftline' has no attribute {name!r}")


__all__ = [
    "AlreadyExistsError",
    "BackendError",
    "ConflictError",
    "DriftlineError",
    "IntegrityError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "Settings",
    "__version__",
    "active_run",
    "autolog",
    "choice",
    "compare_models",
    "configure",
    "create_experiment",
    "data",
    "end_run",
    "evaluate",
    "flush",
    "get_experiment",
    "get_metric_history",
    "get_run",
    "get_workspace",
    "intrange",
    "log_artifact",
    "log_artifacts",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "loguniform",
    "maturity",
    "models",
    "monitoring",
    "pipeline",
    "pipelines",
    "register_model",
    "registry",
    "reproduce",
    "retraining",
    "search_runs",
    "serving",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
    "trace",
    "tune",
    "uniform",
]
