"""A model loaded from a verified package, ready to predict."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from driftline.models.models import ModelInfo
from driftline.models.signature import Signature

__all__ = ["LoadedModel"]


class LoadedModel:
    """A loaded model: ``predict`` checks the input against the signature, then predicts.

    Attributes:
        info: The package's manifest as a record.
        raw: The underlying model object (a scikit-learn estimator, a LightGBM or XGBoost
            Booster or estimator, a TorchScript module, an onnxruntime session, or the
            :class:`~driftline.models.PythonModel` instance).
        path: The local package folder it was loaded from.

    Example:
        >>> m = dl.models.load("runs:/0190b2.../model")   # doctest: +SKIP
        >>> m.predict(df)                                 # doctest: +SKIP
        >>> m.predict([{"age": 41, "plan": "pro"}])       # doctest: +SKIP
    """

    __slots__ = ("__weakref__", "_adapter", "_predict", "info", "path", "raw")

    def __init__(
        self,
        *,
        info: ModelInfo,
        raw: Any,
        path: Path,
        adapter: Callable[[Any], Any],
        predict: Callable[[Any], Any],
    ) -> None:
        self.info = info
        self.raw = raw
        self.path = path
        self._adapter = adapter
        self._predict = predict

    def predict(self, data: Any) -> Any:
        """Predict for a DataFrame, a list of record dicts, a dict of columns or an array.

        Raises:
            InvalidArgumentError: The input does not match the signature (a missing column,
                a value of the wrong type); the message names the column and the type.
        """
        return self._predict(self._adapter(data))

    def check_input(self, data: Any) -> Any:
        """``data`` checked and cast against the signature, as :meth:`predict` would.

        With :meth:`predict_checked` this splits ``predict`` in two, so a caller can tell
        a bad input (``InvalidArgumentError`` here) from a model that fails on a good one,
        and can check several inputs one by one before predicting them together.

        Raises:
            InvalidArgumentError: The input does not match the signature.
        """
        return self._adapter(data)

    def predict_checked(self, data: Any) -> Any:
        """Predict for an input :meth:`check_input` returned (no second check)."""
        return self._predict(data)

    @property
    def signature(self) -> Signature | None:
        """The model's inputs and outputs, when known."""
        return self.info.signature

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The free-form metadata given when the model was logged."""
        return self.info.metadata

    @property
    def flavor(self) -> str:
        """The flavor that loaded it."""
        return self.info.flavor

    @property
    def artifacts(self) -> dict[str, str]:
        """Name -> local path of the files given as ``artifacts=`` when it was logged."""
        return {name: str(self.path / relative) for name, relative in self.info.artifacts.items()}

    @property
    def input_example(self) -> Any:
        """The input example stored with the model (a DataFrame or an array), or ``None``."""
        if self.info.input_example_file is None:
            return None
        from driftline.models._example import read_example

        return read_example(self.path / self.info.input_example_file)

    def __repr__(self) -> str:
        where = self.info.uri or str(self.path)
        return f"LoadedModel(flavor={self.info.flavor!r}, uri={where!r})"
