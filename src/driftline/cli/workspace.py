"""``driftline init``: create a workspace in the current folder."""

from __future__ import annotations

from pathlib import Path

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import console

_GITIGNORE = """\
# The database and artifact store are data, not source; config.toml is worth committing.
driftline.db*
artifacts/
"""


def register(app: typer.Typer) -> None:
    """Add ``init`` to the root command."""

    @app.command()
    def init(
        ctx: typer.Context,
        uri: str | None = typer.Option(None, "--uri", help="Metadata database URL to record."),
        artifact_root: str | None = typer.Option(
            None, "--artifact-root", help="Artifact store URL or folder to record."
        ),
    ) -> None:
        """Create a workspace, .driftline/, here; safe to run twice.

        It holds the config, the metadata database and the artifact store.
        """
        home = Path.cwd() / ".driftline"
        created = not home.exists()
        home.mkdir(exist_ok=True)
        gitignore = home / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text(_GITIGNORE, encoding="utf-8")
        config = home / "config.toml"
        lines = [
            f'{key} = "{value}"'
            for key, value in (("uri", uri), ("artifact_root", artifact_root))
            if value
        ]
        if lines or not config.exists():
            body = (
                "\n".join(lines)
                or '# uri = "postgresql+psycopg://user@host/db"\n'
                '# artifact_root = "s3://bucket/prefix"'
            )
            config.write_text("# driftline workspace settings\n" + body + "\n", encoding="utf-8")
        ws = open_workspace(ctx, home=home)
        verb = "Created" if created else "Using"
        console.print(f"{verb} workspace [bold]{home}[/]")
        metadata = ws.settings.uri if ws.database is None else ws.database.display_url
        console.print(f"  metadata:  {metadata}")
        console.print(f"  artifacts: {ws.content.url}")
        console.print(
            "Next: [bold]driftline quickstart[/] or `import driftline as dl` in your code."
        )
