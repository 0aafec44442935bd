"""What ``autolog`` records for one fit: params, training metrics, eval history, the model.

Kept apart from the patching in :mod:`driftline.models.autolog`; every function here is
called through ``_safely``, so a failure to log is a warning and never breaks training.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from driftline.errors import ConflictError

__all__ = [
    "OWN_FILES",
    "Options",
    "log_estimator",
    "log_lightgbm_train",
    "log_xgboost_train",
    "prepare_train",
    "safely",
    "warn",
]

_MAX_PARAM = 1000
_EXAMPLE_ROWS = 5
_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-./: ]")

# Frames in these files are skipped when a warning points at the user's code.
OWN_FILES: set[str] = {__file__}


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """What ``autolog()`` was asked to log."""

    log_models: bool
    log_input_examples: bool
    log_training_metrics: bool


def safely(what: str, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, or ``None`` and a warning naming ``what`` when it raises."""
    try:
        return function(*args)
    except Exception as exc:
        warn(f"driftline autolog could not {what}: {type(exc).__name__}: {exc}")
        return None


def warn(message: str) -> None:
    """Warn, pointing at the first frame outside autolog's files (the user's ``fit`` call)."""
    level = 2
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename in OWN_FILES:
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    warnings.warn(message, UserWarning, stacklevel=level)


# -- what is logged ---------------------------------------------------------------------


def log_estimator(
    run: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any], options: Options
) -> None:
    x = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    _log_params(run, model.get_params(deep=True))
    if options.log_training_metrics and x is not None:
        safely("log training metrics", _log_training_metrics, run, model, x, y, kwargs)
    _log_eval_history(run, model)
    if options.log_models and hasattr(model, "predict"):
        example = _head(x) if options.log_input_examples else None
        _log_model(run, model, example)


def _log_params(run: Any, params: Mapping[str, Any]) -> None:
    rendered = {}
    for key, value in params.items():
        text = value if isinstance(value, str) else repr(value) if _is_object(value) else str(value)
        if len(text) > _MAX_PARAM:
            text = text[: _MAX_PARAM - 3] + "..."
        rendered[_key(str(key))] = text
    try:
        run.log_params(rendered)
    except ConflictError:
        # Params are write-once: a second fit in one run keeps the first values it logged.
        skipped = []
        for key, text in rendered.items():
            try:
                run.log_param(key, text)
            except ConflictError:
                skipped.append(key)
        warn(
            "driftline autolog kept the values logged earlier in this run for params "
            f"{', '.join(skipped)} (params are write-once; start a run per fit to keep both)"
        )


def _is_object(value: Any) -> bool:
    return not isinstance(value, int | float | bool | type(None))


def _key(text: str) -> str:
    key = _KEY_BAD.sub("_", text).lstrip("/").replace("..", "_")[:250]
    return key or "_"


def _log_training_metrics(run: Any, model: Any, x: Any, y: Any, kwargs: Mapping[str, Any]) -> None:
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    weight = kwargs.get("sample_weight")
    values: dict[str, float] = {}
    if (
        y is not None
        and hasattr(model, "predict")
        and (is_classifier(model) or is_regressor(model))
    ):
        predicted = model.predict(x)
        if is_classifier(model):
            values["training_accuracy_score"] = metrics.accuracy_score(
                y, predicted, sample_weight=weight
            )
            for name, score in (
                ("precision", metrics.precision_score),
                ("recall", metrics.recall_score),
                ("f1", metrics.f1_score),
            ):
                values[f"training_{name}_score"] = score(
                    y, predicted, average="weighted", zero_division=0, sample_weight=weight
                )
        else:
            mse = metrics.mean_squared_error(y, predicted, sample_weight=weight)
            values["training_r2_score"] = metrics.r2_score(y, predicted, sample_weight=weight)
            values["training_mean_absolute_error"] = metrics.mean_absolute_error(
                y, predicted, sample_weight=weight
            )
            values["training_mean_squared_error"] = mse
            values["training_root_mean_squared_error"] = float(mse) ** 0.5
    if hasattr(model, "score"):
        with contextlib.suppress(Exception):  # not every estimator scores without y
            score_args = (x,) if y is None else (x, y)
            values["training_score"] = model.score(*score_args)
    if values:
        run.log_metrics({k: float(v) for k, v in values.items()})


def _log_eval_history(run: Any, model: Any) -> None:
    """LightGBM's ``evals_result_`` / XGBoost's ``evals_result()``: one point per iteration."""
    history: Any = None
    if hasattr(model, "evals_result_") and isinstance(model.evals_result_, Mapping):
        history = model.evals_result_
    elif callable(getattr(model, "evals_result", None)):
        with contextlib.suppress(Exception):  # XGBoost raises when there was no eval_set
            history = model.evals_result()
    if history:
        _log_history(run, history)
    for attribute in ("best_iteration_", "best_iteration"):
        value = getattr(model, attribute, None) if _has_plain(model, attribute) else None
        if isinstance(value, int) and value > 0:
            run.log_metric("best_iteration", float(value))
            break


def _has_plain(model: Any, attribute: str) -> bool:
    try:
        getattr(model, attribute)
    except Exception:
        return False
    return True


def _log_history(run: Any, history: Mapping[str, Mapping[str, Any]]) -> None:
    for dataset, results in history.items():
        for metric, values in results.items():
            key = _key(f"{dataset}-{metric}")
            for step, value in enumerate(values):
                run.log_metric(key, float(value), step=step)


def _log_model(run: Any, model: Any, example: Any) -> None:
    from driftline.models import log_model

    taken = {entry.path.split("/", 1)[0] for entry in run.service.list_artifacts(run.id)}
    name = "model"
    counter = 1
    while name in taken:
        counter += 1
        name = f"model-{counter}"
    log_model(model, name, input_example=example)


def _head(data: Any, rows: int = _EXAMPLE_ROWS) -> Any:
    """The first rows of training data, or ``None`` for kinds that are not sliced here."""
    import numpy as np

    if hasattr(data, "iloc"):
        return data.iloc[:rows]
    if isinstance(data, np.ndarray):
        return data[:rows]
    if isinstance(data, list):
        return data[:rows]
    return None


# -- native APIs ------------------------------------------------------------------------


def prepare_train(original: Callable[..., Any], bound: inspect.BoundArguments) -> dict[str, Any]:
    """Before a native ``train``: keep an example, and ask for the evaluation history."""
    arguments = bound.arguments
    state: dict[str, Any] = {}
    module = original.__module__.split(".", 1)[0]
    if module == "lightgbm":
        lightgbm = importlib.import_module("lightgbm")
        history: dict[str, Any] = {}
        callbacks = list(arguments.get("callbacks") or [])
        callbacks.append(lightgbm.record_evaluation(history))
        arguments["callbacks"] = callbacks
        state["history"] = history
        data = getattr(arguments.get("train_set"), "data", None)
        state["example"] = _head(data)
    else:
        if arguments.get("evals_result") is None:
            arguments["evals_result"] = {}
        state["history"] = arguments["evals_result"]
    return state


def _log_native(
    run: Any,
    booster: Any,
    params: Mapping[str, Any],
    rounds: Any,
    state: Mapping[str, Any],
    options: Options,
) -> None:
    _log_params(run, {**params, "num_boost_round": rounds})
    if state.get("history"):
        _log_history(run, state["history"])
    best = getattr(booster, "best_iteration", None)
    if isinstance(best, int) and best > 0:
        run.log_metric("best_iteration", float(best))
    if options.log_models:
        example = state.get("example") if options.log_input_examples else None
        _log_model(run, booster, example)


def log_lightgbm_train(
    run: Any,
    booster: Any,
    bound: inspect.BoundArguments,
    state: Mapping[str, Any],
    options: Options,
) -> None:
    arguments = bound.arguments
    rounds = arguments.get("num_boost_round", 100)
    _log_native(run, booster, dict(arguments.get("params") or {}), rounds, state, options)


def log_xgboost_train(
    run: Any,
    booster: Any,
    bound: inspect.BoundArguments,
    state: Mapping[str, Any],
    options: Options,
) -> None:
    arguments = bound.arguments
    rounds = arguments.get("num_boost_round", 10)
    params = arguments.get("params") or {}
    if not isinstance(params, Mapping):  # XGBoost also takes a list of pairs
        params = dict(params)
    _log_native(run, booster, dict(params), rounds, state, options)
