"""Who may do what: roles, grants and the one decision function.

Every request names an action (``read``, ``edit`` or ``manage``) and, when it acts on
one, the experiment and/or the model. ``admin=True`` marks user administration.

=================================  =======  ==================  ==================
action                             admin    editor              viewer
=================================  =======  ==================  ==================
read (anything)                    yes      yes                 yes
edit, no resource named            yes      yes                 no
edit experiment E                  yes      yes                 grant edit on E
edit model M                       yes      yes                 grant edit on M
manage experiment E                yes      yes                 grant manage on E
manage model M (aliases,           yes      grant manage on M   grant manage on M
approvals, policies)
manage, no resource named          yes      no                  no
user administration (admin=True)   yes      no                  no
store content-addressed objects    yes      yes                 any edit grant
=================================  =======  ==================  ==================

Storing content-addressed objects (artifact bytes, :func:`may_store_content`): an
object is inert until a run, data version or model version refers to it, and referring
to it needs ``edit`` on that experiment or model. So a viewer allowed to log to one
experiment may upload the bytes of its artifacts, though the upload names no
experiment.

A grant's permission includes the lower ones (``manage`` > ``edit`` > ``read``), and
grants only add to the role: nothing takes away what the role allows. When a request
names both an experiment and a model, the caller needs the permission on each.

A user may always read itself ("whoami") and create, list and revoke its own tokens;
the routes check that, not this module.
"""

from __future__ import annotations

from collections.abc import Iterable

from driftline.auth.models import Grant, Permission, Principal, ResourceKind, Role, User
from driftline.errors import InvalidArgumentError, PermissionDeniedError

__all__ = ["ACTIONS", "allowed", "allowed_users", "may_store_content", "require"]

ACTIONS = ("read", "edit", "manage")


def allowed(
    principal: Principal,
    action: str,
    *,
    experiment: str | None = None,
    model: str | None = None,
    admin: bool = False,
) -> bool:
    """Whether ``principal`` may do ``action`` (see the table in the module docstring)."""
    if action not in ACTIONS:
        raise InvalidArgumentError(f"Unknown action {action!r}; known: {', '.join(ACTIONS)}")
    if principal.role is Role.ADMIN:
        return True
    if admin:
        return False
    if action == "read":
        return True
    needed = Permission(action)
    targets = [
        (kind, name)
        for kind, name in ((ResourceKind.EXPERIMENT, experiment), (ResourceKind.MODEL, model))
        if name is not None
    ]
    if not targets:
        return principal.role is Role.EDITOR and needed is Permission.EDIT
    return all(_allowed_on(principal, needed, kind, name) for kind, name in targets)


def _allowed_on(principal: Principal, needed: Permission, kind: ResourceKind, name: str) -> bool:
    # Editors edit everything; managing a model (moving its aliases, approving,
    # setting its policy) is governance and needs an explicit grant.
    editor_may = needed is Permission.EDIT or kind is ResourceKind.EXPERIMENT
    if principal.role is Role.EDITOR and editor_may:
        return True
    granted = principal.permission_on(kind, name)
    return granted is not None and granted.level >= needed.level


def allowed_users(
    users: Iterable[User],
    grants: Iterable[Grant],
    action: str,
    *,
    experiment: str | None = None,
    model: str | None = None,
) -> list[str]:
    """The names of the enabled ``users`` that may do ``action`` (as :func:`allowed` decides
    with their role and ``grants``), sorted: who could approve a model's versions, say."""
    held: dict[str, list[Grant]] = {}
    for grant in grants:
        held.setdefault(grant.user, []).append(grant)
    return sorted(
        user.name
        for user in users
        if not user.disabled
        and allowed(
            Principal(
                user_id=user.user_id,
                name=user.name,
                role=user.role,
                grants=tuple(held.get(user.name, ())),
            ),
            action,
            experiment=experiment,
            model=model,
        )
    )


def may_store_content(principal: Principal) -> bool:
    """Whether ``principal`` may upload content-addressed objects (see the module docstring)."""
    if principal.role in (Role.ADMIN, Role.EDITOR):
        return True
    return any(grant.permission.level >= Permission.EDIT.level for grant in principal.grants)


def require(
    principal: Principal,
    action: str,
    *,
    experiment: str | None = None,
    model: str | None = None,
    admin: bool = False,
    content: bool = False,
) -> None:
    """Return if :func:`allowed`; raise :class:`PermissionDeniedError` with a useful message.

    ``content=True`` marks an upload of content-addressed objects (:func:`may_store_content`).
    """
    if content and action == "edit" and experiment is None and model is None and not admin:
        if may_store_content(principal):
            return
        raise PermissionDeniedError(
            f"User {principal.name!r} ({principal.role.value}) may not upload artifacts: "
            "this needs the editor role or an edit grant on an experiment or model"
        )
    if allowed(principal, action, experiment=experiment, model=model, admin=admin):
        return
    who = f"User {principal.name!r} ({principal.role.value})"
    if admin:
        raise PermissionDeniedError(f"{who} is not an admin; only admins manage users")
    what = " and ".join(
        f"{kind} {name!r}" for kind, name in (("experiment", experiment), ("model", model)) if name
    )
    if not what:
        raise PermissionDeniedError(
            f"{who} may not {action} here; this needs the "
            f"{'editor' if action == 'edit' else 'admin'} role"
        )
    flag = f"--experiment {experiment}" if experiment else f"--model {model}"
    raise PermissionDeniedError(
        f"{who} may not {action} {what}; an admin can grant it: "
        f"driftline users grant {principal.name} {flag} --permission {action}"
    )
