"""The models stage's declaration (see :mod:`driftline.core.stage`).

Model packages are stored as run artifacts (tracking's roots) or pinned by the registry
(its roots), so this stage has no tables and no roots of its own. Its service is the
workspace's model cache; it resolves ``runs:/<run id>/<path>`` URIs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from driftline.core.stage import Kernel, Services, Stage, no_roots

if TYPE_CHECKING:
    from driftline.models.cache import ModelCache

__all__ = ["STAGE"]


def _build(kernel: Kernel, _uses: Services) -> ModelCache:
    from driftline.models.cache import ModelCache

    return ModelCache.of(kernel.settings)


def _resolve_run(uri: str, scratch: Path) -> Path:
    from driftline.models.uri import resolve_run_uri

    return resolve_run_uri(uri, scratch)


STAGE: Stage[ModelCache] = Stage(
    name="models",
    build=_build,
    gc_roots=no_roots,
    resolvers={"runs": _resolve_run},
    api="driftline.models",
)
