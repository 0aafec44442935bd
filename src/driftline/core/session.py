"""The process's default workspace, reachable from stage facades without importing upward.

``driftline._fluent`` registers its provider at import; a stage's module-level API
(``dl.data.commit``) asks :func:`default_workspace` instead of importing the top level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["default_workspace", "set_default_workspace_provider"]

_provider: Callable[[], Any] | None = None


def set_default_workspace_provider(provider: Callable[[], Any]) -> None:
    """Install the function that opens (or returns) the default workspace."""
    global _provider
    _provider = provider


def default_workspace() -> Any:
    """The default workspace (opened on first use)."""
    if _provider is None:
        import driftline  # noqa: F401  (registers the provider)
    assert _provider is not None
    return _provider()
