"""``driftline tokens``: API tokens for a driftline server started with ``--auth``.

``tokens create`` prints the token alone on stdout (messages go to stderr), so
``export DRIFTLINE_TOKEN=$(driftline tokens create --user alice)`` works. The token is
shown once: only a salted hash of it is stored.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import typer

from driftline.cli._output import JsonOption, console, fmt_time, print_json, table
from driftline.cli.users import open_user_admin

app = typer.Typer(
    help="API tokens: create (shown once), list, revoke.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def create(
    ctx: typer.Context,
    user: str | None = typer.Option(
        None, "--user", "-u", help="Whose token (default: yours, when talking to a server)."
    ),
    name: str = typer.Option("token", "--name", "-n", help="A label: laptop, ci, ..."),
    expires_days: float | None = typer.Option(
        None, "--expires-days", help="Stop working after this many days (default: never)."
    ),
    json: bool = JsonOption,
) -> None:
    """Create a token and print it once.

    It cannot be shown again.
    """
    from driftline.core.clock import utcnow
    from driftline.errors import InvalidArgumentError

    expires_at = None
    if expires_days is not None:
        if not 0 < expires_days <= 36_500:
            raise InvalidArgumentError("--expires-days must be between 0 and 36500")
        expires_at = utcnow() + timedelta(days=expires_days)
    issued = open_user_admin(ctx).create_token(user, name=name, expires_at=expires_at)
    if json:
        print_json({"token": issued.token, "secret": issued.secret})
        return
    token = issued.token
    expiry = f"expires {fmt_time(token.expires_at)}" if token.expires_at else "does not expire"
    typer.echo(
        f"Token {token.token_id} ({token.name}) for {token.user}, {expiry}. "
        "Copy it now; it is not shown again:",
        err=True,
    )
    sys.stdout.write(issued.secret + "\n")


@app.command("list")
def list_(
    ctx: typer.Context,
    user: str | None = typer.Option(None, "--user", "-u", help="Only this user's tokens."),
    json: bool = JsonOption,
) -> None:
    """Tokens (ids, owners, expiry; never secrets)."""
    from driftline.core.clock import utcnow

    tokens = open_user_admin(ctx).list_tokens(user)
    if json:
        print_json(tokens)
        return
    if not tokens:
        console.print("No tokens: driftline tokens create --user NAME")
        return
    now = utcnow()
    table(
        "Tokens",
        ["token id", "user", "name", "state", "created", "expires"],
        [
            (
                t.token_id,
                t.user,
                t.name,
                "active" if t.active_at(now) else ("revoked" if t.revoked_at else "expired"),
                fmt_time(t.created_at),
                fmt_time(t.expires_at) or "never",
            )
            for t in tokens
        ],
    )


@app.command()
def revoke(
    ctx: typer.Context,
    token_id: str = typer.Argument(..., help="The token's id (see driftline tokens list)."),
    json: bool = JsonOption,
) -> None:
    """Revoke a token.

    It stops working within seconds.
    """
    from driftline.auth.hashing import looks_like_token, parse_token

    if looks_like_token(token_id):  # the whole token string works too
        token_id = parse_token(token_id)[0]
    token = open_user_admin(ctx).revoke_token(token_id)
    if json:
        print_json(token)
        return
    console.print(f"Revoked token {token.token_id} ({token.name}) of {token.user}", markup=False)
