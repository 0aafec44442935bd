"""``driftline runs``: list, search, show, compare and delete runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import (
    JsonOption,
    console,
    fmt_duration,
    fmt_number,
    fmt_size,
    fmt_time,
    print_json,
    table,
)

if TYPE_CHECKING:
    from driftline.core.paging import Page
    from driftline.tracking import Run
    from driftline.workspace import Workspace

app = typer.Typer(help="Inspect and compare runs.", no_args_is_help=True, rich_markup_mode=None)

_METRIC_COLUMNS = 4

ExperimentOption = typer.Option(
    None, "--experiment", "-e", help="Only runs of this experiment (repeatable)."
)
MaxOption = typer.Option(50, "--max", help="Runs per page.")
TokenOption = typer.Option(None, "--page-token", help="Continue from a previous page.")


def _status(ws: Workspace, run: Run) -> str:
    from driftline.core.clock import utcnow

    if run.is_stale(utcnow(), timedelta(seconds=ws.settings.stale_after)):
        return "RUNNING (stale: no heartbeat)"
    return run.status.value


def _print_runs(ws: Workspace, page: Page[Run], title: str, json: bool) -> None:
    if json:
        print_json({"runs": list(page.items), "next_page_token": page.next_token})
        return
    if not page.items:
        console.print("No runs match. Log one with `dl.start_run()` or run `driftline quickstart`.")
        return
    names = {e.id: e.name for e in ws.tracking.list_experiments(max_results=5000)}
    # Columns that fit the terminal: the experiment only when runs span several, a short
    # start time, and as many of the most common metrics as the width leaves room for.
    several = len({run.experiment_id for run in page.items}) > 1
    started = console.width >= 100
    fixed = [
        "run id", "name", *(["experiment"] if several else []), "status",
        *(["started"] if started else []), "time",
    ]  # fmt: skip
    widths = {"run id": 32, "name": 16, "experiment": 12, "status": 8, "started": 11, "time": 6}
    room = console.width - sum(widths[c] + 2 for c in fixed)
    counts = Counter(k for run in page.items for k in run.metrics)
    shown = max(1, min(_METRIC_COLUMNS, room // 9))
    metric_keys = [k for k, _ in counts.most_common(shown)]

    table(
        title,
        [*fixed, *metric_keys],
        [
            (
                run.id,
                run.name,
                *([names.get(run.experiment_id, run.experiment_id)] if several else []),
                _status(ws, run),
                *([run.start_time.strftime("%m-%d %H:%M")] if started else []),
                fmt_duration(run.duration),
                *(fmt_number(run.metrics.get(k)) for k in metric_keys),
            )
            for run in page.items
        ],
    )
    hidden = len(counts) - len(metric_keys)
    if hidden > 0:
        console.print(
            f"{hidden} more metric(s): `driftline runs show RUN_ID`, or --json", highlight=False
        )
    if page.next_token:
        console.print(f"More: --page-token {page.next_token}")


@app.command("list")
def list_(
    ctx: typer.Context,
    experiment: list[str] | None = ExperimentOption,
    max_results: int = MaxOption,
    page_token: str | None = TokenOption,
    json: bool = JsonOption,
) -> None:
    """List runs, newest first."""
    ws = open_workspace(ctx)
    page = ws.tracking.search_runs(
        experiments=experiment or None, max_results=max_results, page_token=page_token
    )
    _print_runs(ws, page, "Runs", json)


@app.command()
def search(
    ctx: typer.Context,
    filter: str | None = typer.Option(
        None,
        "--filter",
        "-f",
        help="e.g. \"metrics.auc > 0.8 and (params.penalty = 'l2' or tags.team like 'ri%')\"",
    ),
    order_by: list[str] | None = typer.Option(
        None, "--order-by", "-o", help="e.g. 'metrics.auc desc' (repeatable)."
    ),
    experiment: list[str] | None = ExperimentOption,
    max_results: int = MaxOption,
    page_token: str | None = TokenOption,
    json: bool = JsonOption,
) -> None:
    """Search runs with a filter over metrics, params, tags, attributes."""
    ws = open_workspace(ctx)
    page = ws.tracking.search_runs(
        experiments=experiment or None,
        filter=filter,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
    )
    _print_runs(ws, page, f"Runs where {filter}" if filter else "Runs", json)


@app.command()
def show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="The run."),
    json: bool = JsonOption,
) -> None:
    """Show one run: params, latest metrics, tags, code, artifacts."""
    from driftline.tracking.models import format_value

    ws = open_workspace(ctx)
    run = ws.tracking.get_run(run_id)
    artifacts = ws.tracking.list_artifacts(run_id)
    if json:
        print_json({"run": run, "code": run.code, "artifacts": artifacts})
        return
    experiment = ws.tracking.get_experiment(run.experiment_id)
    console.print(f"[bold]{run.name}[/]  {run.id}")
    console.print(f"  experiment  {experiment.name}")
    console.print(f"  status      {_status(ws, run)}")
    console.print(
        f"  started     {fmt_time(run.start_time)}   duration {fmt_duration(run.duration)}"
    )
    if run.parent_id:
        console.print(f"  parent      {run.parent_id}")
    code = run.code
    if code.commit:
        dirty = " (uncommitted changes: see _driftline/git.diff)" if code.dirty else ""
        console.print(
            f"  git         {code.commit[:12]} on {code.branch or 'detached HEAD'}{dirty}"
        )
    if code.command:
        console.print(f"  command     {code.command}", soft_wrap=True)
    if run.params:
        table("Params", ["key", "value"], sorted(run.params.items()))
    if run.metrics:
        table(
            "Metrics (latest)",
            ["key", "value"],
            [(k, format_value(v)) for k, v in sorted(run.metrics.items())],
        )
    if run.user_tags:
        table("Tags", ["key", "value"], sorted(run.user_tags.items()))
    if artifacts:
        table("Artifacts", ["path", "size"], [(a.path, fmt_size(a.size)) for a in artifacts])


@app.command()
def compare(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., help="Two or more runs."),
    json: bool = JsonOption,
) -> None:
    """Compare runs side by side; differing params are highlighted."""
    from driftline.errors import InvalidArgumentError
    from driftline.tracking.models import format_value

    if len(run_ids) < 2:
        raise InvalidArgumentError("compare needs at least two run ids")
    ws = open_workspace(ctx)
    runs = [ws.tracking.get_run(run_id) for run_id in run_ids]
    params = sorted({k for r in runs for k in r.params})
    metrics = sorted({k for r in runs for k in r.metrics})
    if json:
        print_json(
            {
                "runs": [r.id for r in runs],
                "params": {k: [r.params.get(k) for r in runs] for k in params},
                "metrics": {k: [r.metrics.get(k) for r in runs] for k in metrics},
            }
        )
        return
    rows: list[Sequence[str]] = [("name", *(r.name for r in runs))]
    for key in params:
        values = [r.params.get(key, "") for r in runs]
        mark = "[yellow]" if len(set(values)) > 1 else ""
        rows.append((f"{mark}params.{key}", *(f"{mark}{v}" for v in values)))
    for key in metrics:
        rows.append(
            (
                f"metrics.{key}",
                *(format_value(r.metrics[key]) if key in r.metrics else "" for r in runs),
            )
        )
    table("Run comparison", ["", *(r.id[:12] for r in runs)], rows)


@app.command()
def delete(ctx: typer.Context, run_id: str = typer.Argument(..., help="The run.")) -> None:
    """Delete a run; `driftline runs restore` brings it back.

    A deleted run is hidden from listings and search.
    """
    open_workspace(ctx).tracking.delete_run(run_id)
    console.print(f"Deleted run {run_id}; undo: driftline runs restore {run_id}")


@app.command()
def restore(ctx: typer.Context, run_id: str = typer.Argument(..., help="The run.")) -> None:
    """Restore a deleted run."""
    open_workspace(ctx).tracking.restore_run(run_id)
    console.print(f"Restored run {run_id}")
