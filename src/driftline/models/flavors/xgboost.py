"""XGBoost Boosters and scikit-learn wrappers, saved as XGBoost JSON (``save_model``).

A scikit-learn wrapper is rebuilt from the JSON by its class, which must be one of
XGBoost's own (a subclass is rebuilt as the XGBoost class it derives from): no class is
ever imported by a name read from a file beyond that fixed list.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from driftline.errors import InvalidArgumentError
from driftline.models.flavors.base import Flavor, SavedFlavor, class_path, require

if TYPE_CHECKING:
    from driftline.models.models import ModelInfo

__all__ = ["XGBoostFlavor"]

MODEL_FILE = "model.json"
_ESTIMATORS = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")


class XGBoostFlavor(Flavor):
    """``xgboost.Booster`` and the ``XGBClassifier`` family."""

    name = "xgboost"
    label = "XGBoost"
    roots = frozenset({"xgboost"})
    main_distribution = "xgboost"

    def save(self, model: Any, folder: Path, *, example: Any) -> SavedFlavor:
        xgboost = require("xgboost")

        options: dict[str, Any] = {"file": MODEL_FILE, "format": "json"}
        if isinstance(model, xgboost.XGBModel):
            base = next(
                (
                    cls.__name__
                    for cls in type(model).__mro__
                    if cls.__module__.startswith("xgboost") and cls.__name__ in _ESTIMATORS
                ),
                None,
            )
            if base is None:
                raise InvalidArgumentError(
                    f"Cannot package a {class_path(model)}: XGBoost estimators supported are "
                    f"{', '.join(_ESTIMATORS)}"
                )
            options["api"] = "sklearn"
            options["estimator"] = base
        elif isinstance(model, xgboost.Booster):
            options["api"] = "booster"
        else:
            raise InvalidArgumentError(
                f"Cannot package a {class_path(model)} as XGBoost: expected a Booster or an "
                "XGBModel"
            )
        model.save_model(str(folder / MODEL_FILE))
        return SavedFlavor(options=options, distributions=("xgboost", "numpy"))

    def load(self, folder: Path, info: ModelInfo) -> Any:
        xgboost = require("xgboost")

        options = info.flavor_options
        path = str(folder / options["file"])
        if options.get("api") == "sklearn":
            estimator = options.get("estimator")
            if estimator not in _ESTIMATORS:
                raise InvalidArgumentError(
                    f"Unknown XGBoost estimator {estimator!r} in the manifest; known: "
                    f"{', '.join(_ESTIMATORS)}"
                )
            model = getattr(xgboost, estimator)()
            model.load_model(path)
            return model
        booster = xgboost.Booster()
        booster.load_model(path)
        return booster

    def predictor(self, raw: Any, info: ModelInfo, folder: Path) -> Callable[[Any], Any]:
        xgboost = require("xgboost")

        if isinstance(raw, xgboost.Booster):
            return cast(Callable[[Any], Any], raw.inplace_predict)
        return cast(Callable[[Any], Any], raw.predict)
