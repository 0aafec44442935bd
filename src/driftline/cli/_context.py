"""The workspace a CLI invocation works on, opened once per command from global options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from driftline.workspace import Workspace

__all__ = ["CliState", "open_workspace"]


@dataclass
class CliState:
    """Global options, and the workspace once a command asks for it."""

    overrides: dict[str, Any] = field(default_factory=dict)
    debug: bool = False
    workspace: Workspace | None = None
    #: Import paths of the stage descriptors the command was built with (default: all).
    stages: tuple[str, ...] | None = None


def open_workspace(ctx: typer.Context, **extra: Any) -> Workspace:
    """The workspace for this command (closed when the command ends)."""
    from driftline.workspace import Workspace

    state: CliState = ctx.find_root().obj
    if state.workspace is None:
        # Commands write synchronously: a CLI call should have committed when it returns.
        state.workspace = Workspace.from_settings(
            stages=state.stages, async_logging=False, **{**state.overrides, **extra}
        )
        ctx.find_root().call_on_close(state.workspace.close)
    return state.workspace
