"""Package attributes imported on first use, so listing or declaring a stage stays cheap.

A stage package's ``__init__`` re-exports its public names. Importing them eagerly would
make every import of the package (the CLI importing a stage's descriptor to list its
commands, say) pay for the stage's whole implementation. Instead the package imports
its names under ``TYPE_CHECKING`` (type checkers see them as usual) and installs::

    __getattr__ = lazy_exports(__name__, {"TrackingService": "driftline.tracking.service"})

A name that is also a submodule's name (``driftline.models.autolog``) must stay an eager
import: importing the submodule later would replace the attribute with the module.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` and returns its ``name``.

    Args:
        package: The module installing it (``__name__``).
        exports: Public name -> the module defining it.
    """

    def __getattr__(name: str) -> Any:
        source = exports.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    return __getattr__
