"""``driftline drift`` (compare two tables, exit 1 on drift), ``driftline labels`` and
``driftline monitor ...`` (see :mod:`driftline.cli.monitors`)."""

from __future__ import annotations

from pathlib import Path

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import JsonOption, console, fmt_number, print_json, table


def register(app: typer.Typer) -> None:
    """Add the monitoring commands to the root command."""
    from driftline.cli import monitors
    from driftline.cli.labels import app as labels

    app.command("drift")(drift)
    app.add_typer(labels, name="labels")
    app.add_typer(monitors.app, name="monitor")


def reads_windows() -> None:
    """This command reads whole windows of data: make Arrow's default pool
    :func:`driftline.monitoring.window_memory_pool` (its docstring says why). The process
    is the command's own, so it may choose; the library never does."""
    import pyarrow as pa

    from driftline.monitoring import window_memory_pool

    pa.set_memory_pool(window_memory_pool())


def drift(
    ctx: typer.Context,
    reference: str = typer.Argument(
        ..., help="Reference data: a dataset version (customers@7) or a Parquet/CSV path."
    ),
    current: str = typer.Argument(
        ..., help="Current data: a dataset version or a Parquet/CSV path."
    ),
    columns: str | None = typer.Option(
        None, "--columns", "-c", help="Comma-separated columns (default: all of the reference)."
    ),
    html: Path | None = typer.Option(None, "--html", help="Also write a self-contained report."),
    json: bool = JsonOption,
) -> None:
    """Drift of CURRENT against REFERENCE per column; exit 1 on dataset drift, else 0."""
    from driftline.monitoring import MonitoringService, service_for

    reads_windows()
    names = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    stored = any(not Path(p).exists() for p in (reference, current))
    service = service_for(open_workspace(ctx)) if stored else MonitoringService(None, None)
    rep = service.drift(reference, current, columns=names)
    if html is not None:
        rep.to_html(str(html))
    if json:
        print_json(rep.to_dict())
    else:
        table(
            f"Drift of {rep.current} ({rep.n_cur:,} rows) against {rep.reference}",
            ["column", "method", "score", "threshold", "p-value", "verdict", "status"],
            [
                (
                    c.column,
                    c.method,
                    fmt_number(c.score),
                    fmt_number(c.threshold),
                    fmt_number(c.p_adjusted),
                    c.verdict,
                    c.status + (f" ({', '.join(c.anomalies)})" if c.anomalies else ""),
                )
                for c in rep.columns.values()
            ],
        )
        verdict = "DATASET DRIFT" if rep.drifted else "no dataset drift"
        console.print(
            f"{verdict}: {len(rep.drifted_columns)} drifted columns, share "
            f"{rep.drift_share:.0%} (threshold {rep.threshold_share:.0%})"
            + (f"; report written to {html}" if html else "")
        )
    if rep.drifted:
        raise typer.Exit(1)
