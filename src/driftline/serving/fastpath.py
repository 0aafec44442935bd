"""The predict call a serving process makes, with a fast path for scikit-learn.

A scikit-learn estimator fitted on a DataFrame validates every DataFrame it predicts on
(column names, per-column dtypes through narwhals): ~1-2 ms per call, several times the
cost of predicting one row with a linear model. In a serving process that check is
already done: the input passed the model's signature (``LoadedModel.check_input``,
names and types) just before. So when the checked input is a numeric frame whose
columns are the estimator's ``feature_names_in_`` in order, :func:`predictor` predicts
on its float array with a shallow copy of the estimator that has no
``feature_names_in_`` (the original, which users may hold, is not touched). Any other
input, model or estimator takes the ordinary ``predict_checked``.

The fast path is taken only for an estimator that validates its input itself and holds
no fitted sub-estimator with feature names of its own (a Pipeline, a search or a voting
ensemble would see a nameless array further down and warn), so its answers are the
ordinary path's, bit for bit.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["predictor"]

_cache: weakref.WeakKeyDictionary[Any, Callable[[Any], Any]] = weakref.WeakKeyDictionary()


def predictor(model: Any) -> Callable[[Any], Any]:
    """The function from a checked input to predictions for a loaded model (built once
    per model object; a hot swap brings a new object, so a new entry)."""
    found = _cache.get(model)
    if found is None:
        found = _cache[model] = _array_predictor(model) or model.predict_checked
    return found


def _array_predictor(model: Any) -> Callable[[Any], Any] | None:
    if getattr(model, "flavor", None) != "sklearn":
        return None
    raw: Any = model.raw
    if "feature_names_in_" not in getattr(raw, "__dict__", {}):
        return None
    if any(_has_names(value) for key, value in vars(raw).items() if key != "feature_names_in_"):
        return None
    import pandas as pd

    names = [str(n) for n in raw.feature_names_in_]
    twin = copy.copy(raw)
    del twin.feature_names_in_
    ordinary = model.predict_checked

    def predict(data: Any) -> Any:
        if isinstance(data, pd.DataFrame) and data.columns.tolist() == names:
            values = data.to_numpy()
            if values.dtype.kind in "fiu":  # a mixed or text frame converts to object
                return twin.predict(values)
        return ordinary(data)

    return predict


def _has_names(value: Any) -> bool:
    """Whether ``value`` (or an item of it, for lists and tuples) is fitted with names."""
    if isinstance(value, list | tuple):
        return any(_has_names(v) for v in value)
    return "feature_names_in_" in getattr(value, "__dict__", {})
