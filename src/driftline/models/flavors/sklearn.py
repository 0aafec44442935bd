"""scikit-learn estimators and Pipelines, saved with skops (no pickle).

skops refuses to load any type it does not trust by default. At save time the types
skops reports as untrusted (e.g. ``sklearn.tree._tree.Tree`` in a random forest) are
recorded in the manifest; at load time exactly that list is passed as ``trusted``.
This is sound because the manifest is hash-verified like every file: whoever can make
driftline load a manifest listing other types could replace the model as well.

skops trusts every scikit-learn estimator by default, and lists them when it is
imported: a walk that imports all of scikit-learn, SciPy's submodules and pytest
(~270 modules, ~12 MB and a few tenths of a second that a process serving one
linear model does not need). driftline imports skops without
that walk (:func:`_skops_io`): loading checks only the types the file names
(:func:`_estimator_types`, the rule the walk applies), and saving completes skops'
default list first (:func:`_complete_defaults`), so the manifests written are the same.
"""

from __future__ import annotations

import importlib
import importlib.abc
import inspect
import itertools
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError
from driftline.models.flavors.base import Flavor, SavedFlavor, class_path, require
from driftline.models.flavors.linear import export_linear, load_linear, serves_rows

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
        _complete_defaults()  # the untrusted types recorded must not depend on the process

        path = folder / MODEL_FILE
        try:
            sio.dump(model, path)
        except Exception as exc:
            raise InvalidArgumentError(
                f"skops cannot save this {class_path(model)} ({exc}); wrap it in a "
                "driftline.models.PythonModel, which is pickled with cloudpickle"
            ) from exc
        untrusted = sorted(sio.get_untrusted_types(file=path))
        options: dict[str, Any] = {
            "file": MODEL_FILE,
            "serialization": "skops",
            "trusted_types": untrusted,
            "estimator": class_path(model),
        }
        # A numpy-only twin for linear models, verified before it is written (serving
        # workers then predict without importing scikit-learn).
        linear = export_linear(model, folder, example)
        if linear is not None:
            options["linear"] = linear
        return SavedFlavor(options=options, distributions=("scikit-learn", "skops", "numpy"))

    def load_lite(self, folder: Path, info: ModelInfo) -> Any:
        """The numpy-only :class:`LinearPredictor` of the package, when it has one that
        can stand in for the estimator under its signature; else ``None``."""
        options = info.flavor_options.get("linear")
        if not options:
            return None
        predictor = load_linear(folder, options)
        return predictor if serves_rows(info.signature, predictor) else None

    def load(self, folder: Path, info: ModelInfo) -> Any:
        sio = _skops_io()

        options = info.flavor_options
        path = folder / options["file"]
        trusted = list(options.get("trusted_types", []))
        if not _defaults_complete():
            # The estimators skops would trust by default, among the types of this file.
            named = set(sio.get_untrusted_types(file=path)) - set(trusted)
            trusted += sorted(_estimator_types(named))
        return sio.load(path, trusted=trusted)


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
    """``skops.io``, imported without listing scikit-learn's estimators (see the module
    docstring): its default list of trusted estimators starts empty."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    utils = require("sklearn.utils", "scikit-learn")
    walk = utils.all_estimators
    utils.all_estimators = _no_estimators
    try:
        return require("skops.io", "skops")
    finally:
        utils.all_estimators = walk


def _no_estimators(*_args: Any, **_kwargs: Any) -> list[Any]:
    return []


_complete_lock = threading.Lock()


def _defaults_complete() -> bool:
    _trusted_types = importlib.import_module("skops.io._trusted_types")
    return bool(_trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES)


def _complete_defaults() -> None:
    """Fill skops' default list of trusted estimators (in place: skops reads that list
    object when it checks a file), walking scikit-learn once per process without the
    array-API shims (see _SkipArrayApiShims)."""
    _trusted_types = importlib.import_module("skops.io._trusted_types")
    get_type_name = importlib.import_module("skops.io._utils").get_type_name
    with _complete_lock:
        if _trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES:
            return
        from sklearn.utils import all_estimators

        skip = _SkipArrayApiShims()
        sys.meta_path.insert(0, skip)
        try:
            names = [get_type_name(c) for _, c in all_estimators()]
        finally:
            sys.meta_path.remove(skip)
        _trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES.extend(
            n for n in names if n.startswith("sklearn.")
        )


# Packages scikit-learn's estimator listing skips (sklearn.utils.discovery).
_IGNORED_PARTS = frozenset(
    {"tests", "externals", "estimator_checks", "experimental", "conftest", "setup"}
)


def _estimator_types(names: Iterable[str]) -> set[str]:
    """The names among ``names`` that skops trusts by default: public, concrete
    scikit-learn estimators, exported by a public scikit-learn module (the rule of
    ``sklearn.utils.all_estimators``, applied to these names only)."""
    from sklearn.base import BaseEstimator

    found = set()
    for name in names:
        module_name, _, class_name = name.rpartition(".")
        parts = module_name.split(".")
        if parts[0] != "sklearn" or class_name.startswith("_") or class_name == "BaseEstimator":
            continue
        if _IGNORED_PARTS.intersection(parts):
            continue
        public = ".".join(itertools.takewhile(lambda p: not p.startswith("_"), parts))
        try:
            cls = getattr(importlib.import_module(module_name), class_name, None)
            exported = getattr(importlib.import_module(public), class_name, None)
        except ImportError:
            continue
        if cls is not exported:
            continue
        if not isinstance(cls, type):
            continue
        if (
            cls.__module__ == module_name
            and issubclass(cls, BaseEstimator)
            and not inspect.isabstract(cls)
        ):
            found.add(name)
    return found
