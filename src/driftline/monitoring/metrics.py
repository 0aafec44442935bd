"""Performance metrics on arrays: realized (labels known) and estimated (CBPE), vectorized.

Every function takes whole numpy arrays and returns plain floats; nothing loops over rows
in Python. A metric that is undefined on the data (precision with no positive
prediction, ROC AUC with one class, MAPE with all-zero targets) is left out of the
result rather than reported as NaN.

Classification:

- ``accuracy``; ``precision``, ``recall``, ``f1`` of the positive class (binary) or
  macro-averaged over the classes seen (multiclass);
- ``roc_auc`` from ranks (ties averaged, the Mann-Whitney form; multiclass: macro
  one-vs-rest);
- ``log_loss`` with probabilities clipped to ``[1e-15, 1 - 1e-15]``;
- ``calibration_error``: expected calibration error over 10 equal-width bins of the
  predicted probability of the positive class (binary) or of the top class (multiclass).

Regression: ``mae``, ``rmse``, ``mape`` (over non-zero targets), ``r2``.

Which way each metric improves is :mod:`driftline.core.metric_direction`'s table.

**CBPE** (confidence-based performance estimation, as NannyML describes it) for binary
classifiers: the scores are calibrated on labelled reference data (isotonic regression,
:func:`fit_calibration`), and each unlabelled row then counts as ``p`` of a positive and
``1 - p`` of a negative, where ``p`` is its calibrated probability. The expected
confusion matrix gives accuracy, precision, recall and F1; ROC AUC is the area under the
expected ROC curve (true and false positive rates accumulated over rows sorted by ``p``).
Each estimate has a 95 % band for the sampling error of a window of that size: binomial
for the rates, Hanley and McNeil's standard error for ROC AUC, with the expected class
counts.

**Multiclass CBPE** (:func:`fit_multiclass_calibration`, :func:`cbpe_multiclass`): each
class's probability column is calibrated one-vs-rest as above, and a row's calibrated
probabilities are renormalized to sum to 1. A row predicted as class ``k`` (its largest
model probability) then counts as ``p_c`` of an actual ``c`` for every class ``c``: the
expected confusion matrix gives accuracy and macro precision, recall and F1; ROC AUC is
the macro mean of each class's one-vs-rest expected ROC curve, the rows ranked by the
model's probability of that class. Bands: accuracy binomial over the rows; a macro
figure's standard error is that of the per-class figures (binomial, or Hanley and
McNeil) combined as for a mean of independent estimates, ``sqrt(sum se_c^2) / K``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "Calibration",
    "MulticlassCalibration",
    "average_ranks",
    "binary",
    "cbpe",
    "cbpe_multiclass",
    "fit_calibration",
    "fit_multiclass_calibration",
    "labels_only",
    "multiclass",
    "regression",
    "roc_auc",
]

CLASSIFICATION_METRICS = (
    "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "calibration_error",
)  # fmt: skip
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2")
_EPS = 1e-15
_Z = 1.959963984540054  # two-sided 95 %


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _prf(tp: float, fp: float, fn: float) -> dict[str, float]:
    out = {}
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    if precision is not None:
        out["precision"] = precision
    if recall is not None:
        out["recall"] = recall
    if precision is not None and recall is not None and precision + recall > 0:
        out["f1"] = 2 * precision * recall / (precision + recall)
    return out


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of binary ``y`` (0/1) against ``score``; None with one class only."""
    import numpy as np

    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return None
    if np.isnan(score).any():
        return float("nan")
    ranks = average_ranks(score)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, ties given their average rank (scipy's ``rankdata``; kept
    here because importing ``scipy.stats`` costs a cold check more than the ranking)."""
    import numpy as np

    order = np.argsort(x, kind="stable")
    ordered = x[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.append(starts[1:], len(x))
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: bin-weighted ``|mean(y) - mean(p)|`` over equal bins."""
    import numpy as np

    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    gap = np.abs(np.bincount(idx, weights=y, minlength=bins) - np.bincount(idx, p, bins))
    return float(gap.sum() / max(len(y), 1)) if len(y) else 0.0


def binary(y: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Realized binary metrics: ``y`` 0/1, ``score`` the probability of 1."""
    import numpy as np

    y = y.astype(np.float64)
    pred = score >= threshold
    tp = float(np.sum(y[pred]))
    fp = float(np.count_nonzero(pred)) - tp
    fn = float(np.sum(y[~pred]))
    out = {"accuracy": float(np.mean(pred == (y == 1)))}
    out.update(_prf(tp, fp, fn))
    auc = roc_auc(y, score)
    if auc is not None:
        out["roc_auc"] = auc
    if np.all((score >= 0) & (score <= 1)):
        p = np.clip(score, _EPS, 1 - _EPS)
        out["log_loss"] = float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
        out["calibration_error"] = calibration_error(y, score)
    return out


def multiclass(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Realized multiclass metrics: ``y`` class indices, ``proba`` rows of probabilities."""
    import numpy as np

    k = proba.shape[1]
    pred = np.argmax(proba, axis=1)
    out = labels_only(y, pred)
    rows = np.arange(len(y))
    inside = (y >= 0) & (y < k)
    p = np.clip(proba[rows[inside], y[inside]], _EPS, 1.0)
    if inside.all():
        out["log_loss"] = float(-np.mean(np.log(p)))
    aucs = [roc_auc((y == c).astype(np.float64), proba[:, c]) for c in range(k)]
    seen = [a for a in aucs if a is not None]
    if seen:
        out["roc_auc"] = float(np.mean(seen))
    top = proba[rows, pred]
    out["calibration_error"] = calibration_error((pred == y).astype(np.float64), top)
    return out


def labels_only(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Accuracy and macro precision, recall and F1 of predicted labels (any type)."""
    import numpy as np

    classes, codes = np.unique(np.concatenate([y, pred]), return_inverse=True)
    yc, pc_ = codes[: len(y)], codes[len(y) :]
    k = len(classes)
    tp = np.bincount(yc[yc == pc_], minlength=k).astype(np.float64)
    predicted = np.bincount(pc_, minlength=k)
    actual = np.bincount(yc, minlength=k)
    out = {"accuracy": float(np.mean(yc == pc_))}
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(actual > 0, tp / actual, np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
    if k == 2 and set(classes.tolist()) <= {0, 1}:
        # 0/1 labels: the positive class's figures, as for scores.
        return {**out, **_prf(float(tp[1]), float(predicted[1] - tp[1]), float(actual[1] - tp[1]))}
    seen = actual > 0
    if np.any(seen & (predicted > 0)):
        out["precision"] = float(np.nanmean(precision[seen]))
    out["recall"] = float(np.nanmean(recall[seen]))
    out["f1"] = float(np.nanmean(np.where(np.isnan(f1), 0.0, f1)[seen]))
    return out


def regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, MAPE (non-zero targets only) and R2."""
    import numpy as np

    err = pred - y
    out = {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err * err)))}
    nz = y != 0
    if nz.any():
        out["mape"] = float(np.mean(np.abs(err[nz] / y[nz])))
    ss = float(np.sum((y - y.mean()) ** 2))
    if ss > 0:
        out["r2"] = 1.0 - float(np.sum(err * err)) / ss
    return out


@dataclass(frozen=True, slots=True)
class Calibration:
    """A monotone map from score to probability of the positive class (isotonic fit).

    ``x`` are increasing scores, ``y`` the calibrated probabilities there; scores in
    between are interpolated, outside clamped.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    rows: int

    def __call__(self, score: np.ndarray) -> np.ndarray:
        import numpy as np

        out: np.ndarray = np.interp(score, np.asarray(self.x), np.asarray(self.y))
        return out


def fit_calibration(y: np.ndarray, score: np.ndarray) -> Calibration:
    """Isotonic regression of 0/1 ``y`` on ``score`` (scores tied pooled first).

    Only the first and last score of each constant block are kept: the map is the same
    (flat inside a block, linear between blocks) with a few hundred knots instead of one
    per distinct score, which keeps applying it to millions of rows cheap.
    """
    import numpy as np
    from scipy.optimize import isotonic_regression

    u, inv = np.unique(score, return_inverse=True)
    n = np.bincount(inv).astype(np.float64)
    mean = np.bincount(inv, weights=y.astype(np.float64)) / n
    fitted = isotonic_regression(mean, weights=n, increasing=True).x
    change = np.flatnonzero(np.diff(fitted) != 0)
    keep = np.unique(np.concatenate(([0], change, change + 1, [len(u) - 1])))
    return Calibration(
        x=tuple(float(v) for v in u[keep]),
        y=tuple(float(v) for v in fitted[keep]),
        rows=len(y),
    )


def cbpe(
    score: np.ndarray, calibration: Calibration, threshold: float = 0.5
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Estimated binary metrics and their 95 % bands (module docstring)."""
    import numpy as np

    p = np.clip(calibration(score), 0.0, 1.0)
    n = len(p)
    pred = score >= threshold
    tp = float(p[pred].sum())
    fp = float(np.count_nonzero(pred)) - tp
    fn = float(p[~pred].sum())
    tn = float(np.count_nonzero(~pred)) - fn
    est = {"accuracy": (tp + tn) / n}
    est.update(_prf(tp, fp, fn))
    auc = _expected_auc(p)
    pos, neg = float(p.sum()), float(n - p.sum())
    if auc is not None:
        est["roc_auc"] = auc
    bands = {}
    sizes = {"accuracy": n, "precision": tp + fp, "recall": tp + fn, "f1": tp + (fp + fn) / 2}
    for name, value in est.items():
        if name == "roc_auc":
            se = _hanley_mcneil(value, pos, neg)
        else:
            se = _binomial_se(value, sizes[name])
        bands[name] = _band(value, se)
    return est, bands


@dataclass(frozen=True, slots=True)
class MulticlassCalibration:
    """One-vs-rest calibrations of a multiclass model's probability columns, in class
    order (class ``c`` is column ``c``)."""

    classes: tuple[Calibration, ...]
    rows: int

    def __call__(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities of ``proba`` rows, renormalized to sum to 1."""
        import numpy as np

        out = np.column_stack([cal(proba[:, c]) for c, cal in enumerate(self.classes)])
        out = np.clip(out, 0.0, 1.0)
        total = out.sum(axis=1, keepdims=True)
        # A row every calibration sends to 0 keeps its model probabilities.
        fallback = proba / np.maximum(proba.sum(axis=1, keepdims=True), _EPS)
        calibrated: np.ndarray = np.where(total > 0, out / np.maximum(total, _EPS), fallback)
        return calibrated


def fit_multiclass_calibration(y: np.ndarray, proba: np.ndarray) -> MulticlassCalibration:
    """One-vs-rest isotonic calibrations of ``proba``'s columns, ``y`` class indices.

    Raises:
        InvalidArgumentError: ``y`` is not a class index of ``proba``'s columns, or a
            class never occurs (its calibration would be undefined).
    """
    import numpy as np

    from driftline.errors import InvalidArgumentError

    k = proba.shape[1]
    if len(y) != len(proba) or not np.all((y >= 0) & (y < k) & (y == np.round(y))):
        raise InvalidArgumentError(
            f"Multiclass labels must be class indices 0..{k - 1}, one per row of probabilities"
        )
    seen = np.bincount(y.astype(np.int64), minlength=k)
    if np.any(seen == 0):
        missing = [int(c) for c in np.flatnonzero(seen == 0)]
        raise InvalidArgumentError(
            f"Cannot calibrate: classes {missing} have no labelled row; label more traffic"
        )
    return MulticlassCalibration(
        classes=tuple(fit_calibration((y == c).astype(np.float64), proba[:, c]) for c in range(k)),
        rows=len(y),
    )


def cbpe_multiclass(
    proba: np.ndarray, calibration: MulticlassCalibration
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Estimated multiclass metrics and their 95 % bands (module docstring)."""
    import numpy as np

    k = proba.shape[1]
    if k != len(calibration.classes):
        from driftline.errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"The calibration has {len(calibration.classes)} classes, the predictions {k}"
        )
    p = calibration(proba)
    n = len(p)
    pred = np.argmax(proba, axis=1)
    # Expected confusion: row i adds p[i, c] to (actual c, predicted pred[i]).
    tp = np.array([p[pred == c, c].sum() for c in range(k)])
    predicted = np.bincount(pred, minlength=k).astype(np.float64)
    actual = p.sum(axis=0)
    est = {"accuracy": float(tp.sum() / n)}
    bands = {"accuracy": _band(est["accuracy"], _binomial_se(est["accuracy"], n))}
    per_class: dict[str, list[tuple[float, float]]] = {"precision": [], "recall": [], "f1": []}
    aucs: list[tuple[float, float]] = []
    for c in range(k):
        figures = _prf(float(tp[c]), float(predicted[c] - tp[c]), float(actual[c] - tp[c]))
        sizes = {
            "precision": predicted[c],
            "recall": actual[c],
            "f1": tp[c] + (predicted[c] + actual[c] - 2 * tp[c]) / 2,
        }
        for name in per_class:
            # An undefined per-class figure counts as 0, as it does in the realized macro
            # F1; precision and recall of a class never predicted are left out.
            if name in figures:
                value = figures[name]
                per_class[name].append((value, _binomial_se(value, float(sizes[name]))))
            elif name == "f1":
                per_class[name].append((0.0, 0.0))
        auc = _expected_auc(p[:, c], proba[:, c])
        if auc is not None:
            aucs.append((auc, _hanley_mcneil(auc, float(actual[c]), float(n - actual[c]))))
    per_class["roc_auc"] = aucs
    for name, values in per_class.items():
        if values:
            mean = float(np.mean([v for v, _ in values]))
            se = math.sqrt(sum(e * e for _, e in values)) / len(values)
            est[name] = mean
            bands[name] = _band(mean, se)
    return est, bands


def _binomial_se(value: float, size: float) -> float:
    return math.sqrt(max(value * (1 - value), 0.0) / max(size, 1.0))


def _band(value: float, se: float) -> tuple[float, float]:
    return max(value - _Z * se, 0.0), min(value + _Z * se, 1.0)


def _expected_auc(p: np.ndarray, score: np.ndarray | None = None) -> float | None:
    """Area under the expected ROC curve of calibrated probabilities ``p``, the rows
    ranked by ``score`` (default: by ``p`` itself)."""
    import numpy as np

    pos = float(p.sum())
    neg = float(len(p) - pos)
    if pos <= 0 or neg <= 0:
        return None
    # Rows in decreasing score; at each distinct score the curve moves by the expected
    # positives and negatives of the rows there (ties move diagonally, as in a realized
    # ROC).
    if score is None:
        s = ranked = np.sort(p)[::-1]
    else:
        order = np.argsort(-score, kind="stable")
        ranked, s = score[order], p[order]
    last = np.append(np.flatnonzero(ranked[1:] != ranked[:-1]), len(s) - 1)  # tie run ends
    tp = np.cumsum(s)[last]
    fp = (last + 1) - tp
    tpr = np.concatenate(([0.0], tp / pos))
    fpr = np.concatenate(([0.0], fp / neg))
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _hanley_mcneil(auc: float, pos: float, neg: float) -> float:
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (pos - 1) * (q1 - auc**2) + (neg - 1) * (q2 - auc**2)) / max(
        pos * neg, 1.0
    )
    return math.sqrt(max(var, 0.0))
