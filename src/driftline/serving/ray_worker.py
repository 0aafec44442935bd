"""The Ray Data actor that batch scoring runs on Ray (``driftline predict --executor ray``).

Like ``runner.py`` and ``runtime.py`` this module is a process entry point of serving:
each Ray actor is a process of its own that opens the workspace itself and loads the
model once, so it may import the composition root.
"""

from __future__ import annotations

from typing import Any

from driftline.serving.batch import output_table
from driftline.serving.models import ModelTarget

__all__ = ["RayScorer"]


class RayScorer:
    """A Ray Data actor: loads the model once, then scores each batch it is given."""

    def __init__(self, settings: Any, ref: str) -> None:
        from driftline.models import ModelCache
        from driftline.serving.service import load_version, resolve_target
        from driftline.workspace import Workspace

        workspace = Workspace.from_settings(settings)
        version = resolve_target(workspace.registry, ModelTarget.parse(ref))
        self.loaded = load_version(workspace.registry, ModelCache.of(settings), version)
        workspace.close()

    def __call__(self, table: Any) -> Any:
        return output_table(table, self.loaded.predict(table.to_pandas()))
