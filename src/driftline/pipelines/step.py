"""``@dl.step``: a plain Python function that a pipeline runs, caches and records.

Outside a pipeline definition a step is just its function (call it in a test, in a
notebook). Inside a ``@dl.pipeline`` function, calling a step adds it to the DAG and
returns a placeholder for its output that later steps take as an input.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, ParamSpec, TypeVar, overload

from driftline.errors import InvalidArgumentError

__all__ = ["Step", "StepOptions", "parse_duration", "step"]

P = ParamSpec("P")
R = TypeVar("R")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: str | float | None, what: str = "timeout") -> float | None:
    """Seconds from ``30``, ``"30s"``, ``"10m"``, ``"1.5h"``, ``"500ms"``; ``None`` stays."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise InvalidArgumentError(
            f"Invalid {what} {value!r}: use a positive number of seconds or a text such as "
            "'500ms', '30s', '10m', '2h'"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepOptions:
    """How a step runs: retries with exponential backoff, a timeout, caching, pickling.

    ``resources`` is what a step needs on Ray: ``num_cpus`` (default 1), ``num_gpus``,
    ``memory`` (bytes), or a custom resource of the cluster by name.
    """

    retries: int = 0
    retry_delay: float = 1.0
    timeout: float | None = None
    cache: bool = True
    pickle: bool = False
    resources: Mapping[str, float] = field(default_factory=dict)
    run_name: str | None = None  # a format string over the step's parameters


class Step(Generic[P, R]):
    """A step: its function, its options, and the name it has in DAGs.

    Example:
        >>> @dl.step(retries=2, timeout="10m")
        ... def train(df, C: float = 1.0):
        ...     ...
        >>> train.fn(df, C=0.5)  # the plain function  # doctest: +SKIP
    """

    def __init__(self, fn: Callable[P, R], options: StepOptions, name: str | None = None) -> None:
        if not callable(fn):
            raise InvalidArgumentError(f"@dl.step decorates functions, not {type(fn).__name__}")
        self.fn = fn
        self.options = options
        self.name = name or fn.__name__
        if options.run_name is not None:
            _check_run_name(options.run_name, fn, self.name)
        functools.update_wrapper(self, fn)

    def run_name(self, params: Mapping[str, object]) -> str | None:
        """The name of this call's run: ``run_name`` filled in with the call's parameters
        (``None`` without one: the run is named after the node)."""
        template = self.options.run_name
        if template is None:
            return None
        try:
            return template.format_map(params)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise InvalidArgumentError(
                f"Step {self.name!r} cannot name its run with run_name={template!r}: {exc!r}. "
                "Name only parameters the call passes as values, not step outputs"
            ) from None

    @property
    def ref(self) -> str:
        """``module:qualname``: how worker processes import the function."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        from driftline.pipelines.graph import current_builder

        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<step {self.name} ({self.ref})>"


def _check_resources(resources: Mapping[str, float] | None) -> dict[str, float]:
    checked: dict[str, float] = {}
    for key, value in (resources or {}).items():
        if (
            not isinstance(key, str)
            or not key
            or isinstance(value, bool)
            or not isinstance(value, int | float)
            or not value >= 0
        ):
            raise InvalidArgumentError(
                f"Invalid resource {key!r}: {value!r}; resources map names to amounts >= 0, "
                "e.g. {'num_cpus': 2, 'num_gpus': 1, 'memory': 2 * 1024**3}"
            )
        checked[key] = value
    return checked


def _check_run_name(template: str, fn: Callable[..., object], step: str) -> None:
    """A run name must be a non-empty format string naming only the step's parameters."""
    import inspect
    import string

    if not isinstance(template, str) or not template.strip():
        raise InvalidArgumentError(
            f"run_name of step {step!r} must be a non-empty text such as '{{name}}', "
            f"not {template!r}"
        )
    try:
        fields = [
            f for _text, f, _spec, _conv in string.Formatter().parse(template) if f is not None
        ]
    except ValueError as exc:
        raise InvalidArgumentError(
            f"run_name {template!r} of step {step!r} is not a valid format string: {exc}"
        ) from None
    known = inspect.signature(fn).parameters
    for name in fields:
        root = re.split(r"[.\[]", name, maxsplit=1)[0]
        if root not in known:
            raise InvalidArgumentError(
                f"run_name {template!r} of step {step!r} names {root or '{}'!r}, which is not "
                f"one of its parameters: {', '.join(known) or 'none'}"
            )


@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: str | float | None = None,
    cache: bool = True,
    pickle: bool = False,
    resources: Mapping[str, float] | None = None,
    name: str | None = None,
    run_name: str | None = None,
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: str | float | None = None,
    cache: bool = True,
    pickle: bool = False,
    resources: Mapping[str, float] | None = None,
    name: str | None = None,
    run_name: str | None = None,
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Make a function a pipeline step.

    Args:
        retries: Run again this many times after a failure (or a timeout).
        retry_delay: Seconds before the first retry; doubled before each next one.
        timeout: Stop the step after this long (``"10m"``, ``30``). The ``processes``
            executor kills it; in process it is reported and left to finish in a thread.
        cache: Reuse outputs from an earlier run with the same cache key.
        pickle: Allow outputs no safe serializer takes to be pickled.
        resources: What the step needs (``{"num_cpus": 1}``), for the Ray executor.
        name: The step's name in DAGs and records (default: the function's name).
        run_name: The name of each call's run, a format string over the step's
            parameters (``"{name}"``, ``"C={C}"``); default: the step's name in the DAG.
            The step is still recorded under its name in the DAG.

    Example:
        >>> @dl.step
        ... def load(path: str) -> pd.DataFrame:
        ...     return pd.read_parquet(path)
        >>> @dl.step(retries=2, timeout="10m", cache=True, pickle=False)
        ... def train(df: pd.DataFrame, C: float = 1.0) -> dict[str, float]:
        ...     ...
    """
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise InvalidArgumentError(f"retries must be a whole number >= 0, not {retries!r}")
    options = StepOptions(
        retries=retries,
        retry_delay=float(parse_duration(retry_delay, "retry_delay") or 0.0)
        if retry_delay
        else 0.0,
        timeout=parse_duration(timeout),
        cache=bool(cache),
        pickle=bool(pickle),
        resources=_check_resources(resources),
        run_name=run_name,
    )

    def wrap(function: Callable[P, R]) -> Step[P, R]:
        return Step(function, options, name)

    return wrap(fn) if fn is not None else wrap
