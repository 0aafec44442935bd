"""Monitors and labels of a remote workspace: the team server's ``/api/v1/monitoring``
routes.

:class:`HttpMonitorService` has the same methods as
:class:`~driftline.monitoring.monitors.MonitorService` (what the module-level API and
``driftline monitor`` call); :class:`HttpTrafficService` ingests labels and computes
performance and checks (what :class:`~driftline.monitoring.service.MonitoringService`
forwards for a remote workspace). Runs happen on the server, next to the prediction log,
with the caller's grants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from driftline.core.clock import to_ms
from driftline.monitoring.monitor_models import Alert, Evaluation, Figure, Monitor, MonitorRun

if TYPE_CHECKING:
    from driftline.api.client import ApiClient
    from driftline.monitoring.labels import LabelIngest
    from driftline.monitoring.models import CheckResult, PerformanceReport
    from driftline.monitoring.options import CheckOptions, PerformanceOptions

__all__ = ["HttpMonitorService", "HttpTrafficService"]

#: Label rows per request body: a large table goes in several bodies, each well within
#: the server's body limit.
LABEL_BATCH_ROWS = 200_000

_API = "monitoring"


def _name(name: str) -> str:
    return quote(name, safe="")


def _ms(value: datetime | None) -> int | None:
    return None if value is None else to_ms(value)


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class HttpMonitorService:
    """Monitors and alerts over HTTP."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def create(
        self,
        name: str,
        *,
        deployment: str,
        window: str | int = "1d",
        checks: Sequence[str] = ("drift",),
        alerts: Sequence[str] = (),
        cooldown: str | int = "6h",
        reference: str | None = None,
        thresholds: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> Monitor:
        """See :meth:`MonitorService.create`."""
        from driftline.monitoring.windows import format_duration

        body = {
            "name": name,
            "deployment": deployment,
            "window": window if isinstance(window, str) else format_duration(window),
            "checks": list(checks),
            "alerts": list(alerts),
            "cooldown": cooldown if isinstance(cooldown, str) else format_duration(cooldown),
            "reference": reference,
            "thresholds": dict(thresholds) if thresholds is not None else None,
            "replace": replace,
        }
        return Monitor.from_dict(self.client.post_json(f"{_API}/monitors", body)["monitor"])

    def get(self, name: str) -> Monitor:
        """See :meth:`MonitorService.get`."""
        return Monitor.from_dict(self.client.get_json(f"{_API}/monitors/{_name(name)}")["monitor"])

    def list_monitors(self) -> list[Monitor]:
        """See :meth:`MonitorService.list_monitors`."""
        return [Monitor.from_dict(m) for m in self.client.get_json(f"{_API}/monitors")["monitors"]]

    def delete(self, name: str) -> None:
        """See :meth:`MonitorService.delete`."""
        self.client.delete_json(f"{_API}/monitors/{_name(name)}")

    def run(self, name: str, *, at: datetime | None = None) -> MonitorRun:
        """See :meth:`MonitorService.run`."""
        monitor = self.get(name)
        body = _params(at=_ms(at))
        answer = self.client.post_json(f"{_API}/monitors/{_name(name)}/run", body)
        return MonitorRun.from_dict(answer, monitor)

    def history(
        self, name: str, *, since: datetime | None = None, limit: int | None = None
    ) -> list[Evaluation]:
        """See :meth:`MonitorService.history`."""
        params = _params(since=_ms(since), limit=limit)
        answer = self.client.get_json(f"{_API}/monitors/{_name(name)}/history", params=params)
        return [Evaluation.from_dict(e) for e in answer["evaluations"]]

    def series(
        self,
        name: str,
        *,
        check: str | None = None,
        column: str | None = None,
        metric: str | None = None,
        since: datetime | None = None,
    ) -> list[Figure]:
        """See :meth:`MonitorService.series`."""
        params = _params(check=check, column=column, metric=metric, since=_ms(since))
        answer = self.client.get_json(f"{_API}/monitors/{_name(name)}/series", params=params)
        return [Figure.from_dict(f) for f in answer["figures"]]

    def alerts(
        self,
        *,
        since: datetime | None = None,
        monitor: str | None = None,
        severity: str | None = None,
        limit: int | None = None,
    ) -> list[Alert]:
        """See :meth:`MonitorService.alerts`."""
        params = _params(since=_ms(since), monitor=monitor, severity=severity, limit=limit)
        answer = self.client.get_json(f"{_API}/alerts", params=params)
        return [Alert.from_dict(a) for a in answer["alerts"]]

    def status(self) -> list[tuple[Monitor, Evaluation | None]]:
        """See :meth:`MonitorService.status`."""
        rows = self.client.get_json(f"{_API}/status")["monitors"]
        return [
            (
                Monitor.from_dict(r["monitor"]),
                Evaluation.from_dict(r["latest"]) if r["latest"] else None,
            )
            for r in rows
        ]

    def report(self, name: str, *, since: datetime | None = None, path: str | None = None) -> str:
        """See :meth:`MonitorService.report`."""
        response = self.client.request(
            "GET", f"{_API}/monitors/{_name(name)}/report", params=_params(since=_ms(since))
        )
        html = response.text
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(html)
        return html


def _since(value: Any) -> Any:
    return _ms(value) if isinstance(value, datetime) else _duration(value)


def _duration(value: Any) -> Any:
    from datetime import timedelta

    from driftline.monitoring.windows import format_duration

    if isinstance(value, timedelta):
        return format_duration(int(value.total_seconds()))
    return value


class HttpTrafficService:
    """Labels, performance and checks of a deployment over HTTP."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def log_labels(self, deployment: str, data: Any) -> LabelIngest:
        """Send labels (a DataFrame, Arrow table or Parquet/CSV path) as Arrow IPC
        bodies of at most :data:`LABEL_BATCH_ROWS` rows; the server checks them."""
        import pyarrow as pa

        from driftline.monitoring.labels import _arrow

        table = _arrow(data)
        total: LabelIngest | None = None
        for start in range(0, max(table.num_rows, 1), LABEL_BATCH_ROWS):
            part = table.slice(start, LABEL_BATCH_ROWS)
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, part.schema) as writer:
                writer.write_table(part)
            done = self._send(deployment, sink.getvalue().to_pybytes())
            total = done if total is None else total + done
        assert total is not None  # at least one body is sent
        return total

    def _send(self, deployment: str, body: bytes) -> LabelIngest:
        from driftline.monitoring.labels import LabelIngest

        response = self.client.request(
            "POST",
            f"{_API}/labels/{_name(deployment)}",
            content=body,
            headers={"Content-Type": "application/vnd.apache.arrow.stream"},
            idempotent=True,  # a label replaces an earlier one of the same request
        )
        return LabelIngest.from_dict(response.json())

    def performance(self, deployment: str, options: PerformanceOptions) -> PerformanceReport:
        """See :meth:`MonitoringService.performance`."""
        from driftline.monitoring.models import PerformanceReport

        body = _body(options)
        answer = self.client.post_json(f"{_API}/performance/{_name(deployment)}", body)
        return PerformanceReport.from_dict(answer)

    def check(self, deployment: str, options: CheckOptions) -> CheckResult:
        """See :meth:`MonitoringService.check`."""
        from driftline.errors import InvalidArgumentError
        from driftline.monitoring.models import CheckResult, Reference

        if isinstance(options.reference, Reference):
            raise InvalidArgumentError(
                "A remote workspace checks against a reference stored on the server: "
                "name it (reference='churn')"
            )
        answer = self.client.post_json(f"{_API}/check/{_name(deployment)}", _body(options))
        return CheckResult.from_dict(answer)


def _body(options: PerformanceOptions | CheckOptions) -> dict[str, Any]:
    """The request body of an options object: its fields as JSON (durations as text,
    times as epoch milliseconds, thresholds as dicts of their fields); None left out."""
    import dataclasses

    out: dict[str, Any] = {}
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if value is None:
            continue
        if field.name == "since":
            out["since"] = _since(value)
        elif field.name == "until":
            out["until"] = _ms(value)
        elif field.name == "checks":
            out["checks"] = list(value)
        elif dataclasses.is_dataclass(value):
            out[field.name] = _threshold_dict(value)
        else:
            out[field.name] = _duration(value)
    return out


def _threshold_dict(value: Any) -> dict[str, Any]:
    """A thresholds dataclass as the dict of its fields (nested ones too)."""
    import dataclasses

    return dataclasses.asdict(value)
