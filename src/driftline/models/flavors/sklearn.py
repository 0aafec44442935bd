"""scikit-learn estimators and Pipelines, saved with skops (no pickle).

skops refuses to load any type it does not trust by default. At save time the types
skops reports as untrusted (e.g. ``sklearn.tree._tree.Tree`` in a random forest) are
recorded in the manifest; at load time exactly that list is passed as ``trusted``.
This is sound because the manifest is hash-verified like every file: whoever can make
driftline load a manifest listing other types could replace the model as well.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError
from driftline.models.flavors.base import Flavor, SavedFlavor, class_path, require

if TYPE_CHECKING:
    from driftline.models.models import ModelInfo

__all__ = ["SklearnFlavor"]

MODEL_FILE = "model.skops"


class SklearnFlavor(Flavor):
    """scikit-learn estimators (anything with ``predict``), Pipelines included."""

    name = "sklearn"
    label = "scikit-learn (estimators and Pipelines)"
    roots = frozenset({"sklearn"})
    main_distribution = "scikit-learn"

    def matches(self, model: Any) -> bool:
        return super().matches(model) and hasattr(model, "predict")

    def save(self, model: Any, folder: Path, *, example: Any) -> SavedFlavor:
        sio = _skops_io()

        path = folder / MODEL_FILE
        try:
            sio.dump(model, path)
        except Exception as exc:
            raise InvalidArgumentError(
                f"skops cannot save this {class_path(model)} ({exc}); wrap it in a "
                "driftline.models.PythonModel, which is pickled with cloudpickle"
            ) from exc
        untrusted = sorted(sio.get_untrusted_types(file=path))
        return SavedFlavor(
            options={
                "file": MODEL_FILE,
                "serialization": "skops",
                "trusted_types": untrusted,
                "estimator": class_path(model),
            },
            distributions=("scikit-learn", "skops", "numpy"),
        )

    def load(self, folder: Path, info: ModelInfo) -> Any:
        sio = _skops_io()

        options = info.flavor_options
        return sio.load(folder / options["file"], trusted=list(options.get("trusted_types", [])))


class _SkipArrayApiShims(importlib.abc.MetaPathFinder):
    """Makes scikit-learn's array-API shims for other array libraries unimportable.

    Importing skops lists scikit-learn's estimators, and that walk imports every package
    inside scikit-learn, ``externals.array_api_compat.torch`` included, which imports
    PyTorch: 2-6 s on every model save or load wherever torch is installed. The walk
    skips a package whose import fails, and no estimator lives in those shims.
    """

    _PREFIX = "sklearn.externals.array_api_compat."
    _SHIMS = ("torch", "cupy", "dask", "jax", "paddle")

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if fullname.startswith(self._PREFIX) and fullname.split(".")[3] in self._SHIMS:
            raise ImportError(f"{fullname} is not needed to list estimators")
        return None


def _skops_io() -> Any:
    """``skops.io``, imported without the array-API shims (see _SkipArrayApiShims)."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    skip = _SkipArrayApiShims()
    sys.meta_path.insert(0, skip)
    try:
        return require("skops.io", "skops")
    finally:
        sys.meta_path.remove(skip)
