"""The options of a deployment's performance and checks, checked once where they are made.

:func:`driftline.monitoring.performance` and :func:`driftline.monitoring.check` take
their options as keywords; each builds one :class:`PerformanceOptions` or
:class:`CheckOptions` (every field validated in ``__post_init__``, with the field named in
the error) and hands that object down: to :class:`~.service.MonitoringService`, and from
there to the scoring or, for a remote workspace, to the REST client, which sends its
fields as they are. Adding an option is one field here, not a keyword in three layers;
the fields both share are :class:`WindowOptions`'s, said once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from driftline.monitoring.models import DriftThresholds, Reference
    from driftline.monitoring.quality import QualityThresholds

__all__ = ["CHECKS", "CheckOptions", "PerformanceOptions", "WindowOptions", "options"]

#: The checks of :func:`driftline.monitoring.check`, in the order they run.
CHECKS = ("drift", "prediction_drift", "quality", "performance")


def _check_range(
    window: str | timedelta, since: str | timedelta | datetime, until: datetime | None
) -> None:
    from driftline.monitoring.windows import parse_duration

    parse_duration(window, "window", positive=True)
    if not isinstance(since, datetime):
        parse_duration(since, "since")
    if until is not None and not isinstance(until, datetime):
        raise InvalidArgumentError(f"Invalid until {until!r}: give a datetime")


def _check_scoring(
    task: str, threshold: float, label_delay: Any, join_window: Any, min_rows: int, what: str
) -> None:
    from driftline.monitoring.scoring import TASKS
    from driftline.monitoring.windows import parse_duration

    if task not in TASKS:
        raise InvalidArgumentError(f"Unknown task {task!r}; use one of {', '.join(TASKS)}")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise InvalidArgumentError(f"Invalid threshold {threshold!r}: give a number")
    if not 0 < threshold < 1:
        raise InvalidArgumentError(f"Invalid threshold {threshold!r}: need 0 < threshold < 1")
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise InvalidArgumentError(f"Invalid {what} {min_rows!r}: give a whole number >= 1")
    parse_duration(label_delay, "label delay")
    parse_duration(join_window, "join window")


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowOptions:
    """What performance and checks share: the range, its windows, and how predictions
    are scored against their labels (the fields of both options objects below)."""

    window: str | timedelta = "1d"
    since: str | timedelta | datetime = "14d"
    until: datetime | None = None
    task: str = "auto"
    threshold: float = 0.5
    label_delay: str | timedelta = "0s"
    join_window: str | timedelta = "14d"

    def _check_windows(self, min_count: int, what: str) -> None:
        """Validate these fields and the options' minimum count ``what``."""
        _check_range(self.window, self.since, self.until)
        _check_scoring(
            self.task, self.threshold, self.label_delay, self.join_window, min_count, what
        )

    def bounds(self, now: datetime) -> list[tuple[datetime, datetime]]:
        """``(start, end)`` of each window of the range, ``now`` standing for "now"."""
        return _bounds(self.window, self.since, self.until, now)

    @property
    def label_delay_td(self) -> timedelta:
        """``label_delay`` as a ``timedelta``."""
        from driftline.monitoring.windows import parse_duration

        return parse_duration(self.label_delay, "label delay")

    @property
    def join_window_td(self) -> timedelta:
        """``join_window`` as a ``timedelta``."""
        from driftline.monitoring.windows import parse_duration

        return parse_duration(self.join_window, "join window")


@dataclass(frozen=True, slots=True, kw_only=True)
class PerformanceOptions(WindowOptions):
    """How :func:`driftline.monitoring.performance` scores a deployment (its keywords).

    Raises:
        InvalidArgumentError: A field that is not valid (the message names it).
    """

    segment: str | None = None
    min_rows: int = 100
    estimate: bool = True

    def __post_init__(self) -> None:
        self._check_windows(self.min_rows, "min_rows")
        if self.segment is not None and (not isinstance(self.segment, str) or not self.segment):
            raise InvalidArgumentError(f"Invalid segment {self.segment!r}: name an input column")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOptions(WindowOptions):
    """What :func:`driftline.monitoring.check` checks, and how (its keywords).

    ``thresholds`` may be given as a dict of :class:`~.models.DriftThresholds`' fields
    and ``checks`` as any sequence: both are stored in their one form.

    Raises:
        InvalidArgumentError: A field that is not valid (the message names it).
    """

    reference: str | Reference | None = None
    checks: tuple[str, ...] = CHECKS
    thresholds: DriftThresholds | None = None
    quality: QualityThresholds | None = None
    min_labels: int = 100

    def __post_init__(self) -> None:
        from driftline.monitoring.models import DriftThresholds, Reference
        from driftline.monitoring.quality import QualityThresholds

        self._check_windows(self.min_labels, "min_labels")
        checks = (self.checks,) if isinstance(self.checks, str) else tuple(self.checks)
        unknown = [c for c in checks if c not in CHECKS]
        if unknown or not checks:
            raise InvalidArgumentError(f"Unknown checks {unknown}; choose from {', '.join(CHECKS)}")
        object.__setattr__(self, "checks", checks)  # frozen: normalized once, here
        if self.thresholds is not None and not isinstance(self.thresholds, DriftThresholds):
            object.__setattr__(self, "thresholds", drift_thresholds(self.thresholds))
        if self.quality is not None and not isinstance(self.quality, QualityThresholds):
            raise InvalidArgumentError("quality must be a QualityThresholds")
        ref = self.reference
        if (
            ref is not None
            and not isinstance(ref, Reference)
            and (not isinstance(ref, str) or not ref)
        ):
            raise InvalidArgumentError(f"Invalid reference {ref!r}: name a stored reference")

    @property
    def performance(self) -> PerformanceOptions:
        """The options of the performance check's scoring."""
        shared = {f.name: getattr(self, f.name) for f in fields(WindowOptions)}
        return PerformanceOptions(**shared, min_rows=self.min_labels)


def drift_thresholds(value: DriftThresholds | Mapping[str, Any] | None) -> DriftThresholds | None:
    """A :class:`~.models.DriftThresholds` from itself or a dict of its fields."""
    from driftline.monitoring.models import ColumnThresholds, DriftThresholds

    if value is None or isinstance(value, DriftThresholds):
        return value
    if not isinstance(value, Mapping):
        raise InvalidArgumentError("thresholds must be a DriftThresholds or a dict of its fields")
    try:
        columns = {
            str(k): v if isinstance(v, ColumnThresholds) else ColumnThresholds(**v)
            for k, v in (value.get("columns") or {}).items()
        }
        return DriftThresholds(**{**value, "columns": columns})
    except TypeError as exc:
        raise InvalidArgumentError(f"Unknown threshold: {exc}") from None


def options(kind: type[Any], given: Any, keywords: Mapping[str, Any]) -> Any:
    """``given`` (an options object) or one made of ``keywords``, not both; an unknown
    keyword is an ``InvalidArgumentError`` naming it."""
    if given is not None:
        if keywords:
            raise InvalidArgumentError(
                f"Give either options or keywords, not both (got {sorted(keywords)})"
            )
        if not isinstance(given, kind):
            raise InvalidArgumentError(f"options must be a {kind.__name__}, got {given!r}")
        return given
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(keywords) - known)
    if unknown:
        raise InvalidArgumentError(
            f"Unknown options {unknown} of {kind.__name__}; use {', '.join(sorted(known))}"
        )
    return kind(**keywords)


def _bounds(
    window: str | timedelta,
    since: str | timedelta | datetime,
    until: datetime | None,
    now: datetime,
) -> list[tuple[datetime, datetime]]:
    from driftline.monitoring.windows import parse_since, window_bounds

    end = now if until is None else parse_since(until, now)
    return window_bounds(window, parse_since(since, now), end)
