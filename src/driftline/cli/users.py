"""``driftline users``: users, roles and grants of a driftline server.

With a database URI (``--uri``, or the workspace's own) the commands work directly on
the database, with no token: that is how the first admin is created, on the server's
machine. With ``DRIFTLINE_URI=http://...`` they go through the server and need an
admin's ``DRIFTLINE_TOKEN``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import JsonOption, console, fmt_time, print_json, table

if TYPE_CHECKING:
    from driftline.auth import UserAdmin

app = typer.Typer(
    help="Users, roles (admin, editor, viewer) and per-experiment/model grants.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

RoleOption = typer.Option(..., "--role", "-r", help="admin, editor or viewer.")
ExperimentOption = typer.Option(None, "--experiment", "-e", help="An experiment's name.")
ModelOption = typer.Option(None, "--model", "-m", help="A registered model's name.")


def install_commands(root_app: typer.Typer) -> None:
    """Add ``driftline users`` and ``driftline tokens`` (the auth stage's ``cli`` hook)."""
    from driftline.cli import tokens

    root_app.add_typer(app, name="users")
    root_app.add_typer(tokens.app, name="tokens")


def open_user_admin(ctx: typer.Context) -> UserAdmin:
    """User administration for this command's workspace (closed when the command ends)."""
    return open_workspace(ctx).auth


def read_password_stdin() -> str:
    """The first line of stdin, without its line break."""
    from driftline.errors import InvalidArgumentError

    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    password = password.removesuffix("\r")
    if not password:
        raise InvalidArgumentError("--password-stdin read an empty password")
    return password


@app.command()
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Login name."),
    role: str = RoleOption,
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read a password from stdin (else: tokens only)."
    ),
    with_token: bool = typer.Option(
        False, "--with-token", help="Also create a token and print it (shown only once)."
    ),
    json: bool = JsonOption,
) -> None:
    """Create a user. The first admin is created on the server's machine with --uri."""
    password = read_password_stdin() if password_stdin else None
    admin = open_user_admin(ctx)
    user = admin.create_user(name, role=role, password=password)
    issued = admin.create_token(name, name="initial") if with_token else None
    if json:
        print_json({"user": user, "token": issued.secret if issued else None})
        return
    typer.echo(f"Created user {user.name} ({user.role.value})", err=True)
    if issued is not None:
        typer.echo(f"Token {issued.token.token_id}; copy it now, it is not shown again:", err=True)
        sys.stdout.write(issued.secret + "\n")


@app.command("list")
def list_(ctx: typer.Context, json: bool = JsonOption) -> None:
    """List users with their roles and grants.

    Admins only.
    """
    admin = open_user_admin(ctx)
    users = admin.list_users()
    grants = admin.list_grants()
    if json:
        print_json([{"user": u, "grants": [g for g in grants if g.user == u.name]} for u in users])
        return
    if not users:
        console.print("No users yet: driftline users create NAME --role admin")
        return
    table(
        "Users",
        ["name", "role", "state", "password", "grants", "created"],
        [
            (
                u.name,
                u.role.value,
                "disabled" if u.disabled else "active",
                "yes" if u.has_password else "no",
                ", ".join(
                    f"{g.kind.value} {g.resource}: {g.permission.value}"
                    for g in grants
                    if g.user == u.name
                ),
                fmt_time(u.created_at),
            )
            for u in users
        ],
    )


def _update(ctx: typer.Context, name: str, json: bool, what: str, **changes: object) -> None:
    user = open_user_admin(ctx).update_user(name, **changes)  # type: ignore[arg-type]
    if json:
        print_json(user)
    else:
        console.print(
            f"{what} {user.name} ({user.role.value}, {'disabled' if user.disabled else 'active'})"
        )


@app.command("set-role")
def set_role(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user's login name."),
    role: str = RoleOption,
    json: bool = JsonOption,
) -> None:
    """Change a user's role."""
    _update(ctx, name, json, "Updated", role=role)


@app.command()
def disable(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user's login name."),
    json: bool = JsonOption,
) -> None:
    """Disable a user.

    Its password and tokens stop working within seconds.
    """
    _update(ctx, name, json, "Disabled", disabled=True)


@app.command()
def enable(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user's login name."),
    json: bool = JsonOption,
) -> None:
    """Enable a disabled user again."""
    _update(ctx, name, json, "Enabled", disabled=False)


@app.command()
def passwd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user's login name."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the new password from stdin."
    ),
    current_password_stdin: bool = typer.Option(
        False,
        "--current-password-stdin",
        help="Read your current password from stdin's first line, the new one from the "
        "second (needed to change your own password through a server).",
    ),
    json: bool = JsonOption,
) -> None:
    """Set a user's password (read from stdin).

    The user's other tokens are revoked; changing your own needs --current-password-stdin.
    """
    from driftline.errors import InvalidArgumentError

    if not password_stdin:
        raise InvalidArgumentError("Pass the password on stdin: --password-stdin")
    current = read_password_stdin() if current_password_stdin else None
    change = open_user_admin(ctx).set_password(
        name, read_password_stdin(), current_password=current
    )
    if json:
        print_json(change)
        return
    console.print(
        f"Set the password of {change.user.name}; revoked {change.revoked_tokens} of its tokens",
        markup=False,
    )


@app.command()
def grant(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user."),
    experiment: str | None = ExperimentOption,
    model: str | None = ModelOption,
    permission: str = typer.Option(..., "--permission", "-p", help="read, edit or manage."),
    json: bool = JsonOption,
) -> None:
    """Grant a user a permission.

    On one experiment or one model.
    """
    result = open_user_admin(ctx).grant(
        name, permission=permission, experiment=experiment, model=model
    )
    if json:
        print_json(result)
        return
    console.print(
        f"Granted {result.user} {result.permission.value} on {result.kind.value} {result.resource}",
        markup=False,
    )


@app.command()
def revoke(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user."),
    experiment: str | None = ExperimentOption,
    model: str | None = ModelOption,
    json: bool = JsonOption,
) -> None:
    """Remove a user's grant.

    On one experiment or one model.
    """
    open_user_admin(ctx).revoke(name, experiment=experiment, model=model)
    kind, resource = ("experiment", experiment) if experiment else ("model", model)
    if json:
        print_json({"user": name, "kind": kind, "resource": resource, "revoked": True})
        return
    console.print(f"Revoked {name}'s grant on {kind} {resource}", markup=False)


@app.command()
def grants(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Only this user's grants."),
    json: bool = JsonOption,
) -> None:
    """Grants of one user, or of everyone."""
    found = open_user_admin(ctx).list_grants(name)
    if json:
        print_json(found)
        return
    if not found:
        console.print("No grants")
        return
    table(
        "Grants",
        ["user", "kind", "resource", "permission", "since"],
        [
            (g.user, g.kind.value, g.resource, g.permission.value, fmt_time(g.created_at))
            for g in found
        ],
    )


@app.command()
def whoami(ctx: typer.Context, json: bool = JsonOption) -> None:
    """Show who your token authenticates as.

    The user DRIFTLINE_TOKEN authenticates as, in remote mode.
    """
    from driftline.errors import InvalidArgumentError

    ask = getattr(open_user_admin(ctx), "whoami", None)
    if ask is None:
        raise InvalidArgumentError(
            "whoami asks a server: set DRIFTLINE_URI=http://HOST:PORT and DRIFTLINE_TOKEN "
            "(on the database itself nobody is signed in)"
        )
    me = ask()
    if json:
        print_json(me)
        return
    console.print(f"{me.name} ({me.role.value})", markup=False)
    for g in me.grants:
        console.print(f"  {g.permission.value} on {g.kind.value} {g.resource}", markup=False)
