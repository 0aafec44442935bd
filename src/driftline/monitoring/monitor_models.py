"""Records of monitors, their evaluations (a queryable time series of figures) and alerts.

A :class:`Monitor` names a deployment, a window, the checks to run on each window of its
prediction log, the channels its alerts go to and a cooldown. Each run stores one
:class:`Evaluation` whose figures (per check, per column, per metric) are rows of a time
series; a check in ``alert`` state raises an :class:`Alert` unless the same monitor, check
and severity alerted within the cooldown (then the alert is counted as repeated instead).
Records are frozen, times are aware UTC datetimes, ``to_dict`` gives JSON-ready data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

from driftline.errors import InvalidArgumentError
from driftline.monitoring.windows import format_duration

__all__ = [
    "CHECK_STATUSES",
    "DELIVERY_STATES",
    "EVALUATION_STATUSES",
    "SEVERITIES",
    "Alert",
    "CheckOutcome",
    "Delivery",
    "Evaluation",
    "Figure",
    "Monitor",
    "MonitorRun",
]

#: A check's state on one window: ``alert`` raises an alert, the others do not.
CHECK_STATUSES = ("ok", "alert", "insufficient_data", "error")
#: An evaluation is ``alert`` when any check alerts, else ``error`` when any failed, else
#: ``insufficient_data`` when none could score, else ``healthy``.
EVALUATION_STATUSES = ("healthy", "alert", "insufficient_data", "error")
SEVERITIES = ("warning", "critical")
#: ``pending`` (not attempted yet), ``failed`` (the last attempt failed; retried on the
#: next run), ``delivered``.
DELIVERY_STATES = ("pending", "failed", "delivered")

R = TypeVar("R")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str, what: str = "monitor name") -> str:
    """A monitor or deployment name: letters, digits, ``_ . -`` (1-128 characters)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgumentError(
            f"Invalid {what} {name!r}: use 1-128 letters, digits, '_', '.', '-'"
        )
    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class Monitor:
    """What to check on a deployment's traffic, how often, and where alerts go.

    Attributes:
        name: Unique name, e.g. ``churn-prod``.
        deployment: The deployment whose prediction log is read.
        window_seconds: Each run evaluates the requests of the last window.
        checks: Names of the checks run on each window (see :mod:`.checks`).
        channels: ``log`` and ``webhook:<url>`` entries.
        cooldown_seconds: An alert of the same check and severity within this time is
            counted as a repeat, not raised and delivered again.
        reference: A dataset version or stored reference name; ``None`` uses the training
            data recorded in the served model version's lineage.
        thresholds: Drift thresholds (the fields of :class:`DriftThresholds`), or None.
    """

    id: str
    name: str
    deployment: str
    window_seconds: int
    checks: tuple[str, ...]
    channels: tuple[str, ...]
    cooldown_seconds: int
    reference: str | None
    thresholds: dict[str, Any] | None
    created_at: datetime

    @property
    def window(self) -> str:
        """The window as text (``1d``)."""
        return format_duration(self.window_seconds)

    @property
    def cooldown(self) -> str:
        """The cooldown as text (``6h``)."""
        return format_duration(self.cooldown_seconds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (with ``window`` and ``cooldown`` as text)."""
        out = _plain(self)
        out.update(window=self.window, cooldown=self.cooldown)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Monitor:
        """Rebuild from :meth:`to_dict` output."""
        return _from(cls, d, checks=tuple(d["checks"]), channels=tuple(d["channels"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    """One point of a monitor's time series: a metric of a check (and column) on a window.

    ``column`` is ``None`` for dataset-level figures; ``value`` is ``None`` when the
    metric could not be computed (never NaN).
    """

    monitor: str
    evaluation_id: str
    check: str
    column: str | None
    metric: str
    value: float | None
    window_start: datetime
    window_end: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Figure:
        """Rebuild from :meth:`to_dict` output."""
        return _from(cls, d)

    @property
    def order(self) -> tuple[str, str, str]:
        """How an evaluation's figures are ordered: by check, column, metric."""
        return (self.check, self.column or "", self.metric)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOutcome:
    """What one check found on one window.

    Attributes:
        check: The check's name.
        status: One of :data:`CHECK_STATUSES`.
        severity: ``warning`` or ``critical`` when ``status`` is ``alert``, else None.
        message: One line for people (logs, alerts, the CLI).
        summary: The figures an alert carries (small, JSON-ready).
        details: The check's full result for reports (a drift report's ``to_dict``).
    """

    check: str
    status: str
    severity: str | None = None
    message: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return _plain(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """One run of a monitor on one window: each check's outcome and their figures."""

    id: str
    monitor: str
    window_start: datetime
    window_end: datetime
    status: str
    rows: int  # requests answered successfully in the window
    checks: tuple[CheckOutcome, ...]
    created_at: datetime
    figures: tuple[Figure, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        out = _plain(self)
        out["checks"] = [c.to_dict() for c in self.checks]
        out["figures"] = [f.to_dict() for f in self.figures]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Evaluation:
        """Rebuild from :meth:`to_dict` output."""
        return _from(
            cls,
            d,
            checks=tuple(CheckOutcome(**c) for c in d["checks"]),
            figures=tuple(Figure.from_dict(f) for f in d["figures"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """The delivery of one alert to one channel."""

    channel: str
    state: str
    attempts: int = 0
    last_error: str | None = None
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Delivery:
        """Rebuild from :meth:`to_dict` output."""
        return _from(cls, d)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """A check of a monitor in alert state, delivered to the monitor's channels.

    Attributes:
        id: Sortable id (UUIDv7 text); also the webhook's ``Idempotency-Key``.
        monitor: The monitor's name.
        deployment: Its deployment.
        check: The check that alerted.
        severity: ``warning`` or ``critical``.
        message: One line for people.
        figures: The check's summary figures at the time it alerted.
        evaluation_id: The evaluation that raised it.
        created_at: When it was raised.
        last_seen_at: The latest evaluation that found the same condition.
        repeats: Evaluations within the cooldown that found it again (not re-delivered).
        deliveries: One per channel.
    """

    id: str
    monitor: str
    deployment: str
    check: str
    severity: str
    message: str
    figures: dict[str, Any]
    evaluation_id: str
    created_at: datetime
    last_seen_at: datetime
    repeats: int = 0
    deliveries: tuple[Delivery, ...] = ()

    @property
    def delivered(self) -> bool:
        """Whether every channel has it."""
        return all(d.state == "delivered" for d in self.deliveries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        out = _plain(self)
        out["deliveries"] = [d.to_dict() for d in self.deliveries]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        """Rebuild from :meth:`to_dict` output."""
        return _from(cls, d, deliveries=tuple(Delivery.from_dict(x) for x in d["deliveries"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorRun:
    """What :meth:`MonitorService.run` did: the evaluation, alerts raised or repeated, and
    the deliveries attempted (including retries of earlier alerts)."""

    monitor: Monitor
    evaluation: Evaluation
    raised: tuple[Alert, ...]
    repeated: tuple[Alert, ...]
    deliveries: tuple[tuple[str, Delivery], ...]

    @property
    def healthy(self) -> bool:
        """No check alerted or failed (a window too small to score is healthy); what
        ``driftline monitor run`` exits 0 on."""
        return self.evaluation.status in ("healthy", "insufficient_data")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "monitor": self.monitor.name,
            "healthy": self.healthy,
            "evaluation": self.evaluation.to_dict(),
            "raised": [a.to_dict() for a in self.raised],
            "repeated": [a.to_dict() for a in self.repeated],
            "deliveries": [{"alert_id": i, **d.to_dict()} for i, d in self.deliveries],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], monitor: Monitor) -> MonitorRun:
        """Rebuild from :meth:`to_dict` output (which names the monitor only)."""
        return cls(
            monitor=monitor,
            evaluation=Evaluation.from_dict(d["evaluation"]),
            raised=tuple(Alert.from_dict(a) for a in d["raised"]),
            repeated=tuple(Alert.from_dict(a) for a in d["repeated"]),
            deliveries=tuple(
                (x["alert_id"], Delivery.from_dict({k: v for k, v in x.items() if k != "alert_id"}))
                for x in d["deliveries"]
            ),
        )


def finite(value: Any) -> float | None:
    """A float, or None for missing, NaN and infinite values (figures are never NaN)."""
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _enc(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, tuple | list):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        return {k: _enc(x) for k, x in v.items()}
    return v


def _plain(record: Any) -> dict[str, Any]:
    return {f.name: _enc(getattr(record, f.name)) for f in fields(record)}


_TIMES = {"created_at", "window_start", "window_end", "updated_at", "last_seen_at"}


def _from(kind: type[R], d: dict[str, Any], **override: Any) -> R:
    """A record from its plain data: ISO times parsed, unknown keys (``window``) ignored."""
    names = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    values = {
        k: (datetime.fromisoformat(v) if k in _TIMES and isinstance(v, str) else v)
        for k, v in d.items()
        if k in names
    }
    return kind(**{**values, **override})
