"""``driftline db``: schema migrations of the metadata database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from driftline.cli._context import CliState
from driftline.cli._output import JsonOption, console, print_json

if TYPE_CHECKING:
    from driftline.core.metadata import Database

app = typer.Typer(
    help="Manage the metadata database schema.", no_args_is_help=True, rich_markup_mode=None
)


def _database(ctx: typer.Context) -> Database:
    from driftline.core.metadata import Database
    from driftline.settings import Settings

    state: CliState = ctx.find_root().obj
    settings = Settings.load(**state.overrides)
    if settings.is_remote:
        from driftline.errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"{settings.uri} is a driftline server: run `driftline db` on the server's machine "
            "with its --uri (the server checks its schema when it starts)"
        )
    return Database(settings.uri)


@app.command()
def upgrade(ctx: typer.Context, json: bool = JsonOption) -> None:
    """Migrate the metadata database to this version; back it up first."""
    from driftline.core.metadata import upgrade as run_upgrade

    db = _database(ctx)
    try:
        before, after = run_upgrade(db)
    finally:
        db.dispose()
    if json:
        print_json({"database": db.display_url, "before": before, "after": after})
    elif before == after:
        console.print(f"{db.display_url} is up to date (revision {after}).")
    else:
        console.print(f"Upgraded {db.display_url}: revision {before or 'empty'} -> {after}.")


@app.command()
def current(ctx: typer.Context, json: bool = JsonOption) -> None:
    """Show the database's schema revision and the one needed here."""
    from driftline.core.metadata import HEAD_REVISION, current_revision

    db = _database(ctx)
    try:
        revision = current_revision(db)
    finally:
        db.dispose()
    if json:
        print_json({"database": db.display_url, "revision": revision, "head": HEAD_REVISION})
        return
    state = "up to date" if revision == HEAD_REVISION else "run `driftline db upgrade`"
    if revision is None:
        state = "empty; created on first use"
    console.print(f"{db.display_url}: revision {revision or '-'} (needs {HEAD_REVISION}): {state}")
