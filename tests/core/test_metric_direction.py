"""One direction table covers every metric a stage computes or accepts."""

from __future__ import annotations

import pytest

from driftline.core.metric_direction import ALIASES, HIGHER_IS_BETTER, LOWER_IS_BETTER
from driftline.errors import InvalidArgumentError
from driftline.monitoring import metrics as monitoring_metrics
from driftline.registry import evaluation


def test_every_metric_of_every_stage_has_a_direction() -> None:
    names = {
        *evaluation.KNOWN_METRICS,
        *monitoring_metrics.CLASSIFICATION_METRICS,
        *monitoring_metrics.REGRESSION_METRICS,
    }
    assert names == set(HIGHER_IS_BETTER)
    assert set(ALIASES.values()) <= set(HIGHER_IS_BETTER)


def test_losses_and_errors_are_lower_is_better() -> None:
    assert {"log_loss", "calibration_error", "mae", "rmse", "mape"} == LOWER_IS_BETTER
    assert not any(HIGHER_IS_BETTER[name] for name in LOWER_IS_BETTER)


def test_the_registry_accepts_aliases_but_only_what_it_evaluates() -> None:
    assert evaluation.canonical_metric("AUC") == "roc_auc"
    assert evaluation.canonical_metric("logloss") == "log_loss"
    with pytest.raises(InvalidArgumentError, match="Unknown metric 'calibration_error'"):
        evaluation.canonical_metric("calibration_error")
