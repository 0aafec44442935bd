"""Flavors: one module per model library, found through one ordered table.

The order matters where class hierarchies overlap: LightGBM's and XGBoost's
scikit-learn wrappers are scikit-learn estimators too, and are saved in their own
native formats, so they are asked before scikit-learn.
"""

from __future__ import annotations

from typing import Any

from driftline.errors import InvalidArgumentError
from driftline.models.flavors.base import Flavor, SavedFlavor, class_path
from driftline.models.flavors.lightgbm import LightGBMFlavor
from driftline.models.flavors.onnx import OnnxFlavor
from driftline.models.flavors.python_model import PythonModelFlavor
from driftline.models.flavors.sklearn import SklearnFlavor
from driftline.models.flavors.torch import TorchFlavor
from driftline.models.flavors.xgboost import XGBoostFlavor

__all__ = ["FLAVORS", "Flavor", "SavedFlavor", "flavor_for", "get_flavor"]

FLAVORS: tuple[Flavor, ...] = (
    PythonModelFlavor(),
    LightGBMFlavor(),
    XGBoostFlavor(),
    TorchFlavor(),
    OnnxFlavor(),
    SklearnFlavor(),
)
_BY_NAME = {flavor.name: flavor for flavor in FLAVORS}


def supported_text() -> str:
    """The flavors as a sentence for error messages."""
    return ", ".join(flavor.label for flavor in FLAVORS if flavor.name != "python_model")


def flavor_for(model: Any) -> Flavor:
    """The flavor that packages ``model``.

    Raises:
        InvalidArgumentError: No flavor does; the message lists them and points to
            :class:`~driftline.models.PythonModel`.
    """
    for flavor in FLAVORS:
        if flavor.matches(model):
            return flavor
    raise InvalidArgumentError(
        f"Cannot package a {class_path(model)}: supported flavors are {supported_text()}. "
        "For anything else, subclass driftline.models.PythonModel and implement "
        "predict(context, model_input) (optionally load_context(context))."
    )


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name`` (as written in a manifest)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InvalidArgumentError(
            f"Unknown model flavor {name!r}; this driftline knows {', '.join(_BY_NAME)}. "
            "The package may come from a newer driftline: upgrade to load it."
        ) from None
