"""What route handlers get from a request: the workspace, the caller, permission checks.

Handlers are plain (sync) functions FastAPI runs in its thread pool; the stores they
call are synchronous and thread-safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

from driftline.errors import PermissionDeniedError

if TYPE_CHECKING:
    from starlette.requests import Request

    from driftline.workspace import Workspace

__all__ = ["Action", "Authorizer", "actor", "allows", "authorize", "workspace"]

Action = Literal["read", "edit", "manage"]


class Authorizer(Protocol):
    """Decides whether the caller of a request may do ``action`` (``--auth``)."""

    def check(
        self,
        request: Request,
        action: Action,
        *,
        experiment: str | None = None,
        model: str | None = None,
        admin: bool = False,
        content: bool = False,
    ) -> None:
        """Return if allowed; raise ``PermissionDeniedError`` (403) otherwise."""
        ...


def workspace(request: Request) -> Workspace:
    """The workspace of this worker process."""
    ws: Workspace = request.app.state.workspace
    return ws


def actor(request: Request) -> str:
    """Who is acting: the authenticated user, else the server's configured user."""
    user = getattr(request.state, "user", None)
    if user is not None:
        return str(user.name)
    return workspace(request).settings.user


def authorize(
    request: Request,
    action: Action,
    *,
    experiment: str | None = None,
    model: str | None = None,
    admin: bool = False,
    content: bool = False,
) -> None:
    """Check the caller may do ``action`` (on an experiment or a model, if named).

    Without ``--auth`` everything is allowed. ``admin=True`` demands the admin role.
    ``content=True`` marks an upload of content-addressed bytes: no run refers to them
    yet, so any caller allowed to edit something may store them (the step that makes a
    run or version refer to them is authorized on its own).
    """
    authorizer: Authorizer | None = request.app.state.authorizer
    if authorizer is not None:
        authorizer.check(
            request, action, experiment=experiment, model=model, admin=admin, content=content
        )


def allows(
    request: Request,
    action: Action,
    *,
    experiment: str | None = None,
    model: str | None = None,
    admin: bool = False,
) -> bool:
    """Whether the caller may do ``action``, as :func:`authorize` decides, without
    raising: for what a response shows only to some callers."""
    try:
        authorize(request, action, experiment=experiment, model=model, admin=admin)
    except PermissionDeniedError:
        return False
    return True
