"""The evaluation plot's legend reads what the evaluation table says."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from driftline.registry.evaluation import Predictions, compute_metrics, format_metric
from driftline.registry.plots import evaluation_figure, save_evaluation_plot


def nearly_perfect() -> tuple[np.ndarray, Predictions]:
    """Scores whose AUC is 0.99x: two decimals would round it to 1.00."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(y * 0.5 + rng.random(400) * 0.55, 0, 1)
    return y, Predictions((p >= 0.5).astype(int), np.c_[1 - p, p], np.array([0, 1]))


def test_legend_shows_the_evaluation_auc_as_the_table_does() -> None:
    y, out = nearly_perfect()
    metrics = compute_metrics("classification", y, out)
    assert 0.995 <= metrics["roc_auc"] < 1
    figure = evaluation_figure(y, out, title="candidate", metrics=metrics)
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == [f"AUC = {format_metric(metrics['roc_auc'])}"]
    assert legend != ["AUC = 1.00"]
    assert format_metric(metrics["roc_auc"]) == f"{metrics['roc_auc']:.4f}"


def test_the_plot_is_written_as_png(tmp_path: Path) -> None:
    y, out = nearly_perfect()
    path = save_evaluation_plot(y, out, tmp_path / "evaluation.png", title="candidate")
    assert path.read_bytes().startswith(b"\x89PNG")
