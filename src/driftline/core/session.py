"""The process's default workspace, reachable from stage facades without importing upward.

The top-level package (``driftline._fluent``) installs the provider when ``driftline``
is imported, which happens before any stage module runs (stages are subpackages of
``driftline``). A stage's module-level API (``dl.data.commit``) asks
:func:`default_workspace` and gets a :class:`~driftline.core.stage.Host`, from which it
takes its own service by name and type::

    default_workspace().service("data", DataService)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftline.core.stage import Host

__all__ = ["default_workspace", "set_default_workspace_provider"]

_provider: Callable[[], Host] | None = None


def set_default_workspace_provider(provider: Callable[[], Host]) -> None:
    """Install the function that opens (or returns) the default workspace."""
    global _provider
    _provider = provider


def default_workspace() -> Host:
    """The default workspace (opened on first use)."""
    if _provider is None:  # pragma: no cover - `import driftline` installs it
        from driftline.errors import InvalidArgumentError

        raise InvalidArgumentError("No default workspace: import driftline first")
    return _provider()
