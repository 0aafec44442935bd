"""Who may approve a retraining cycle's challenger, from the auth stage's users.

A cycle awaiting approval waits for registry approvals of its version, and approving a
version is ``manage`` on its model (the registry's routes authorize it so; the rule is
:func:`driftline.auth.policy.allowed`): admins, and users with a ``manage`` grant on
the model. So a policy's ``approvals: N`` can be met only when at least N distinct
enabled users may manage the model; ``apply`` refuses it otherwise, and a waiting
cycle names them to whoever may approve it too.

Who else may approve is a list of the model's admins and managers: to a caller who may
only read the model (a team server's reader) it would be a list of the accounts worth
attacking, so :func:`waiting_note` says to such a caller how many more may approve,
not who. The approvals already given keep their authors' names: an approval is an act,
recorded with who did it, which any reader of the model also reads in the version's
approvals and in the audit log; hiding it here would hide nothing and take that record
from the cycle.

A workspace without users (an embedded workspace nobody signs in to) does not restrict
approvers: whoever opens it approves under the name ``DRIFTLINE_USER`` gives (the
local user by default), and distinct approvals need distinct names. :func:`approvers`
answers ``None`` there, and nothing is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftline.auth import allowed_users

if TYPE_CHECKING:
    from driftline.auth import UserAdmin

__all__ = ["approvers", "how_to_allow", "waiting_note"]


def approvers(auth: UserAdmin, model: str) -> list[str] | None:
    """The users who may approve ``model``'s versions, by name; ``None`` when the
    workspace has no users (anyone may, see the module docstring)."""
    users = auth.list_users()
    if not users:
        return None
    return allowed_users(users, auth.list_grants(), "manage", model=model)


def how_to_allow(model: str) -> str:
    """The sentence saying how to let someone approve ``model``'s versions."""
    return (
        f"approving needs manage on model {model!r}: the admin role, or "
        f"driftline users grant NAME --model {model} --permission manage"
    )


def waiting_note(
    required: int,
    approved: set[str],
    may_approve: list[str] | None,
    local_user: str,
    *,
    named: bool = True,
) -> str:
    """Who has approved and who still may, for a cycle awaiting ``required`` approvals;
    ``named=False`` (a caller who may not approve, see the module docstring) says how
    many more may approve, not who."""
    given = f"approved by {', '.join(sorted(approved))}" if approved else "no approval yet"
    if may_approve is None:
        return (
            f"{given} ({len(approved)} of {required}); the workspace has no users, so anyone "
            f"who opens it may approve, under the name DRIFTLINE_USER gives (now "
            f"{local_user!r})"
        )
    pending = [name for name in may_approve if name not in approved]
    if not pending:
        who = "no one else may approve"
    elif named:
        who = f"may approve: {', '.join(pending)}"
    else:
        people = "1 more person" if len(pending) == 1 else f"{len(pending)} more people"
        who = f"{people} may approve (their names are shown to those who may approve)"
    return f"{given} ({len(approved)} of {required}); {who}"
