"""What "the step's code" is for the cache key: the step's source and everything of the
project's own it reaches.

ZenML, Hamilton and Prefect hash only the step function's own source, so editing a
helper the step calls leaves a stale cache (zenml#1011, prefect#23062). Here the walk
starts at the step function and follows, transitively:

- the globals and attributes its code names (``co_names``), the contents of its closure
  cells, and the code objects nested in it (lambdas, inner functions, comprehensions);
- functions and classes defined in *project* modules, hashed by their source (a class by
  its whole source plus its methods' walks);
- attributes of project modules the code reaches (``features.clean`` through
  ``import features``);
- module-level constants it reads (numbers, strings, bytes, tuples, frozensets, and
  small lists, dicts and sets of those), hashed by ``repr``;
- library code (stdlib, site-packages, and driftline itself) is identified by its
  distribution's version instead of its source (``lib:pandas`` -> ``2.2.3``).

A module is *project* code when its file lives outside the interpreter's stdlib and
site-packages folders: your package installed in editable mode counts as project code,
which is what you want while you edit it.

The result is a mapping of components (``code:features.py:clean``) to hashes, so a
miss can say which one changed.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import marshal
import sys
import sysconfig
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["code_components", "is_project_module"]

_CONSTANT_TYPES = (int, float, complex, str, bytes, bool, type(None))
_MAX_CONSTANT_REPR = 100_000


def _digest(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@functools.cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    roots.add(str(Path(__file__).resolve().parents[1]))  # driftline itself is a library
    return tuple(sorted(str(Path(r).resolve()) for r in roots))


@functools.cache
def _module_is_project(name: str, file: str | None) -> bool:
    if not file or name in sys.builtin_module_names:
        return False
    resolved = str(Path(file).resolve())
    return not any(resolved.startswith(root + "/") or resolved == root for root in _library_roots())


def is_project_module(module: types.ModuleType | str | None) -> bool:
    """Whether a module is the user's own code (hashed by source) rather than a library."""
    if isinstance(module, str):
        module = sys.modules.get(module)
    if module is None:
        return False
    return _module_is_project(module.__name__, getattr(module, "__file__", None))


@functools.cache
def _library_version(module_name: str) -> str:
    top = module_name.partition(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return f"python {sys.version_info.major}.{sys.version_info.minor}"
    from importlib import metadata

    # The distribution usually has the import name; scanning every installed
    # distribution (packages_distributions) costs ~0.5 s, so it is the last resort.
    try:
        return f"{top} {metadata.version(top)}"
    except (metadata.PackageNotFoundError, ValueError):
        pass
    version = getattr(sys.modules.get(top), "__version__", None)
    if isinstance(version, str):
        return f"{top} {version}"
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return f"{top} unknown"


def _label(obj: Any) -> str:
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    file = getattr(module, "__file__", None)
    where = Path(file).name if file else getattr(obj, "__module__", "?")
    return f"{where}:{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def _source(obj: Any) -> str | bytes:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        # No source (defined in a REPL or by exec): the bytecode and constants stand in.
        return marshal.dumps(code) if code is not None else repr(obj)


def _constant_repr(value: Any, depth: int = 0) -> str | None:
    """``repr`` of a constant-like value, or ``None`` when it is not one."""
    if depth > 3:
        return None
    if isinstance(value, _CONSTANT_TYPES):
        return repr(value)
    if isinstance(value, tuple | list | set | frozenset):
        parts = [_constant_repr(v, depth + 1) for v in value]
        if any(part is None for part in parts):
            return None
        texts = [str(part) for part in parts]
        if isinstance(value, set | frozenset):
            texts.sort()  # set order is not stable across processes
        return f"{type(value).__name__}({', '.join(texts)})"
    if isinstance(value, dict):
        items = [
            (_constant_repr(k, depth + 1), _constant_repr(v, depth + 1)) for k, v in value.items()
        ]
        if any(k is None or v is None for k, v in items):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    return None


class _Walker:
    def __init__(self) -> None:
        self.components: dict[str, str] = {}
        self._seen: set[int] = set()

    def function(self, fn: Callable[..., Any]) -> None:
        fn = inspect.unwrap(fn)
        inner = getattr(fn, "fn", None)  # a driftline Step wraps the function
        if inner is not None and callable(inner) and hasattr(fn, "options"):
            fn = inner
        if id(fn) in self._seen:
            return
        self._seen.add(id(fn))
        module = sys.modules.get(getattr(fn, "__module__", "") or "")
        if not isinstance(fn, types.FunctionType) or not is_project_module(module):
            self.library(fn)
            return
        self.components[f"code:{_label(fn)}"] = _digest(_source(fn))
        self.code(fn.__code__, fn.__globals__)
        for cell in fn.__closure__ or ():
            try:
                self.value(cell.cell_contents, f"closure:{_label(fn)}")
            except ValueError:  # an empty cell
                continue
        for default in (fn.__defaults__ or ()) + tuple((fn.__kwdefaults__ or {}).values()):
            self.value(default, f"default:{_label(fn)}")

    def code(self, code: types.CodeType, namespace: dict[str, Any]) -> None:
        for name in code.co_names:
            if name in namespace:
                self.value(namespace[name], f"const:{namespace.get('__name__', '?')}.{name}")
                value = namespace[name]
                if isinstance(value, types.ModuleType) and is_project_module(value):
                    # `features.clean(...)`: the attribute names are in co_names too.
                    for attr in code.co_names:
                        if attr in vars(value):
                            self.value(vars(value)[attr], f"const:{value.__name__}.{attr}")
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                self.code(const, namespace)

    def value(self, value: Any, label: str) -> None:
        if isinstance(value, types.ModuleType):
            if not is_project_module(value):
                self.components[f"lib:{value.__name__.partition('.')[0]}"] = _library_version(
                    value.__name__
                )
            return
        if isinstance(value, type):
            self.klass(value)
        elif callable(value) and (
            isinstance(value, types.FunctionType | types.BuiltinFunctionType)
            or hasattr(value, "options")
        ):
            self.function(value)
        elif isinstance(value, functools.partial):
            self.function(value.func)
            self.value(value.args, label)
        else:
            text = _constant_repr(value)
            if text is not None and len(text) <= _MAX_CONSTANT_REPR:
                self.components[label] = _digest(text)

    def klass(self, cls: type) -> None:
        if id(cls) in self._seen:
            return
        self._seen.add(id(cls))
        if not is_project_module(sys.modules.get(cls.__module__)):
            self.library(cls)
            return
        self.components[f"code:{_label(cls)}"] = _digest(_source(cls))
        module = sys.modules.get(cls.__module__)
        namespace = vars(module) if module else {}
        for attr in vars(cls).values():
            target = getattr(attr, "__func__", attr)  # classmethod / staticmethod
            if isinstance(target, types.FunctionType):
                self._seen.add(id(target))
                self.code(target.__code__, target.__globals__ or namespace)

    def library(self, obj: Any) -> None:
        module = getattr(obj, "__module__", None) or ""
        if module and module != "builtins":
            self.components[f"lib:{module.partition('.')[0]}"] = _library_version(module)


def code_components(fn: Callable[..., Any]) -> dict[str, str]:
    """The hashed parts of a step's code: ``{"code:features.py:clean": "ab12...", ...}``.

    Example:
        >>> parts = code_components(train)  # doctest: +SKIP
        >>> sorted(parts)[:2]                # doctest: +SKIP
        ['code:features.py:clean', 'code:train.py:train']
    """
    walker = _Walker()
    walker.function(fn)
    return dict(sorted(walker.components.items()))
