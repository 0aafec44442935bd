"""Fixtures of the server tests: the session's server, emptied, and its own workspace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from driftline.workspace import Workspace


@pytest.fixture
def server(live_server: Any) -> Any:
    """The session's server, emptied of rows."""
    live_server.reset()
    return live_server


@pytest.fixture
def on_server(server: Any) -> Iterator[Callable[[], Workspace]]:
    """Open the server's own database and artifact folder, as the server process does.

    What a test reads this way is what the server stored, so a test cannot pass by
    accident on a client-side fallback.
    """
    from driftline.settings import Settings
    from driftline.workspace import Workspace

    opened: list[Workspace] = []

    def open_() -> Workspace:
        ws = Workspace.from_settings(
            Settings.load(
                home=server.root / ".driftline",
                uri=server.uri,
                artifact_root=str(server.root / "artifacts"),
                async_logging=False,
                capture_environment=False,
            )
        )
        opened.append(ws)
        return ws

    yield open_
    for ws in opened:
        ws.close()
