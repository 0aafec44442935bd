"""Multiclass CBPE: estimates from calibrated class probabilities against the realized
figures on well-calibrated synthetic data, as arrays and on a deployment's traffic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk
from traffic_log import write_log

from driftline.errors import InvalidArgumentError
from driftline.monitoring import MonitoringService
from driftline.monitoring import metrics as m
from driftline.workspace import Workspace

DAY = timedelta(days=1)
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - 4 * DAY
ESTIMATED = ("accuracy", "precision", "recall", "f1", "roc_auc")


def calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, probabilities)`` of a well-calibrated 3-class model: each label is
    drawn from the row's probabilities. Unequal classes, so macro figures differ from
    accuracy."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 3)) * np.array([2.0, 1.0, 0.5]) + np.array([0.8, 0.0, -0.6])
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return y, p


def realized(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    pred = p.argmax(axis=1)
    return {
        "accuracy": sk.accuracy_score(y, pred),
        "precision": sk.precision_score(y, pred, average="macro"),
        "recall": sk.recall_score(y, pred, average="macro"),
        "f1": sk.f1_score(y, pred, average="macro"),
        "roc_auc": sk.roc_auc_score(y, p, multi_class="ovr", average="macro"),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_estimates_match_the_realized_figures_and_their_bands_cover_them(seed: int) -> None:
    y_ref, p_ref = calibrated(50_000, seed)
    y, p = calibrated(20_000, seed + 100)
    calibration = m.fit_multiclass_calibration(y_ref.astype(float), p_ref)
    est, bands = m.cbpe_multiclass(p, calibration)
    truth = realized(y, p)
    assert set(est) == set(ESTIMATED)
    for name in ESTIMATED:
        low, high = bands[name]
        assert low < est[name] < high
        assert abs(est[name] - truth[name]) <= 0.02, (name, est[name], truth[name])
        # a band for sampling error, at this size: about +-0.01, not a blanket
        assert high - low < 0.03
    # Macro figures are not accuracy in disguise on unequal classes.
    assert abs(est["f1"] - est["accuracy"]) > 0.05
    assert abs(truth["f1"] - truth["accuracy"]) > 0.05


def test_the_bands_hold_the_realized_figures_about_95_percent_of_the_time() -> None:
    y_ref, p_ref = calibrated(50_000, 21)
    calibration = m.fit_multiclass_calibration(y_ref.astype(float), p_ref)
    trials = 120
    covered = dict.fromkeys(ESTIMATED, 0)
    for seed in range(trials):
        y, p = calibrated(2_000, 1_000 + seed)
        _, bands = m.cbpe_multiclass(p, calibration)
        truth = realized(y, p)
        for name in ESTIMATED:
            covered[name] += bands[name][0] <= truth[name] <= bands[name][1]
    rates = {name: n / trials for name, n in covered.items()}
    # 95 % bands for the window's sampling error: not much lower, and not a blanket.
    assert all(r >= 0.85 for r in rates.values()), rates
    assert sum(rates.values()) / len(rates) < 0.995, rates


def test_a_shifted_model_is_estimated_lower() -> None:
    y_ref, p_ref = calibrated(30_000, 5)
    calibration = m.fit_multiclass_calibration(y_ref.astype(float), p_ref)
    _, p = calibrated(10_000, 6)
    blurred = 0.5 * p + 0.5 / 3  # less confident scores: fewer sure rows, lower accuracy
    sharp, _ = m.cbpe_multiclass(p, calibration)
    soft, _ = m.cbpe_multiclass(blurred, calibration)
    assert soft["accuracy"] <= sharp["accuracy"] + 1e-9


def test_bad_calibration_input_is_a_typed_error() -> None:
    p = np.full((10, 3), 1 / 3)
    with pytest.raises(InvalidArgumentError, match=r"class indices 0\.\.2"):
        m.fit_multiclass_calibration(np.full(10, 3.0), p)
    with pytest.raises(InvalidArgumentError, match=r"classes \[2\] have no labelled row"):
        m.fit_multiclass_calibration(np.array([0.0, 1.0] * 5), p)
    calibration = m.fit_multiclass_calibration(np.array([0.0, 1.0, 2.0] * 3 + [0.0]), p)
    with pytest.raises(InvalidArgumentError, match="3 classes, the predictions 2"):
        m.cbpe_multiclass(np.full((10, 2), 0.5), calibration)


def test_a_multiclass_deployment_gets_estimates_labelled_estimated(
    open_workspace: Callable[..., Workspace],
) -> None:
    svc = open_workspace("sqlite://").service("monitoring", MonitoringService)
    assert svc.log_root is not None
    per_day = 3_000
    y, p = calibrated(3 * per_day, 11)
    frame = pd.DataFrame({"x": p[:, 0]})
    ids = write_log(svc.log_root, "kinds", START, frame, p, spacing=DAY / per_day)
    # Labels for day 1 only: days 2 and 3 are estimated from the calibration on day 1.
    svc.log_labels("kinds", pd.DataFrame({"request_id": ids[:per_day], "label": y[:per_day]}))
    rep = svc.performance("kinds", since=START, until=START + 3 * DAY)
    assert rep.task == "multiclass"
    assert rep.calibration_rows == per_day
    estimated = [w for w in rep.windows if w.kind == "estimated"]
    assert [w.status for w in estimated] == ["ok", "ok", "ok"]
    assert all(w.estimated for w in estimated)
    for day, w in enumerate(estimated[1:], start=1):
        rows = slice(day * per_day, (day + 1) * per_day)
        truth = realized(y[rows], p[rows])
        for name in ESTIMATED:
            assert w.lower[name] <= w.metrics[name] <= w.upper[name]
            assert abs(w.metrics[name] - truth[name]) <= 0.04, (day, name)
    unlabelled = [w for w in rep.windows if w.kind == "realized"][1:]
    assert [(w.status, w.coverage) for w in unlabelled] == [("insufficient_data", 0.0)] * 2
