"""Model records: what a packaged model is (:class:`ModelInfo`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftline.models.signature import Signature

__all__ = ["ModelInfo"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """A packaged model as its manifest (``driftline-model.json``) describes it.

    Attributes:
        flavor: The library family that saves and loads it (``sklearn``, ``lightgbm``, ...).
        signature: Inputs and outputs, when known.
        library_versions: Distribution name -> version at save time (``scikit-learn``: ...).
        requirements: Pip requirement lines to recreate the environment.
        metadata: Free-form JSON values given at save time.
        files: Every file of the package but the manifest: path -> (digest, size).
        uri: Where it was logged or loaded from (``runs:/<run id>/model``), if anywhere.
        run_id: The run that logged it, if any.
        flavor_options: What the flavor needs to load it again (file names, classes, ...).
        python_version: The Python that saved it.
        input_example_file: The input example's file inside the package, if one was given.
        artifacts: Name -> path inside the package of the files given as ``artifacts=``.
        format_version: The manifest format.
    """

    flavor: str
    signature: Signature | None
    library_versions: Mapping[str, str] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    uri: str | None = None
    run_id: str | None = None
    flavor_options: Mapping[str, Any] = field(default_factory=dict)
    python_version: str = ""
    input_example_file: str | None = None
    artifacts: Mapping[str, str] = field(default_factory=dict)
    format_version: int = 1

    @property
    def size(self) -> int:
        """Bytes of every file of the package but the manifest."""
        return sum(size for _, size in self.files.values())
