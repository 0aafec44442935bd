"""``driftline artifacts``: list and download the files logged to runs."""

from __future__ import annotations

from pathlib import Path

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import JsonOption, console, fmt_size, print_json, table

app = typer.Typer(help="Files logged to runs.", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
def list_(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="The run."),
    path: str = typer.Argument("", help="Only files under this folder."),
    json: bool = JsonOption,
) -> None:
    """List the files logged to a run."""
    entries = open_workspace(ctx).tracking.list_artifacts(run_id, path)
    if json:
        print_json(entries)
        return
    if not entries:
        console.print(f"Run {run_id} has no artifacts" + (f" under {path!r}" if path else ""))
        return
    table(
        f"Artifacts of run {run_id}",
        ["path", "size", "digest"],
        [(e.path, fmt_size(e.size), e.digest) for e in entries],
    )


@app.command()
def get(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="The run."),
    path: str = typer.Argument(
        "", help="A logged file or folder of logged files; default: every file of the run."
    ),
    output: Path = typer.Option(Path("."), "--output", "-o", help="Folder to write into."),
) -> None:
    """Download logged files (each verified against its content hash).

    A folder's files are written below OUTPUT without the folder's name
    (get RUN reports -o out writes out/summary.html); without PATH every file of the
    run is written with its full path (out/reports/summary.html).
    """
    written = open_workspace(ctx).tracking.download_artifacts(run_id, path, output)
    for target in written:
        console.print(f"wrote {target}")
