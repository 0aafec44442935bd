"""The evaluation plot: ROC curve and confusion matrix of a binary classifier.

The legend prints the evaluation's own ``roc_auc`` through :func:`format_metric`, so it
reads exactly what the evaluation table and the model card say (scikit-learn's
``RocCurveDisplay`` rounds to two decimals: ``AUC = 1.00`` next to a table's 0.9950).
Needs matplotlib (the ``quickstart`` extra).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from driftline.errors import InvalidArgumentError
from driftline.registry.evaluation import Predictions, compute_metrics, format_metric

__all__ = ["evaluation_figure", "save_evaluation_plot"]


def evaluation_figure(
    y_true: Any, out: Predictions, *, title: str, metrics: Mapping[str, Any] | None = None
) -> Any:
    """A matplotlib figure: ROC curve (left) and confusion matrix (right).

    ``metrics`` are the evaluation's (computed from ``y_true`` and ``out`` if not given);
    the legend and the matrix come from them, the curve from the probabilities.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import roc_curve

    y = np.asarray(y_true)
    if out.proba is None or out.proba.shape[1] != 2:
        raise InvalidArgumentError("The evaluation plot needs a binary classifier's probabilities")
    metrics = metrics if metrics is not None else compute_metrics("classification", y, out)
    classes = out.classes if out.classes is not None else np.arange(2)
    fpr, tpr, _ = roc_curve(y == classes[1], out.proba[:, 1])
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    left.plot(fpr, tpr, label=f"AUC = {format_metric(metrics['roc_auc'])}")
    left.plot([0, 1], [0, 1], linestyle=":", color="grey")
    left.set(xlabel="False positive rate", ylabel="True positive rate")
    left.legend(loc="lower right")
    left.set_title("ROC")
    matrix = metrics["confusion_matrix"]
    right.imshow(matrix["matrix"], cmap="Blues")
    for (row, column), count in np.ndenumerate(np.asarray(matrix["matrix"])):
        right.text(column, row, str(count), ha="center", va="center")
    ticks = range(len(matrix["labels"]))
    right.set_xticks(ticks, [str(label) for label in matrix["labels"]])
    right.set_yticks(ticks, [str(label) for label in matrix["labels"]])
    right.set(xlabel="Predicted label", ylabel="True label")
    right.set_title("Confusion matrix")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def save_evaluation_plot(
    y_true: Any,
    out: Predictions,
    path: str | Path,
    *,
    title: str,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write :func:`evaluation_figure` as a PNG and return its path."""
    import matplotlib.pyplot as plt

    figure = evaluation_figure(y_true, out, title=title, metrics=metrics)
    try:
        figure.savefig(path, dpi=90)
    finally:
        plt.close(figure)
    return Path(path)
