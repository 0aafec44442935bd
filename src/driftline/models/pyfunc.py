"""Custom models: subclass :class:`PythonModel` for anything no flavor covers.

A ``PythonModel`` is saved with cloudpickle, together with the files given as
``artifacts={name: local path}``. **Loading one executes code**, like any pickle:
driftline verifies every file against the package's hash-verified manifest first, so
only load models from workspaces and registries you trust.

Example:
    >>> class Doubler(dl.models.PythonModel):                     # doctest: +SKIP
    ...     def load_context(self, context):
    ...         self.factor = float(Path(context.artifacts["factor"]).read_text())
    ...     def predict(self, context, model_input):
    ...         return model_input["x"] * self.factor
    >>> dl.models.log_model(Doubler(), "model", artifacts={"factor": "factor.txt"})
    ... # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PythonModel", "PythonModelContext"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonModelContext:
    """What a :class:`PythonModel` gets when loaded.

    Attributes:
        artifacts: Name -> local path of the files and folders given to
            ``log_model(artifacts={...})``, inside the loaded package.
    """

    artifacts: Mapping[str, str] = field(default_factory=dict)


class PythonModel:
    """Base class of custom models: override :meth:`predict`, optionally :meth:`load_context`.

    The instance is pickled with cloudpickle when logged; anything set in
    :meth:`load_context` (opened files, loaded weights) is rebuilt at load time instead
    of being pickled.
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Prepare the model after loading (read artifacts, build lookup tables)."""

    def predict(self, context: PythonModelContext, model_input: Any) -> Any:
        """Predict for ``model_input`` (checked against the signature, when there is one)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement predict(context, model_input)"
        )
