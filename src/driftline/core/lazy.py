"""Package attributes imported on first use, so listing or declaring a stage stays cheap.

A stage package's ``__init__`` re-exports its public names. Importing them eagerly would
make every import of the package (the CLI importing a stage's descriptor to list its
commands, say) pay for the stage's whole implementation. Instead the package imports
its names under ``TYPE_CHECKING`` (type checkers see them as usual) and installs::

    __getattr__ = lazy_exports(__name__, {"TrackingService": "driftline.tracking.service"})

A public name that is also a submodule's name (the function ``driftline.models.autolog``
in the module ``driftline/models/autolog.py``) would be replaced by the module the first
time the submodule is imported (the import system binds a submodule on its package).
The package's class is therefore switched to one that keeps the names in its
``__all__`` when the import system binds a submodule of the same name.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` and returns its ``name``.

    Args:
        package: The module installing it (``__name__``).
        exports: Public name -> the module defining it.
    """

    sys.modules[package].__class__ = _Package

    def __getattr__(name: str) -> Any:
        source = exports.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    return __getattr__


class _Package(types.ModuleType):
    """A package whose public names win over its submodules of the same name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            isinstance(value, types.ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
            and name in getattr(self, "__all__", ())
        ):
            return  # the import system binding a submodule: keep the public name
        super().__setattr__(name, value)
