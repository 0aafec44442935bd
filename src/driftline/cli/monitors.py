"""``driftline monitor``: create, run, inspect and report monitors of deployments.

``monitor run`` exits 0 when the window is healthy (or too small to score) and 1 when a
check alerts or fails, so cron and CI can act on it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import JsonOption, console, fmt_time, print_json, table
from driftline.cli.monitoring import reads_windows

if TYPE_CHECKING:
    from driftline.monitoring._http import HttpMonitorService
    from driftline.monitoring.monitors import MonitorService

app = typer.Typer(
    help="Monitors of deployments' traffic: checks per window, alerts, reports.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

SinceOption = typer.Option(
    None, "--since", help="How far back: a duration (30d, 12h) or an ISO time (2026-03-01)."
)


def _monitors(ctx: typer.Context) -> MonitorService | HttpMonitorService:
    from driftline.monitoring import service_for

    return service_for(open_workspace(ctx)).monitors


def _since(text: str | None) -> datetime | None:
    """``30d`` (back from now) or an ISO date/time (UTC when naive)."""
    from datetime import UTC

    from driftline.core.clock import utcnow
    from driftline.errors import InvalidArgumentError
    from driftline.monitoring.windows import parse_duration

    if text is None:
        return None
    if text.strip()[-1:].isalpha():
        return utcnow() - parse_duration(text, "--since")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidArgumentError(
            f"Invalid --since {text!r}: use a duration such as 30d or 12h, or an ISO time "
            "such as 2026-03-01T00:00"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _thresholds(pairs: list[str], path: Path | None) -> dict[str, Any] | None:
    """A monitor's thresholds from ``--thresholds file.yaml`` and ``--threshold key=value``
    options (dotted keys: ``performance.metric=roc_auc``, ``columns.age.psi=0.1``; values
    read as YAML scalars), the options overriding the file, checked as the monitor will
    read them (:func:`driftline.monitoring.checks.monitor_thresholds`)."""
    import yaml

    from driftline.errors import InvalidArgumentError
    from driftline.monitoring.checks import monitor_thresholds

    merged: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InvalidArgumentError(f"Cannot read --thresholds {str(path)!r}: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise InvalidArgumentError(
                f"--thresholds {str(path)!r} must hold a mapping, e.g. psi: 0.25 and "
                "performance: {metric: roc_auc, below: 0.8}"
            )
        merged = loaded or {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts) or not text.strip():
            raise InvalidArgumentError(
                f"Invalid --threshold {pair!r}: use key=value, e.g. psi=0.25 or "
                "performance.metric=roc_auc"
            )
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        section = merged
        for i, part in enumerate(parts[:-1]):
            inner = section.setdefault(part, {})
            if not isinstance(inner, dict):
                raise InvalidArgumentError(
                    f"Invalid --threshold {pair!r}: {'.'.join(parts[: i + 1])} is a value, "
                    "not a section"
                )
            section = inner
        section[parts[-1]] = value
    if not merged:
        return None
    monitor_thresholds(merged)  # errors name the field, before anything is sent
    return merged


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The monitor's name, e.g. churn-prod."),
    deployment: str = typer.Option(..., "--deployment", "-d", help="The deployment to watch."),
    window: str = typer.Option("1d", "--window", "-w", help="Each run checks this window."),
    checks: str = typer.Option("drift", "--checks", help="Comma-separated check names."),
    alert: list[str] = typer.Option(
        [], "--alert", "-a", help="An alert channel: log, or webhook:<http(s) URL>; repeatable."
    ),
    cooldown: str = typer.Option("6h", "--cooldown", help="Alert at most once per this time."),
    reference: str | None = typer.Option(
        None, "--reference", help="Dataset version to compare with (default: training data)."
    ),
    threshold: list[str] = typer.Option(
        [],
        "--threshold",
        "-t",
        help="A threshold as key=value, dotted for sections: psi=0.25, "
        "performance.metric=roc_auc, performance.below=0.8, quality.missing_jump=0.2, "
        "columns.age.psi=0.1; repeatable.",
    ),
    thresholds_file: Path | None = typer.Option(
        None,
        "--thresholds",
        exists=True,
        dir_okay=False,
        help="A YAML file of thresholds (the same keys, as nested mappings).",
    ),
    replace: bool = typer.Option(False, "--replace", help="Redefine an existing monitor."),
    json: bool = JsonOption,
) -> None:
    """Create a monitor of a deployment's traffic."""
    limits = _thresholds(threshold, thresholds_file)
    monitor = _monitors(ctx).create(
        name,
        deployment=deployment,
        window=window,
        checks=[c.strip() for c in checks.split(",") if c.strip()],
        alerts=alert,
        cooldown=cooldown,
        reference=reference,
        thresholds=limits,
        replace=replace,
    )
    if json:
        print_json(monitor.to_dict())
        return
    console.print(
        f"Monitor {monitor.name} watches {monitor.deployment} every {monitor.window} "
        f"({', '.join(monitor.checks)}); alerts to {', '.join(monitor.channels) or 'no channel'}."
        f"\nRun it now with: driftline monitor run {monitor.name}  (or from cron)"
    )


@app.command("run")
def run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The monitor to run."),
    at: str | None = typer.Option(
        None, "--at", help="End of the window: an ISO time or a duration ago (default now)."
    ),
    json: bool = JsonOption,
) -> None:
    """Evaluate the latest window once; exit 0 when healthy, 1 on an alert or a failed check."""
    reads_windows()
    result = _monitors(ctx).run(name, at=_since(at) if at else None)
    e = result.evaluation
    if json:
        print_json(result.to_dict())
    else:
        table(
            f"Monitor {name}: {e.status.replace('_', ' ')} ({e.rows:,} requests, "
            f"{fmt_time(e.window_start)} to {fmt_time(e.window_end)})",
            ["check", "status", "severity", "message"],
            [(c.check, c.status, c.severity or "", c.message) for c in e.checks],
        )
        for a in result.raised:
            console.print(f"ALERT {a.id} [{a.severity}] {a.check}: {a.message}")
        for a in result.repeated:
            console.print(f"still alerting (within cooldown, not re-sent): {a.check} {a.id}")
        for alert_id, d in result.deliveries:
            note = f": {d.last_error}" if d.last_error else ""
            console.print(f"delivery of {alert_id} to {d.channel}: {d.state}{note}")
    if not result.healthy:
        raise typer.Exit(1)


@app.command("status")
def status(ctx: typer.Context, json: bool = JsonOption) -> None:
    """Every monitor with its latest evaluation."""
    rows = _monitors(ctx).status()
    if json:
        print_json(
            [{"monitor": m.to_dict(), "latest": e.to_dict() if e else None} for m, e in rows]
        )
        return
    table(
        "Monitors",
        ["monitor", "deployment", "status", "window end", "requests", "checks"],
        [
            (
                m.name,
                m.deployment,
                e.status if e else "never run",
                fmt_time(e.window_end) if e else "",
                f"{e.rows:,}" if e else "",
                "; ".join(f"{c.check}: {c.status}" for c in e.checks) if e else "",
            )
            for m, e in rows
        ],
    )
    if not rows:
        console.print("No monitor yet: driftline monitor create NAME --deployment D")


@app.command("list")
def list_(ctx: typer.Context, json: bool = JsonOption) -> None:
    """Every monitor's definition."""
    monitors = _monitors(ctx).list_monitors()
    if json:
        print_json([m.to_dict() for m in monitors])
        return
    table(
        "Monitors",
        ["monitor", "deployment", "window", "checks", "alerts", "cooldown", "reference"],
        [
            (
                m.name,
                m.deployment,
                m.window,
                ",".join(m.checks),
                ", ".join(m.channels),
                m.cooldown,
                m.reference or "training data",
            )
            for m in monitors
        ],
    )


@app.command("history")
def history(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The monitor."),
    since: str | None = SinceOption,
    limit: int | None = typer.Option(None, "--limit", "-n", help="Only the newest N."),
    json: bool = JsonOption,
) -> None:
    """A monitor's evaluations, oldest first, with the dataset-level figures."""
    evaluations = _monitors(ctx).history(name, since=_since(since), limit=limit)
    if json:
        print_json([e.to_dict() for e in evaluations])
        return
    table(
        f"History of {name}",
        ["window end", "status", "requests", "figures", "checks"],
        [
            (
                fmt_time(e.window_end),
                e.status,
                f"{e.rows:,}",
                ", ".join(
                    f"{f.check}.{f.metric}={f.value:.3g}"
                    for f in e.figures
                    if f.column is None and f.value is not None
                ),
                "; ".join(f"{c.check}: {c.message}" for c in e.checks),
            )
            for e in evaluations
        ],
    )


@app.command("alerts")
def alerts(
    ctx: typer.Context,
    monitor: str | None = typer.Option(None, "--monitor", "-m", help="Only this monitor."),
    since: str | None = SinceOption,
    json: bool = JsonOption,
) -> None:
    """Alerts raised, oldest first, with their delivery state."""
    found = _monitors(ctx).alerts(since=_since(since), monitor=monitor)
    if json:
        print_json([a.to_dict() for a in found])
        return
    table(
        "Alerts",
        ["raised", "monitor", "check", "severity", "repeats", "message", "deliveries", "id"],
        [
            (
                fmt_time(a.created_at),
                a.monitor,
                a.check,
                a.severity,
                a.repeats,
                a.message,
                ", ".join(f"{d.channel}: {d.state}" for d in a.deliveries),
                a.id,
            )
            for a in found
        ],
    )


@app.command("report")
def report(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The monitor."),
    since: str | None = SinceOption,
    html: Path = typer.Option(..., "--html", help="The report file to write."),
    json: bool = JsonOption,
) -> None:
    """Write a self-contained HTML report of the monitor over time."""
    monitors = _monitors(ctx)
    monitors.report(name, since=_since(since), path=str(html))
    if json:
        print_json({"monitor": name, "html": str(html)})
    else:
        console.print(f"Report of {name} written to {html} (open it in a browser)")


@app.command("delete")
def delete(ctx: typer.Context, name: str = typer.Argument(..., help="The monitor.")) -> None:
    """Remove a monitor (its history and alerts are kept)."""
    _monitors(ctx).delete(name)
    console.print(f"Monitor {name} deleted; its history and alerts are kept.")
