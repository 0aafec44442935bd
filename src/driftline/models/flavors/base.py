"""What every flavor does: save a model's files, load them back, and predict.

A flavor is a small class with four duties:

- ``matches(model)``: whether it packages this object (checked on the object's class
  hierarchy by module name, so no library is imported just to ask);
- ``save(model, folder, example=...)``: write the model's files into ``folder`` and
  return the options needed to load them and the distributions they need;
- ``load(folder, info)``: read them back (only ever called after every file of the
  package matched its manifest digest);
- ``predictor(raw, info, folder)``: a function from a checked input to predictions.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from driftline.models.models import ModelInfo
    from driftline.models.signature import Signature

__all__ = ["Flavor", "SavedFlavor", "class_path", "mro_roots", "require"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedFlavor:
    """What a flavor's ``save`` wrote: the options to load it and the distributions needed.

    Attributes:
        options: JSON values stored as the manifest's ``flavor_options``.
        distributions: Pip distribution names the saved files need to load
            (``scikit-learn``, ``skops``); their versions are recorded.
    """

    options: Mapping[str, Any] = field(default_factory=dict)
    distributions: tuple[str, ...] = ()


class Flavor:
    """Base class of flavors (see the module docstring)."""

    name: ClassVar[str] = ""
    #: What error messages call it.
    label: ClassVar[str] = ""
    #: Top-level modules whose classes this flavor packages.
    roots: ClassVar[frozenset[str]] = frozenset()
    #: The distribution whose version matters most when loading (warned about on mismatch).
    main_distribution: ClassVar[str] = ""

    def matches(self, model: Any) -> bool:
        """Whether this flavor packages ``model``."""
        return bool(self.roots & mro_roots(model))

    def save(self, model: Any, folder: Path, *, example: Any) -> SavedFlavor:
        """Write the model's files into ``folder``."""
        raise NotImplementedError

    def load(self, folder: Path, info: ModelInfo) -> Any:
        """Read the model from a verified package folder."""
        raise NotImplementedError

    def predictor(self, raw: Any, info: ModelInfo, folder: Path) -> Callable[[Any], Any]:
        """A function from a checked input to predictions (``raw`` as loaded or as given)."""
        return cast(Callable[[Any], Any], raw.predict)

    def load_lite(self, folder: Path, info: ModelInfo) -> Any:
        """A lighter stand-in for :meth:`load` that predicts the same (imports fewer
        libraries), or ``None`` when the package has none (see ``load_model_folder``)."""
        return None

    def example_predictor(self, model: Any, folder: Path, info: ModelInfo) -> Callable[[Any], Any]:
        """The function run on the input example at save time to infer the output schema."""
        return self.predictor(model, info, folder)

    def default_signature(self, model: Any) -> Signature | None:
        """A signature read from the model itself when no input example is given."""
        return None


def mro_roots(model: Any) -> frozenset[str]:
    """Top-level module names of the classes in ``model``'s class hierarchy."""
    return frozenset(cls.__module__.split(".", 1)[0] for cls in type(model).__mro__)


def class_path(model: Any) -> str:
    """``module.QualifiedName`` of an object's class."""
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def require(module: str, distribution: str | None = None) -> Any:
    """Import an optional model library, or say how to install it.

    Typed as ``Any`` on purpose: these libraries are optional, so type checks must not
    depend on which of them a machine has.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name = distribution or module.split(".", 1)[0]
        extra = "" if name == "torch" else " (all model libraries: pip install 'driftline[models]')"
        raise InvalidArgumentError(f"This needs {name}: pip install {name}{extra}") from exc
