"""``driftline experiments``: list, create, delete and restore experiments."""

from __future__ import annotations

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import JsonOption, console, fmt_time, print_json, table

app = typer.Typer(help="Group runs into experiments.", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
def list_(
    ctx: typer.Context,
    all_: bool = typer.Option(False, "--all", help="Include deleted experiments."),
    max_results: int = typer.Option(100, "--max", help="How many to show."),
    page_token: str | None = typer.Option(None, "--page-token", help="Continue a listing."),
    json: bool = JsonOption,
) -> None:
    """List experiments, newest first."""
    page = open_workspace(ctx).tracking.list_experiments(
        include_deleted=all_, max_results=max_results, page_token=page_token
    )
    if json:
        print_json({"experiments": list(page.items), "next_page_token": page.next_token})
        return
    if not page.items:
        console.print("No experiments yet. Start one: [bold]driftline quickstart[/]")
        return
    table(
        "Experiments",
        ["name", "id", "created", "state"],
        [(e.name, e.id, fmt_time(e.created_at), e.lifecycle_stage.value) for e in page.items],
    )
    if page.next_token:
        console.print(f"More: --page-token {page.next_token}")


@app.command()
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A unique experiment name."),
    description: str | None = typer.Option(
        None, "--description", "-d", help="What the experiment is for."
    ),
    json: bool = JsonOption,
) -> None:
    """Create an experiment."""
    experiment = open_workspace(ctx).tracking.create_experiment(name, description=description)
    if json:
        print_json(experiment)
    else:
        console.print(f"Created experiment [bold]{experiment.name}[/] ({experiment.id})")


@app.command()
def delete(ctx: typer.Context, name: str = typer.Argument(..., help="Name or id.")) -> None:
    """Delete an experiment and hide its runs.

    `driftline experiments restore` brings both back.
    """
    experiment = open_workspace(ctx).tracking.delete_experiment(name)
    console.print(
        f"Deleted experiment {experiment.name}; undo: driftline experiments restore "
        f"{experiment.name}"
    )


@app.command()
def restore(ctx: typer.Context, name: str = typer.Argument(..., help="Name or id.")) -> None:
    """Restore a deleted experiment."""
    experiment = open_workspace(ctx).tracking.restore_experiment(name)
    console.print(f"Restored experiment {experiment.name}")
