"""LightGBM Boosters and scikit-learn wrappers, saved as LightGBM's native text model.

For the scikit-learn wrappers, the loaded object is the Booster (``LoadedModel.raw``);
``predict`` reproduces the wrapper's: class labels for ``LGBMClassifier`` (the most
probable class, labels as fitted), values for regressors and rankers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from driftline.errors import InvalidArgumentError
from driftline.models.flavors.base import Flavor, SavedFlavor, class_path, require

if TYPE_CHECKING:
    from driftline.models.models import ModelInfo

__all__ = ["LightGBMFlavor"]

MODEL_FILE = "model.lgb"


class LightGBMFlavor(Flavor):
    """``lightgbm.Booster`` and ``LGBMClassifier`` / ``LGBMRegressor`` / ``LGBMRanker``."""

    name = "lightgbm"
    label = "LightGBM"
    roots = frozenset({"lightgbm"})
    main_distribution = "lightgbm"

    def save(self, model: Any, folder: Path, *, example: Any) -> SavedFlavor:
        lightgbm = require("lightgbm")

        options: dict[str, Any] = {"file": MODEL_FILE, "format": "text"}
        if isinstance(model, lightgbm.Booster):
            booster = model
            options["api"] = "booster"
        elif isinstance(model, lightgbm.LGBMModel):
            try:
                booster = model.booster_
            except (AttributeError, ValueError):  # LightGBM's "not fitted" error is both
                raise InvalidArgumentError(
                    f"This {class_path(model)} is not fitted: fit it first"
                ) from None
            options["api"] = "sklearn"
            options["estimator"] = class_path(model)
            if isinstance(model, lightgbm.LGBMClassifier):
                classes = model.classes_
                options["task"] = "classification"
                options["classes"] = classes.tolist()
                options["classes_dtype"] = classes.dtype.str
        else:
            raise InvalidArgumentError(
                f"Cannot package a {class_path(model)} as LightGBM: expected a Booster or an "
                "LGBMModel"
            )
        booster.save_model(str(folder / MODEL_FILE))
        return SavedFlavor(options=options, distributions=("lightgbm", "numpy"))

    def load(self, folder: Path, info: ModelInfo) -> Any:
        lightgbm = require("lightgbm")

        return lightgbm.Booster(model_file=str(folder / info.flavor_options["file"]))

    def predictor(self, raw: Any, info: ModelInfo, folder: Path) -> Callable[[Any], Any]:
        lightgbm = require("lightgbm")

        options = info.flavor_options
        if not isinstance(raw, lightgbm.Booster):
            return cast(Callable[[Any], Any], raw.predict)
        if options.get("task") != "classification":
            return cast(Callable[[Any], Any], raw.predict)
        import numpy as np

        classes = np.asarray(options["classes"], dtype=np.dtype(options["classes_dtype"]))

        def predict(data: Any) -> Any:
            proba = raw.predict(data)
            index = (proba > 0.5).astype(np.intp) if proba.ndim == 1 else proba.argmax(axis=1)
            return classes[index]

        return predict
