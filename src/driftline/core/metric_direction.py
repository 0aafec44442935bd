"""Which way each model-quality metric improves: the one table every stage reads.

The registry compares versions (gates, paired comparisons), monitoring compares a
canary with its stable, retraining refuses a ``below`` trigger on a loss; all of them
ask this table, so a metric can never be a gain in one stage and a loss in another.

Keys are canonical names (``roc_auc``, ``log_loss``): every metric the registry
evaluates and every metric monitoring computes. :data:`ALIASES` maps the other
spellings users write (``auc``, ``logloss``) to them; which names a stage accepts
stays that stage's own rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["ALIASES", "HIGHER_IS_BETTER", "LOWER_IS_BETTER"]

#: Canonical metric name -> True when a larger value is better.
HIGHER_IS_BETTER: Mapping[str, bool] = MappingProxyType(
    {
        "accuracy": True,
        "precision": True,
        "recall": True,
        "f1": True,
        "roc_auc": True,
        "log_loss": False,
        "calibration_error": False,
        "mae": False,
        "rmse": False,
        "mape": False,
        "r2": True,
    }
)
#: The metrics that get better as they fall (the others get better as they rise).
LOWER_IS_BETTER = frozenset(name for name, higher in HIGHER_IS_BETTER.items() if not higher)
#: Other spellings of canonical names.
ALIASES: Mapping[str, str] = MappingProxyType(
    {"auc": "roc_auc", "rocauc": "roc_auc", "f1_score": "f1", "logloss": "log_loss"}
)
