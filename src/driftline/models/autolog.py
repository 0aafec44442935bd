"""``autolog()``: log params, training metrics and the model of every ``fit``, no extra code.

Covered: scikit-learn estimators (Pipelines and searches included), the scikit-learn
wrappers of LightGBM and XGBoost (``LGBMClassifier().fit``, ``XGBRegressor().fit``),
and their native APIs ``lightgbm.train`` and ``xgboost.train``. For each outermost fit:

- params: ``get_params(deep=True)`` (native APIs: the ``params`` dict and the number of
  boosting rounds);
- metrics: ``training_score`` and, for classifiers, accuracy / precision / recall / F1
  (weighted), for regressors R² / MAE / MSE / RMSE, on the training data; for LightGBM
  and XGBoost every evaluation result per iteration, as metric history
  ``<dataset>-<metric>`` with ``step`` = iteration;
- the model: ``log_model`` under ``model`` (``model-2``, ... when taken), with the first
  five training rows as input example.

Without an active run, the fit starts one and ends it (FAILED if fit raises). Logging
never breaks training: a failure to log is a warning.

How it patches, and how that is undone by ``autolog(disable=True)``:

- ``fit`` of every scikit-learn estimator class that defines one, wrapped in place;
  classes defined later (e.g. imported after ``autolog()``) are wrapped by a
  ``__init_subclass__`` hook on ``sklearn.base.BaseEstimator``. Wrappers keep
  ``__wrapped__``, so signature introspection still works.
- ``lightgbm.train`` and ``xgboost.train`` module attributes, when the library is
  installed (code that did ``from lightgbm import train`` before keeps the original).

Nested fits (a Pipeline's steps, a search's candidates, a forest's trees) are not
logged on their own: a context variable marks the outermost fit, and a fit running on a
worker thread (no active run there) while another autologged fit is in progress is
taken for part of it. Two fits trained concurrently on threads are logged when each
thread has its own active run.

Runs are started with the top-level ``driftline.start_run`` (imported lazily): autolog
is a top-level feature, and that function is what records the code version and ends
runs left open at exit.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from driftline.models._autolog_log import (
    OWN_FILES,
    Options,
    log_estimator,
    log_lightgbm_train,
    log_xgboost_train,
    prepare_train,
    safely,
    warn,
)

__all__ = ["autolog"]

OWN_FILES.add(__file__)

_IN_FIT: ContextVar[bool] = ContextVar("driftline_autolog_in_fit", default=False)
_lock = threading.RLock()
_in_progress = 0


@dataclass(slots=True)
class _Patch:
    owner: Any
    name: str
    original: Any  # what owner.__dict__[name] was; _MISSING when absent


_MISSING = object()
_patches: list[_Patch] = []
_options: Options | None = None


def autolog(
    *,
    disable: bool = False,
    log_models: bool = True,
    log_input_examples: bool = True,
    log_training_metrics: bool = True,
) -> None:
    """Log params, metrics and models of scikit-learn, LightGBM and XGBoost training.

    Args:
        disable: Undo the patching: ``fit`` and ``train`` are the originals again.
        log_models: Log the fitted model (``log_model``) after each fit.
        log_input_examples: Store the first training rows as the model's input example
            (and infer its signature from them).
        log_training_metrics: Score the model on its training data.

    Example:
        >>> dl.models.autolog()                                   # doctest: +SKIP
        >>> LogisticRegression().fit(X, y)   # a run with params, metrics and the model
        ... # doctest: +SKIP
    """
    global _options
    with _lock:
        _unpatch_all()
        if disable:
            _options = None
            return
        _options = Options(
            log_models=log_models,
            log_input_examples=log_input_examples,
            log_training_metrics=log_training_metrics,
        )
        if _installed("sklearn"):
            _patch_sklearn()
        for module, log in (("lightgbm", log_lightgbm_train), ("xgboost", log_xgboost_train)):
            if not _installed(module):
                continue
            try:
                library = importlib.import_module(module)
            except Exception as exc:  # a broken install must not stop the other libraries
                warn(f"driftline autolog skips {module}: it failed to import ({exc})")
                continue
            _patch_attr(library, "train", _wrap_train(library.train, log))


def _installed(module: str) -> bool:
    return module in sys.modules or importlib.util.find_spec(module) is not None


# -- patching ---------------------------------------------------------------------------


def _patch_attr(owner: Any, name: str, value: Any) -> None:
    original = (
        owner.__dict__.get(name, _MISSING)
        if isinstance(owner, type)
        else getattr(owner, name, _MISSING)
    )
    setattr(owner, name, value)
    _patches.append(_Patch(owner=owner, name=name, original=original))


def _unpatch_all() -> None:
    while _patches:
        patch = _patches.pop()
        if patch.original is _MISSING:
            with contextlib.suppress(AttributeError):
                delattr(patch.owner, patch.name)
        else:
            setattr(patch.owner, patch.name, patch.original)


def _patch_sklearn() -> None:
    from sklearn.base import BaseEstimator

    seen: set[type] = set()
    stack = [BaseEstimator]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    for cls in seen:
        _patch_fit(cls)

    own = BaseEstimator.__dict__.get("__init_subclass__")

    def hook(cls: type, /, **kwargs: Any) -> None:
        if own is not None:
            own.__get__(None, cls)(**kwargs)
        else:
            super(BaseEstimator, cls).__init_subclass__(**kwargs)
        with _lock:
            if _options is not None:
                _patch_fit(cls)

    _patch_attr(BaseEstimator, "__init_subclass__", classmethod(hook))


def _patch_fit(cls: type) -> None:
    fit = cls.__dict__.get("fit")
    if fit is None or not callable(fit) or getattr(fit, "__driftline_autolog__", False):
        return
    _patch_attr(cls, "fit", _wrap_fit(fit))


def _wrap_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        options = _options
        if options is None or not _outermost():
            return original(self, *args, **kwargs)
        with _fitting() as run_slot:
            result = original(self, *args, **kwargs)
            run = run_slot.get("run")
            if run is not None:
                safely(
                    f"log {type(self).__name__}.fit",
                    log_estimator,
                    run,
                    self,
                    args,
                    kwargs,
                    options,
                )
            return result

    fit.__driftline_autolog__ = True  # type: ignore[attr-defined]
    return fit


def _wrap_train(original: Callable[..., Any], log: Callable[..., None]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def train(*args: Any, **kwargs: Any) -> Any:
        options = _options
        if options is None or not _outermost():
            return original(*args, **kwargs)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return original(*args, **kwargs)  # let the library report the bad call
        with _fitting() as run_slot:
            state = safely("prepare train", prepare_train, original, bound) or {}
            booster = original(*bound.args, **bound.kwargs)
            run = run_slot.get("run")
            if run is not None:
                safely("log train", log, run, booster, bound, state, options)
            return booster

    train.__driftline_autolog__ = True  # type: ignore[attr-defined]
    return train


def _outermost() -> bool:
    if _IN_FIT.get():
        return False
    if _in_progress:  # another autologged fit runs: a worker thread of it has no run
        from driftline.tracking import current_run

        return current_run() is not None
    return True


@contextlib.contextmanager
def _fitting() -> Iterator[dict[str, Any]]:
    """Mark a fit as in progress, with the active run (started here if there is none)."""
    global _in_progress
    from driftline.tracking import current_run

    token = _IN_FIT.set(True)
    with _lock:
        _in_progress += 1
    slot: dict[str, Any] = {"run": current_run()}
    started = None
    if slot["run"] is None:
        started = safely("start a run", _start_run)
        slot["run"] = started
    status = "FINISHED"
    try:
        yield slot
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        raise
    finally:
        _IN_FIT.reset(token)
        with _lock:
            _in_progress -= 1
        if started is not None:
            safely("end the run it started", started.end, status)


def _start_run() -> Any:
    from driftline._fluent import start_run  # the top-level API; see the module docstring

    return start_run()
