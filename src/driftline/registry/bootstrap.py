"""Bootstrap resamples of evaluation metrics, computed on predictions with array arithmetic.

A comparison predicts once per model; each bootstrap round then only re-weights rows.
Round ``r`` draws ``n`` row indices with replacement, which is the same as giving row
``i`` the weight ``w[i, r]`` (how often it was drawn). Every metric is a function of
weighted sums over rows, so a block of rounds is one matrix product (``columns.T @ w``)
or a few row gathers and one running sum, never a call into scikit-learn per round
(which validated its inputs on every call and made 1,000 rounds take tens of seconds).
Weights are laid out rows x rounds so that gathers and running sums along the rows move
whole contiguous rows of rounds at a time.

ROC AUC is the Mann-Whitney statistic: with the negatives sorted by score once and
``N(<s)``, ``N(<=s)`` the resampled negative weight below and up to a score,
``AUC = sum_pos w_i * (N(<s_i) + N(<=s_i)) / 2 / (P * N)`` (ties count a half), the
value scikit-learn's ``roc_auc_score`` gives.

The same index draws serve every model (a paired design), so the differences between
models' resampled values give the confidence intervals of their differences.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from driftline.registry.evaluation import Predictions

__all__ = ["resample_metrics"]

# Elements of the (rows x rounds) weight block held at once: 2 MiB of float64, so a
# block's gathers and running sums stay in cache (larger blocks measured slower).
_BLOCK_ELEMENTS = 1 << 18


def resample_metrics(
    task: str,
    y_true: Any,
    outputs: Sequence[Predictions],
    metrics: Sequence[str],
    *,
    rounds: int,
    seed: int = 0,
) -> dict[str, NDArray[np.float64]]:
    """Each metric on ``rounds`` bootstrap resamples: metric -> array (models, rounds).

    Every model sees the same resamples. A classification round whose rows hold fewer
    than two classes is ``nan`` for every metric (no metric compares classes there), as
    is a metric undefined on a round (ROC AUC when a class has no rows).
    """
    import numpy as np

    y = np.asarray(y_true)
    n = len(y)
    result = {key: np.full((len(outputs), rounds), np.nan) for key in metrics}
    if n == 0 or rounds <= 0 or not metrics:
        return result
    columns = [
        _regression_columns(y, out) if task == "regression" else _class_columns(y, out)
        for out in outputs
    ]
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency, as is evaluation

    rng = np.random.default_rng(seed)
    # The products are small (a handful of columns); BLAS threads spinning for cores a
    # busy machine does not have made them 10x slower than one thread.
    with threadpool_limits(limits=1, user_api="blas"):
        _fill(task, y, outputs, columns, metrics, rng, rounds, result)
    return result


def _fill(
    task: str,
    y: NDArray[Any],
    outputs: Sequence[Predictions],
    columns: Sequence[_Columns],
    metrics: Sequence[str],
    rng: np.random.Generator,
    rounds: int,
    result: dict[str, NDArray[np.float64]],
) -> None:
    n = len(y)
    for start, weights in _weight_blocks(rng, n, rounds):
        stop = start + weights.shape[1]
        for i, (out, model_columns) in enumerate(zip(outputs, columns, strict=True)):
            sums = (model_columns.matrix.T @ weights).T
            if task == "regression":
                values = _regression_values(sums, n)
            else:
                values = _class_values(sums, model_columns, n)
                if "roc_auc" in metrics and out.proba is not None:
                    values["roc_auc"] = _roc_auc(weights, y, out)
            for key in metrics:
                if key in values:
                    result[key][i, start:stop] = values[key]


def _weight_blocks(
    rng: np.random.Generator, n: int, rounds: int
) -> Iterator[tuple[int, NDArray[np.float64]]]:
    """Blocks of rounds as (first round, weights of shape (n, rounds in block))."""
    import numpy as np

    per_block = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, rounds, per_block):
        size = min(per_block, rounds - start)
        dtype = np.int32 if size * n < 2**31 else np.int64  # 32-bit draws are faster
        # One bincount turns each round's drawn indices into per-row draw counts.
        offsets = np.arange(0, size * n, n, dtype=dtype)[:, None]  # round r: r * n
        rows = np.add(rng.integers(0, n, (size, n), dtype=dtype), offsets)
        counts = np.bincount(rows.ravel(), minlength=size * n).reshape(size, n)
        yield start, np.ascontiguousarray(counts.T, dtype=np.float64)


class _Columns:
    """Per-row columns whose weighted sums give a model's metrics."""

    def __init__(self, matrix: NDArray[np.float64], classes: int = 0, binary: bool = False):
        self.matrix = matrix
        self.classes = classes
        self.binary = binary


def _regression_columns(y: NDArray[Any], out: Predictions) -> _Columns:
    import numpy as np

    truth = y.astype(float)
    predicted = np.asarray(out.predicted, dtype=float)
    error = truth - predicted
    nonzero = truth != 0
    ape = np.zeros_like(truth)
    ape[nonzero] = np.abs(error[nonzero] / truth[nonzero])
    # Centred on the full mean, so the resampled variance is not a difference of huge sums.
    centred = truth - truth.mean()
    matrix = np.column_stack(
        [error**2, np.abs(error), centred, centred**2, ape, nonzero.astype(float)]
    )
    return _Columns(matrix)


def _regression_values(sums: NDArray[np.float64], n: int) -> dict[str, NDArray[np.float64]]:
    import numpy as np

    sse, sae, s1, s2, sape, nonzero = sums.T
    sst = s2 - s1 * s1 / n
    constant = sst <= 1e-12 * np.maximum(s2, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        # scikit-learn's r2 on a constant target: 1 for a perfect fit, else 0.
        r2 = np.where(constant, np.where(sse == 0, 1.0, 0.0), 1 - sse / np.where(constant, 1, sst))
        mape = np.where(nonzero > 0, sape / np.where(nonzero > 0, nonzero, 1), np.nan)
    if n < 2:
        r2 = np.full_like(r2, np.nan)
    return {"rmse": np.sqrt(sse / n), "mae": sae / n, "r2": r2, "mape": mape}


def _class_columns(y: NDArray[Any], out: Predictions) -> _Columns:
    """Indicator columns per label: correct, true, predicted; then the row's log loss."""
    import numpy as np

    predicted = np.asarray(out.predicted)
    labels, codes = np.unique(np.concatenate([y, predicted]), return_inverse=True)
    k = len(labels)
    true_code, predicted_code = codes[: len(y)], codes[len(y) :]
    rows = np.arange(len(y))
    matrix = np.zeros((len(y), 3 * k + 1))
    matrix[rows, true_code] = true_code == predicted_code  # true positives of that label
    matrix[rows, k + true_code] = 1.0
    matrix[rows, 2 * k + predicted_code] = 1.0
    if out.proba is not None:
        matrix[:, 3 * k] = _row_log_loss(y, out)
    return _Columns(matrix, classes=k, binary=k == 2)


def _row_log_loss(y: NDArray[Any], out: Predictions) -> NDArray[np.float64]:
    """Each row's log loss as scikit-learn's ``log_loss`` computes it (clipped, columns in
    sorted label order); ``nan`` for a label the model does not know."""
    import numpy as np

    proba = np.asarray(out.proba, dtype=float)
    classes = out.classes if out.classes is not None else np.arange(proba.shape[1])
    ordered = np.sort(np.asarray(classes))
    column = np.searchsorted(ordered, y)
    known = (column < len(ordered)) & (ordered[np.minimum(column, len(ordered) - 1)] == y)
    eps = np.finfo(float).eps
    picked = proba[np.arange(len(y)), np.minimum(column, proba.shape[1] - 1)]
    return np.where(known, -np.log(np.clip(picked, eps, 1 - eps)), np.nan)


def _class_values(
    sums: NDArray[np.float64], columns: _Columns, n: int
) -> dict[str, NDArray[np.float64]]:
    """Accuracy, precision, recall, F1 (binary: of the last label; else macro over the
    labels present in the round, as scikit-learn does), log loss."""
    import numpy as np

    k = columns.classes
    tp, support, chosen = sums[:, :k], sums[:, k : 2 * k], sums[:, 2 * k : 3 * k]
    valid = (support > 0).sum(axis=1) >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(chosen > 0, tp / chosen, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(support + chosen > 0, 2 * tp / (support + chosen), 0.0)
    if columns.binary:
        values = {"precision": precision[:, -1], "recall": recall[:, -1], "f1": f1[:, -1]}
    else:
        present = (support > 0) | (chosen > 0)
        count = np.maximum(present.sum(axis=1), 1)
        values = {
            "precision": (precision * present).sum(axis=1) / count,
            "recall": (recall * present).sum(axis=1) / count,
            "f1": (f1 * present).sum(axis=1) / count,
        }
    values["accuracy"] = tp.sum(axis=1) / n
    values["log_loss"] = sums[:, 3 * k] / n
    return {key: np.where(valid, value, np.nan) for key, value in values.items()}


def _roc_auc(weights: NDArray[np.float64], y: NDArray[Any], out: Predictions) -> Any:
    """Binary: AUC of the second class's probability; more classes: the unweighted mean
    of one-vs-rest AUCs (``nan`` in a round where a class has no rows)."""
    import numpy as np

    proba = np.asarray(out.proba, dtype=float)
    classes = out.classes if out.classes is not None else np.arange(proba.shape[1])
    if proba.shape[1] == 2:
        return _binary_auc(weights, y == classes[1], proba[:, 1])
    per_class = [_binary_auc(weights, y == c, proba[:, j]) for j, c in enumerate(classes)]
    return np.mean(per_class, axis=0)


def _binary_auc(
    weights: NDArray[np.float64], positive: NDArray[np.bool_], score: NDArray[np.float64]
) -> NDArray[np.float64]:
    import numpy as np

    negatives = np.flatnonzero(~positive)
    positives = np.flatnonzero(positive)
    negatives = negatives[np.argsort(score[negatives], kind="stable")]
    sorted_scores = score[negatives]
    below = np.searchsorted(sorted_scores, score[positives], side="left")
    up_to = np.searchsorted(sorted_scores, score[positives], side="right")
    running = np.zeros((len(negatives) + 1, weights.shape[1]))
    np.cumsum(weights[negatives], axis=0, out=running[1:])  # negative weight up to each
    w_pos = weights[positives]
    total_pos, total_neg = w_pos.sum(axis=0), running[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.array_equal(below, up_to):  # no positive ties a negative: one gather
            pairs = np.einsum("ij,ij->j", w_pos, running[below])
        else:
            pairs = np.einsum("ij,ij->j", w_pos, running[below] + running[up_to]) / 2
        auc = pairs / (total_pos * total_neg)
    return np.where((total_pos > 0) & (total_neg > 0), auc, np.nan)
