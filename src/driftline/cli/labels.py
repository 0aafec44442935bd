"""``driftline labels ingest``: store the labels (ground truth) of a deployment's requests."""

from __future__ import annotations

from pathlib import Path

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import JsonOption, console, print_json

app = typer.Typer(
    help="Labels (ground truth) of served requests, joined to the prediction log.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("ingest")
def ingest(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help="The deployment whose requests are labelled."),
    path: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="Parquet or CSV with request_id, label and optionally row and time.",
    ),
    json: bool = JsonOption,
) -> None:
    """Store labels by request id; a later label of a request replaces the earlier one."""
    from driftline.monitoring import service_for

    result = service_for(open_workspace(ctx)).log_labels(deployment, path)
    if json:
        print_json(result.to_dict())
        return
    console.print(
        f"{result.received:,} labels for {deployment}: {result.inserted:,} new, "
        f"{result.replaced:,} replaced earlier labels, {result.unknown:,} for unknown requests"
    )
    if result.unknown:
        shown = ", ".join(result.unknown_examples)
        console.print(
            f"Unknown request ids (kept; they join once their predictions are logged), "
            f"e.g. {shown}. Check the deployment name and that serving logs every request "
            "(its log sample rate)."
        )
