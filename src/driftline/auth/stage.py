"""The auth stage's declaration (see :mod:`driftline.core.stage`): users, tokens, grants.

Its service is the workspace's :class:`~driftline.auth.UserAdmin`: the
:class:`~driftline.auth.AuthService` on the database, or the server's user
administration over HTTP in remote mode. It stores no objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.core.stage import Kernel, Services, Stage, no_roots

if TYPE_CHECKING:
    from driftline.auth.service import UserAdmin

__all__ = ["STAGE"]


def _build(kernel: Kernel, _uses: Services) -> UserAdmin:
    if kernel.is_remote:
        from driftline.auth._http import HttpUserAdmin

        return HttpUserAdmin(kernel.require_client("auth"), owns_client=False)
    from driftline.auth._sql import SqlAuthStore
    from driftline.auth.service import AuthService

    return AuthService(SqlAuthStore(kernel.require_database("auth")), actor=kernel.settings.user)


STAGE: Stage[UserAdmin] = Stage(
    name="auth",
    build=_build,
    gc_roots=no_roots,
    tables=("driftline.auth._tables",),
    routes=("driftline.server.routes.users:router",),
    cli="driftline.cli.users:install_commands",
    api="driftline.auth",
)
