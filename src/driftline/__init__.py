"""driftline: the ML lifecycle in one install.

Example:
    >>> import driftline as dl
    >>> with dl.start_run(experiment="churn", name="lr") as run:  # doctest: +SKIP
    ...     dl.log_params({"C": 1.0})
    ...     dl.log_metric("loss", 0.25, step=0)

``import driftline`` stays light: every heavy library is imported when first needed.
"""

from driftline import data
from driftline._fluent import (
    active_run,
    configure,
    create_experiment,
    end_run,
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
)
from driftline.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "BackendError",
    "ConflictError",
    "DriftlineError",
    "IntegrityError",
    "InvalidArgumentError",
    "NotFoundError",
    "Settings",
    "__version__",
    "active_run",
    "configure",
    "create_experiment",
    "data",
    "end_run",
    "flush",
    "get_experiment",
    "get_metric_history",
    "get_run",
    "get_workspace",
    "log_artifact",
    "log_artifacts",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "search_runs",
    "set_tag",
    "set_tags",
    "start_run",
]
