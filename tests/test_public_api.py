"""The top-level API is small and deliberate: changing it must be a conscious decision."""

from __future__ import annotations

import driftline as dl
import driftline.errors

EXPECTED_ALL = [
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


def test_all_is_pinned() -> None:
    assert dl.__all__ == EXPECTED_ALL


def test_every_exported_name_exists() -> None:
    missing = [name for name in dl.__all__ if not hasattr(dl, name)]
    assert missing == []


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from driftline import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(EXPECTED_ALL)


def test_exported_errors_are_the_ones_in_driftline_errors() -> None:
    for name in EXPECTED_ALL:
        if name.endswith("Error"):
            assert getattr(dl, name) is getattr(driftline.errors, name)


def test_public_functions_are_documented() -> None:
    undocumented = [
        name
        for name in dl.__all__
        if callable(getattr(dl, name)) and not (getattr(dl, name).__doc__ or "").strip()
    ]
    assert undocumented == []


def test_version_is_a_string() -> None:
    assert isinstance(dl.__version__, str)
    assert dl.__version__.count(".") >= 1
