"""Custom :class:`~driftline.models.PythonModel` subclasses, saved with cloudpickle.

Unpickling executes code; that is why every file is verified against the manifest
before anything is unpickled. Exceptions raised by the model's own ``load_context`` and
``predict`` come out as :class:`~driftline.errors.UserCodeError` (the original is the
``__cause__``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.errors import UserCodeError
from driftline.models.flavors.base import Flavor, SavedFlavor, class_path, require
from driftline.models.pyfunc import PythonModel, PythonModelContext

if TYPE_CHECKING:
    from driftline.models.models import ModelInfo

__all__ = ["PythonModelFlavor"]

MODEL_FILE = "python_model.pkl"


class PythonModelFlavor(Flavor):
    """Subclasses of :class:`~driftline.models.PythonModel`."""

    name = "python_model"
    label = "driftline.models.PythonModel subclasses"
    main_distribution = "cloudpickle"

    def matches(self, model: Any) -> bool:
        return isinstance(model, PythonModel)

    def save(self, model: Any, folder: Path, *, example: Any) -> SavedFlavor:
        cloudpickle = require("cloudpickle")

        with open(folder / MODEL_FILE, "wb") as out:
            cloudpickle.dump(model, out)
        return SavedFlavor(
            options={
                "file": MODEL_FILE,
                "serialization": "cloudpickle",
                "class": class_path(model),
            },
            distributions=("cloudpickle", "numpy", "pandas"),
        )

    def load(self, folder: Path, info: ModelInfo) -> Any:
        cloudpickle = require("cloudpickle")

        with open(folder / info.flavor_options["file"], "rb") as handle:
            model = cloudpickle.load(handle)
        context = _context(folder, info)
        try:
            model.load_context(context)
        except Exception as exc:
            raise UserCodeError(
                f"{class_path(model)}.load_context raised {type(exc).__name__}: {exc}"
            ) from exc
        return model

    def predictor(self, raw: Any, info: ModelInfo, folder: Path) -> Callable[[Any], Any]:
        return _predict_function(raw, _context(folder, info))

    def example_predictor(self, model: Any, folder: Path, info: ModelInfo) -> Callable[[Any], Any]:
        # A fresh copy from the package, so the caller's object is not changed by load_context.
        copy = self.load(folder, info)
        return _predict_function(copy, _context(folder, info))


def _context(folder: Path, info: ModelInfo) -> PythonModelContext:
    return PythonModelContext(
        artifacts={name: str(folder / relative) for name, relative in info.artifacts.items()}
    )


def _predict_function(model: Any, context: PythonModelContext) -> Callable[[Any], Any]:
    predict = model.predict

    def run(data: Any) -> Any:
        try:
            return predict(context, data)
        except Exception as exc:
            raise UserCodeError(
                f"{class_path(model)}.predict raised {type(exc).__name__}: {exc}"
            ) from exc

    return run
