"""Evaluating model versions: metrics, per-slice metrics, paired bootstrap comparisons.

The task is inferred from the target: bool, text, or integers with few distinct values
mean classification; other numbers mean regression. Comparisons evaluate every model on
the very same rows and report each metric's difference to the first model with a
paired bootstrap confidence interval (rows resampled once per round, for all models).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftline.core.metric_direction import ALIASES, HIGHER_IS_BETTER
from driftline.errors import InvalidArgumentError

__all__ = [
    "CLASSIFICATION_METRICS",
    "HIGHER_IS_BETTER",
    "KNOWN_METRICS",
    "REGRESSION_METRICS",
    "Comparison",
    "MetricComparison",
    "Predictions",
    "canonical_metric",
    "compare_predictions",
    "compute_metrics",
    "format_measured",
    "format_metric",
    "infer_task",
    "predict",
]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
KNOWN_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
_MAX_CLASSES = 20


def canonical_metric(name: str) -> str:
    """``auc`` -> ``roc_auc``; unknown names raise an error listing the known ones."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in KNOWN_METRICS:
        raise InvalidArgumentError(
            f"Unknown metric {name!r}; known: {', '.join(KNOWN_METRICS)} (auc = roc_auc)"
        )
    return key


def format_metric(value: Any) -> str:
    """A metric as every report shows it: 4 decimals (``0.9950``), so a table, a card and
    a plot legend never disagree; tiny or huge values in 4 significant digits."""
    if isinstance(value, float) and math.isfinite(value):
        if (value != 0 and abs(value) < 1e-3) or abs(value) >= 1e6:
            return f"{value:.4g}"
        return f"{value:.4f}"
    return str(value)


def format_measured(value: Any) -> str:
    """A gate's measured value: as :func:`format_metric`, except that a value already
    rounded where it was measured (a latency of 12.2 ms) keeps its own digits."""
    if isinstance(value, float) and math.isfinite(value) and round(value, 4) == value:
        return f"{value:g}"
    return format_metric(value)


def infer_task(y: Any) -> str:
    """``classification`` or ``regression`` from the target's values."""
    import numpy as np

    values = np.asarray(y)
    if values.dtype.kind in "bOUS":
        return "classification"
    if values.dtype.kind in "iu" and len(np.unique(values)) <= _MAX_CLASSES:
        return "classification"
    return "regression"


@dataclass(frozen=True, slots=True)
class Predictions:
    """A model's outputs on a frame: labels or values, and class probabilities if any."""

    predicted: Any
    proba: Any | None
    classes: Any | None


def predict(model: Any, features: Any, task: str) -> Predictions:
    """Run a loaded model; for classifiers also ask the underlying model for probabilities."""
    import numpy as np

    features = _signature_columns(model, features)
    predicted = np.asarray(model.predict(features))
    if predicted.ndim > 1 and predicted.shape[-1] == 1:
        predicted = predicted.ravel()
    proba = classes = None
    if task == "classification":
        raw = getattr(model, "raw", model)
        if hasattr(raw, "predict_proba"):
            try:
                proba = np.asarray(raw.predict_proba(_native_input(raw, features)))
                classes = getattr(raw, "classes_", None)
            except Exception:  # a model without usable probabilities still gets label metrics
                proba = None
    return Predictions(predicted, proba, classes)


def _signature_columns(model: Any, features: Any) -> Any:
    """Only the columns the model's signature lists: evaluation frames carry targets'
    neighbours and slicing columns that are not model inputs (and must not reach
    ``predict_proba``, which skips signature enforcement)."""
    signature = getattr(model, "signature", None)
    if signature is None or signature.is_tensor or not hasattr(features, "columns"):
        return features
    wanted = [name for name in signature.input_names if name in features.columns]
    return features[wanted] if len(wanted) < len(features.columns) else features


def _native_input(raw: Any, features: Any) -> Any:
    # Estimators fitted on plain arrays warn when given named columns; give them arrays.
    if getattr(raw, "feature_names_in_", None) is None and hasattr(features, "to_numpy"):
        return features.to_numpy()
    return features


def compute_metrics(task: str, y_true: Any, out: Predictions) -> dict[str, Any]:
    """Every metric of the task that the outputs allow."""
    import numpy as np
    from sklearn import metrics as m

    y = np.asarray(y_true)
    if task == "regression":
        predicted = out.predicted.astype(float)
        nonzero = y != 0
        return {
            "rmse": float(math.sqrt(m.mean_squared_error(y, predicted))),
            "mae": float(m.mean_absolute_error(y, predicted)),
            "r2": float(m.r2_score(y, predicted)) if len(y) > 1 else float("nan"),
            "mape": float(np.mean(np.abs((y[nonzero] - predicted[nonzero]) / y[nonzero])))
            if nonzero.any()
            else float("nan"),
        }
    labels = np.unique(np.concatenate([y, out.predicted]))
    binary = len(labels) == 2
    average = "binary" if binary else "macro"
    options: dict[str, Any] = {"average": average, "zero_division": 0}
    if binary:
        options["pos_label"] = labels[-1]
    result: dict[str, Any] = {
        "accuracy": float(m.accuracy_score(y, out.predicted)),
        "precision": float(m.precision_score(y, out.predicted, **options)),
        "recall": float(m.recall_score(y, out.predicted, **options)),
        "f1": float(m.f1_score(y, out.predicted, **options)),
        "confusion_matrix": {
            "labels": [_plain(v) for v in labels],
            "matrix": m.confusion_matrix(y, out.predicted, labels=labels).tolist(),
        },
    }
    if out.proba is not None and len(np.unique(y)) > 1:
        classes = out.classes if out.classes is not None else np.arange(out.proba.shape[1])
        if out.proba.shape[1] == 2:
            result["roc_auc"] = float(m.roc_auc_score(y == classes[1], out.proba[:, 1]))
        else:
            result["roc_auc"] = float(
                m.roc_auc_score(y, out.proba, multi_class="ovr", labels=classes)
            )
        result["log_loss"] = float(m.log_loss(y, out.proba, labels=classes))
    return result


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricComparison:
    """One metric for every model, and each model's difference to the first with a CI."""

    metric: str
    values: tuple[float, ...]
    differences: tuple[float | None, ...]
    ci_low: tuple[float | None, ...]
    ci_high: tuple[float | None, ...]
    higher_is_better: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """Models compared on identical rows."""

    models: tuple[str, ...]
    rows: int
    task: str
    metrics: tuple[MetricComparison, ...]
    confidence: float
    rounds: int


def compare_predictions(
    names: Sequence[str],
    task: str,
    y_true: Any,
    outputs: Sequence[Predictions],
    *,
    rounds: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Metrics per model plus paired-bootstrap CIs of each difference to the first model.

    Each model's predictions are made once; the rounds re-weight rows of those
    predictions (see :mod:`driftline.registry.bootstrap`), the same rows for every model.
    """
    import numpy as np

    from driftline.registry.bootstrap import resample_metrics

    y = np.asarray(y_true)
    base = [compute_metrics(task, y, out) for out in outputs]
    names_in_all = [
        k
        for k in (REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS)
        if all(k in b for b in base)
    ]
    n = len(y)
    resampled = resample_metrics(task, y, outputs, names_in_all, rounds=rounds, seed=seed)
    alpha = (1 - confidence) / 2
    results = []
    for key in names_in_all:
        diffs: list[float | None] = [None]
        lows: list[float | None] = [None]
        highs: list[float | None] = [None]
        for i in range(1, len(outputs)):
            paired = resampled[key][i] - resampled[key][0]
            paired = paired[~np.isnan(paired)]  # rounds where the metric is undefined
            diffs.append(float(base[i][key] - base[0][key]))
            lows.append(float(np.quantile(paired, alpha)) if len(paired) else None)
            highs.append(float(np.quantile(paired, 1 - alpha)) if len(paired) else None)
        results.append(
            MetricComparison(
                metric=key,
                values=tuple(float(b[key]) for b in base),
                differences=tuple(diffs),
                ci_low=tuple(lows),
                ci_high=tuple(highs),
                higher_is_better=HIGHER_IS_BETTER[key],
            )
        )
    return Comparison(
        models=tuple(names),
        rows=n,
        task=task,
        metrics=tuple(results),
        confidence=confidence,
        rounds=rounds,
    )


def slice_metrics(
    task: str, y_true: Any, out: Predictions, column: Any, *, max_values: int = 20
) -> dict[str, Mapping[str, Any]]:
    """Metrics for each of the most frequent values of a slicing column."""
    import numpy as np
    import pandas as pd

    values = pd.Series(np.asarray(column))
    y = np.asarray(y_true)
    result: dict[str, Mapping[str, Any]] = {}
    for value in values.value_counts().index[:max_values]:
        mask = (values == value).to_numpy()
        part = Predictions(
            out.predicted[mask], None if out.proba is None else out.proba[mask], out.classes
        )
        metrics = compute_metrics(task, y[mask], part)
        metrics.pop("confusion_matrix", None)
        result[str(value)] = {"rows": int(mask.sum()), **metrics}
    return result
