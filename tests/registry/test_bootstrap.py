"""The vectorized bootstrap: each round's metrics equal scikit-learn's on the rows drawn."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from driftline.registry.bootstrap import resample_metrics
from driftline.registry.evaluation import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    Predictions,
    compare_predictions,
    compute_metrics,
)

ROUNDS = 25
SEED = 3


def drawn_rows(n: int, rounds: int = ROUNDS, seed: int = SEED) -> Any:
    """The rows each round of ``resample_metrics`` draws (all rounds in one block)."""
    return np.random.default_rng(seed).integers(0, n, (rounds, n))


def expect_rounds_match(task: str, y: Any, out: Predictions, metrics: tuple[str, ...]) -> None:
    resampled = resample_metrics(task, y, [out], metrics, rounds=ROUNDS, seed=SEED)
    checked = 0
    for r, rows in enumerate(drawn_rows(len(y))):
        part = Predictions(
            out.predicted[rows], None if out.proba is None else out.proba[rows], out.classes
        )
        try:
            expected = compute_metrics(task, y[rows], part)
        except ValueError:  # scikit-learn refuses a round (a class without rows)
            continue
        for key in metrics:
            assert resampled[key][0, r] == pytest.approx(expected[key], rel=1e-9, abs=1e-12), (
                key,
                r,
            )
        checked += 1
    assert checked >= ROUNDS // 2


def test_binary_rounds_equal_scikit_learn_with_tied_scores() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    # Rounded scores: many ties, inside and across the classes.
    p = np.round(np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1), 1)
    out = Predictions((p >= 0.5).astype(int), np.c_[1 - p, p], np.array([0, 1]))
    expect_rounds_match("classification", y, out, CLASSIFICATION_METRICS)


def test_string_labels_and_multiclass_rounds_equal_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    classes = np.array(["a", "b", "c"])
    y = classes[rng.integers(0, 3, 400)]
    proba = rng.dirichlet(np.ones(3), 400)
    proba[np.arange(400), np.searchsorted(classes, y)] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    out = Predictions(classes[proba.argmax(axis=1)], proba, classes)
    expect_rounds_match("classification", y, out, CLASSIFICATION_METRICS)


def test_regression_rounds_equal_the_point_metrics() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(100, 20, 250)
    y[:10] = 0  # mape skips zero targets
    out = Predictions(y + rng.normal(0, 5, 250), None, None)
    expect_rounds_match("regression", y, out, REGRESSION_METRICS)


def test_rounds_with_a_single_class_are_left_out() -> None:
    y = np.array([1] * 9 + [0])
    p = np.linspace(0.1, 0.9, 10)
    out = Predictions((p >= 0.5).astype(int), np.c_[1 - p, p], np.array([0, 1]))
    resampled = resample_metrics("classification", y, [out], ["accuracy", "roc_auc"], rounds=200)
    single = np.array([len(np.unique(y[rows])) < 2 for rows in drawn_rows(10, 200, 0)])
    assert single.any()
    assert np.isnan(resampled["accuracy"][0][single]).all()
    assert not np.isnan(resampled["accuracy"][0][~single]).any()


def test_comparison_of_10000_rows_is_paired_and_takes_well_under_a_minute() -> None:
    """Behaviour at the benchmark's size (the speed target itself lives in bench/)."""
    rng = np.random.default_rng(4)
    n = 10_000
    y = rng.integers(0, 2, n)
    outputs = []
    for noise in (0.7, 0.9):
        p = np.clip(y * 0.6 + rng.random(n) * noise, 0, 1)
        outputs.append(Predictions((p >= 0.5).astype(int), np.c_[1 - p, p], np.array([0, 1])))
    began = time.perf_counter()
    result = compare_predictions(["a", "b"], "classification", y, outputs, rounds=1000)
    assert time.perf_counter() - began < 60  # 1,000 scikit-learn calls per model took minutes
    for metric in result.metrics:
        low, high, diff = metric.ci_low[1], metric.ci_high[1], metric.differences[1]
        assert low is not None
        assert high is not None
        assert diff is not None
        assert low <= diff <= high
        if metric.metric != "recall":  # both models recall every positive
            assert high - low > 0
    # The same model against itself: every paired difference is exactly zero.
    same = compare_predictions(["a", "a"], "classification", y, outputs[:1] * 2, rounds=200)
    assert all(m.ci_low[1] == m.ci_high[1] == 0 for m in same.metrics)
