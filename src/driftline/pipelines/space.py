"""Search spaces for :func:`driftline.tune`: ``dl.loguniform``, ``dl.uniform``,
``dl.intrange``, ``dl.choice``.

Each is a small record checked when made (so a bad space fails before any trial runs)
and turned into an Optuna distribution only when a study starts, which keeps Optuna out
of ``import driftline``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = [
    "Choice",
    "Dimension",
    "IntRange",
    "Uniform",
    "choice",
    "intrange",
    "loguniform",
    "uniform",
]


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgumentError(f"{what} must be a finite number, not {value!r}")
    return float(value)


def _bounds(low: Any, high: Any, kind: str) -> tuple[float, float]:
    lo, hi = _number(low, f"{kind}: low"), _number(high, f"{kind}: high")
    if lo >= hi:
        raise InvalidArgumentError(f"{kind}({low!r}, {high!r}): low must be below high")
    return lo, hi


@dataclass(frozen=True, slots=True)
class Uniform:
    """A float between ``low`` and ``high``, uniformly or on a log scale."""

    low: float
    high: float
    log: bool = False

    def distribution(self) -> Any:
        """The Optuna distribution."""
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log)


@dataclass(frozen=True, slots=True)
class IntRange:
    """A whole number from ``low`` to ``high`` inclusive, every ``step``."""

    low: int
    high: int
    step: int = 1
    log: bool = False

    def distribution(self) -> Any:
        """The Optuna distribution."""
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, step=self.step, log=self.log)


@dataclass(frozen=True, slots=True)
class Choice:
    """One of a few values (numbers, text, booleans or ``None``)."""

    options: tuple[Any, ...]

    def distribution(self) -> Any:
        """The Optuna distribution."""
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.options)


Dimension = Uniform | IntRange | Choice


def uniform(low: float, high: float) -> Uniform:
    """A float drawn uniformly from ``[low, high]``.

    Example:
        >>> dl.uniform(0.0, 0.5)
        Uniform(low=0.0, high=0.5, log=False)
    """
    lo, hi = _bounds(low, high, "uniform")
    return Uniform(lo, hi)


def loguniform(low: float, high: float) -> Uniform:
    """A float in ``[low, high]`` drawn on a log scale (learning rates, regularization).

    Example:
        >>> dl.loguniform(1e-3, 10)
        Uniform(low=0.001, high=10.0, log=True)
    """
    lo, hi = _bounds(low, high, "loguniform")
    if lo <= 0:
        raise InvalidArgumentError(f"loguniform({low!r}, {high!r}): low must be above 0")
    return Uniform(lo, hi, log=True)


def intrange(low: int, high: int, step: int = 1, *, log: bool = False) -> IntRange:
    """A whole number from ``low`` to ``high`` inclusive, every ``step``.

    Example:
        >>> dl.intrange(2, 10, step=2)
        IntRange(low=2, high=10, step=2, log=False)
    """
    for name, value in (("low", low), ("high", high), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(f"intrange: {name} must be a whole number, not {value!r}")
    if low >= high:
        raise InvalidArgumentError(f"intrange({low!r}, {high!r}): low must be below high")
    if step < 1:
        raise InvalidArgumentError(f"intrange: step must be at least 1, not {step!r}")
    if log and (low < 1 or step != 1):
        raise InvalidArgumentError("intrange(log=True) needs low >= 1 and step 1")
    return IntRange(low, high, step, log)


def choice(options: Sequence[Any]) -> Choice:
    """One of ``options`` (numbers, text, booleans or ``None``).

    Example:
        >>> dl.choice(["l1", "l2"])
        Choice(options=('l1', 'l2'))
    """
    if isinstance(options, str | bytes) or not isinstance(options, Sequence) or not options:
        raise InvalidArgumentError(f"choice needs a non-empty list of options, not {options!r}")
    for option in options:
        if option is not None and not isinstance(option, bool | int | float | str):
            raise InvalidArgumentError(
                f"choice options are numbers, text, booleans or None, not {option!r} "
                f"({type(option).__name__}); choose among names and map them in the objective"
            )
    if len(set(map(repr, options))) != len(options):
        raise InvalidArgumentError(f"choice options repeat: {list(options)!r}")
    return Choice(tuple(options))


def check_space(space: Mapping[str, Any]) -> dict[str, Dimension]:
    """A search space: parameter names -> dimensions, checked."""
    if not isinstance(space, Mapping) or not space:
        raise InvalidArgumentError(
            "space maps parameter names to dimensions, e.g. "
            '{"C": dl.loguniform(1e-3, 10), "penalty": dl.choice(["l1", "l2"])}'
        )
    checked: dict[str, Dimension] = {}
    for name, dimension in space.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"Parameter names are text, not {name!r}")
        if not isinstance(dimension, Uniform | IntRange | Choice):
            raise InvalidArgumentError(
                f"space[{name!r}] is {dimension!r}; use dl.uniform, dl.loguniform, "
                "dl.intrange or dl.choice"
            )
        checked[name] = dimension
    return checked
