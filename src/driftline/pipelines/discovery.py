"""How the CLI finds pipelines: import the module the user names, or a default file.

The rule, in order:

1. ``--module NAME``: a dotted module importable from the working directory
   (``mypkg.pipelines``) or a path to a ``.py`` file;
2. otherwise ``driftline_pipelines.py`` in the working directory.

Importing runs the module, whose ``@dl.pipeline`` decorators register the pipelines.
The working directory is put first on ``sys.path``, as ``python -m`` does. When nothing
is found, the error says exactly what was searched.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from driftline.errors import NotFoundError, UserCodeError

__all__ = ["DEFAULT_FILE", "discover", "import_pipeline_module"]

DEFAULT_FILE = "driftline_pipelines.py"


def _cwd_on_path() -> None:
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.insert(0, here)


def import_pipeline_module(name: str) -> ModuleType:
    """Import a module by dotted name or ``.py`` path; its import errors are UserCodeError."""
    _cwd_on_path()
    path = Path(name)
    try:
        if name.endswith(".py"):
            if not path.is_file():
                raise NotFoundError(f"No pipeline file {name} (searched from {Path.cwd()})")
            module_name = path.stem
            if str(path.resolve().parent) not in sys.path:
                sys.path.insert(0, str(path.resolve().parent))
            return importlib.import_module(module_name)
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise NotFoundError(
                f"No module {name!r} to import pipelines from (searched sys.path, starting "
                f"with {Path.cwd()})"
            ) from None
        raise UserCodeError(f"Importing pipelines from {name!r} failed: {exc}") from exc
    except NotFoundError:
        raise
    except Exception as exc:
        raise UserCodeError(f"Importing pipelines from {name!r} failed: {exc}") from exc


def discover(module: str | None = None) -> str:
    """Import the pipelines' module by the rule above; return what was imported."""
    if module:
        import_pipeline_module(module)
        return module
    default = Path.cwd() / DEFAULT_FILE
    if default.is_file():
        import_pipeline_module(DEFAULT_FILE)
        return DEFAULT_FILE
    raise NotFoundError(
        f"No pipelines found: no --module was given and there is no {DEFAULT_FILE} in "
        f"{Path.cwd()}. Name the module that defines them (`--module mypkg.pipelines` or "
        f"`--module path/to/file.py`), or create {DEFAULT_FILE} here"
    )
