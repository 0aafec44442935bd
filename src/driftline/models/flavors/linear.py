"""A numpy-only predictor for linear scikit-learn models, verified against the estimator.

A process serving one linear model does not need scikit-learn to predict with it:
``LogisticRegression.predict`` is ``argmax(x @ coef.T + intercept)`` over its classes.
Importing scikit-learn (and with it pandas, pyarrow and scipy) costs ~160 MB of memory
in every serving worker; numpy alone costs ~27 MB.

So when the scikit-learn flavor saves one of the estimators listed in
:data:`LINEAR_ESTIMATORS` (exact classes: a subclass may predict differently), it also
writes ``linear.json``: the coefficients, intercepts, classes and feature names. Before
that file is written, its predictions are compared with the estimator's own on the input
example and on random rows around it; a model whose predictions differ in any label or
beyond float rounding gets no file. The file is listed in the package manifest like any
other, so it is hash-verified on every load.

:func:`load_linear` reads it back into a :class:`LinearPredictor`, which imports numpy
only. Loading with ``lite=True`` (what serving does) uses it when present and falls back
to the full flavor otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = [
    "LINEAR_ESTIMATORS",
    "LINEAR_FILE",
    "LinearPredictor",
    "NumericRows",
    "RowsAdapter",
    "export_linear",
    "load_linear",
    "serves_rows",
    "verified_linear",
]

LINEAR_FILE = "linear.json"

#: Estimator classes whose ``predict`` is a linear decision function (by class path).
#: ``classifier``: labels from the sign or argmax of the scores; ``regressor``: the scores.
LINEAR_ESTIMATORS: dict[str, str] = {
    "sklearn.linear_model._logistic.LogisticRegression": "classifier",
    "sklearn.linear_model._stochastic_gradient.SGDClassifier": "classifier",
    "sklearn.linear_model._ridge.RidgeClassifier": "classifier",
    "sklearn.linear_model._perceptron.Perceptron": "classifier",
    "sklearn.svm._classes.LinearSVC": "classifier",
    "sklearn.linear_model._base.LinearRegression": "regressor",
    "sklearn.linear_model._ridge.Ridge": "regressor",
    "sklearn.linear_model._coordinate_descent.Lasso": "regressor",
    "sklearn.linear_model._coordinate_descent.ElasticNet": "regressor",
    "sklearn.linear_model._stochastic_gradient.SGDRegressor": "regressor",
    "sklearn.svm._classes.LinearSVR": "regressor",
}

# Rows of random inputs the predictor must also agree on (besides the input example).
_CHECK_ROWS = 256
# Float outputs may differ from scikit-learn's by rounding only.
_RTOL = 1e-9


class NumericRows(Mapping[str, Any]):
    """Rows of numbers with column names, as one 2-D float64 ``array``.

    What a serving process builds from a JSON body of numbers for a model that predicts
    on arrays (a :class:`LinearPredictor`): the names travel with the values so the
    prediction log records the same columns a DataFrame would give, without pandas.
    It reads as a mapping of column to values (a dict of columns, which every model's
    input check takes), so a variant loaded in full predicts on it too.
    """

    __slots__ = ("array", "columns")

    def __init__(self, columns: Sequence[str], array: Any) -> None:
        self.columns = list(columns)
        self.array = array

    @classmethod
    def read_example(cls, path: Path, names: Sequence[str]) -> NumericRows | None:
        """A stored input example (a frame of ``names``, as the models stage writes it)
        read without pandas; ``None`` if it is of another form."""
        import numpy as np

        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("type") != "dataframe" or payload.get("columns") != list(names):
            return None
        data = [[np.nan if v is None else v for v in row] for row in payload["data"]]
        try:
            return cls(names, np.asarray(data, dtype=np.float64).reshape(-1, len(names)))
        except (TypeError, ValueError):
            return None

    @property
    def rows(self) -> int:
        """How many rows it holds."""
        return int(self.array.shape[0])

    def __getitem__(self, name: str) -> Any:
        try:
            return self.array[:, self.columns.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)


class LinearPredictor:
    """``predict`` of a linear scikit-learn model, in numpy (see the module docstring).

    Attributes:
        estimator: The class path of the estimator it was exported from.
        kind: ``"classifier"`` or ``"regressor"``.
        feature_names: The columns it was fitted on, in order (``None`` if unnamed).
    """

    __slots__ = ("classes", "coef", "estimator", "feature_names", "intercept", "kind")

    def __init__(
        self,
        *,
        estimator: str,
        kind: str,
        coef: Any,
        intercept: Any,
        classes: Any = None,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        self.estimator = estimator
        self.kind = kind
        self.coef = coef
        self.intercept = intercept
        self.classes = classes
        self.feature_names = None if feature_names is None else list(feature_names)

    @property
    def n_features(self) -> int:
        """How many columns an input row has."""
        return int(self.coef.shape[-1])

    def _array(self, data: Any) -> Any:
        import numpy as np

        if isinstance(data, NumericRows):
            data = data.array
        elif hasattr(data, "columns") and hasattr(data, "to_numpy"):  # a DataFrame
            names = [str(c) for c in data.columns]
            if self.feature_names is not None and names != self.feature_names:
                # scikit-learn's own refusal, so both paths fail alike.
                raise ValueError(
                    "The feature names should match those that were passed during fit "
                    f"({self.feature_names}); got {names}"
                )
            data = data.to_numpy()
        values = np.asarray(data, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self.n_features:
            raise ValueError(
                f"X has {values.shape[-1] if values.ndim else 0} features, but this model "
                f"is expecting {self.n_features} features as input"
            )
        if not np.isfinite(values).all():
            # scikit-learn refuses these (its check_array): the twin must not answer NaN.
            raise ValueError("Input X contains NaN or infinity.")
        return values

    def decision_function(self, data: Any) -> Any:
        """The linear scores, ``x @ coef.T + intercept`` (one column raveled)."""
        scores = self._array(data) @ self.coef.T + self.intercept
        if scores.ndim == 2 and scores.shape[1] == 1:
            return scores.ravel()
        return scores

    def predict(self, data: Any) -> Any:
        """Labels (classifiers) or values (regressors), as the estimator's ``predict``."""
        scores = self.decision_function(data)
        if self.kind == "regressor":
            return scores
        indices = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes.take(indices)

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities of a logistic regression (binary, or multinomial softmax)."""
        import numpy as np

        if not self.estimator.endswith(".LogisticRegression"):
            raise InvalidArgumentError(f"{self.estimator} has no predict_proba here")
        scores = self.decision_function(data)
        if scores.ndim == 1:
            with np.errstate(over="ignore"):  # exp(-x) = inf for x << 0 gives 0, as expit
                positive = 1.0 / (1.0 + np.exp(-scores))
            return np.vstack([1 - positive, positive]).T
        # scikit-learn's softmax, step by step (same rounding).
        shifted = scores - scores.max(axis=1).reshape((-1, 1))
        np.exp(shifted, out=shifted)
        shifted /= shifted.sum(axis=1).reshape((-1, 1))
        return shifted

    def __repr__(self) -> str:
        return f"LinearPredictor({self.estimator.rsplit('.', 1)[-1]}, {self.n_features} features)"


def _class_path(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def _from_estimator(model: Any) -> LinearPredictor | None:
    import numpy as np

    path = _class_path(model)
    kind = LINEAR_ESTIMATORS.get(path)
    if kind is None or not hasattr(model, "coef_"):
        return None
    # One-vs-rest probabilities (liblinear, or multi_class="ovr" in older releases) differ
    # from the softmax; labels do not, but keep to one rule: multinomial only.
    ovr = (
        getattr(model, "multi_class", "auto") == "ovr"
        or getattr(model, "solver", "") == "liblinear"
    )
    if path.endswith(".LogisticRegression") and len(model.classes_) > 2 and ovr:
        return None
    names = getattr(model, "feature_names_in_", None)
    classes = getattr(model, "classes_", None) if kind == "classifier" else None
    return LinearPredictor(
        estimator=path,
        kind=kind,
        coef=np.asarray(model.coef_, dtype=np.float64),
        intercept=np.asarray(model.intercept_, dtype=np.float64),
        classes=None if classes is None else np.asarray(classes),
        feature_names=None if names is None else [str(n) for n in names],
    )


def _check_inputs(predictor: LinearPredictor, example: Any) -> list[Any]:
    """Inputs to compare on: the example (when numeric) and random rows at its scale."""
    import numpy as np

    inputs = []
    scale = 1.0
    center: Any = 0.0
    if example is not None:
        try:
            values = np.asarray(
                example.to_numpy() if hasattr(example, "to_numpy") else example, dtype=np.float64
            )
        except (TypeError, ValueError):
            return []  # not a numeric input: this predictor does not apply
        if values.ndim == 2 and values.shape[1] == predictor.n_features and len(values):
            inputs.append(values)
            center = values.mean(axis=0)
            scale = float(np.nanmax(np.abs(values))) or 1.0
    rng = np.random.default_rng(20261207)
    inputs.append(center + scale * rng.normal(size=(_CHECK_ROWS, predictor.n_features)))
    return inputs


def _agrees(mine: Any, theirs: Any) -> bool:
    import numpy as np

    theirs = np.asarray(theirs)
    if mine.shape != theirs.shape:
        return False
    if mine.dtype.kind in "fc" and theirs.dtype.kind in "fc":
        return bool(np.allclose(mine, theirs, rtol=_RTOL, atol=0.0))
    return bool(np.array_equal(mine, theirs))


def verified_linear(model: Any, example: Any) -> LinearPredictor | None:
    """A :class:`LinearPredictor` for ``model`` if it is one of the linear estimators
    and predicts exactly as the estimator on the example and on random rows; else None."""
    import warnings

    predictor = _from_estimator(model)
    if predictor is None:
        return None
    for values in _check_inputs(predictor, example):
        with warnings.catch_warnings():
            # The estimator sees a nameless array here; the comparison is about numbers.
            warnings.simplefilter("ignore")
            theirs = model.predict(values)
            proba = (
                model.predict_proba(values)
                if predictor.estimator.endswith(".LogisticRegression")
                else None
            )
        if not _agrees(predictor.predict(values), theirs):
            return None
        if proba is not None and not _agrees(predictor.predict_proba(values), proba):
            return None
    return predictor


def export_linear(model: Any, folder: Path, example: Any) -> dict[str, Any] | None:
    """Write ``linear.json`` for ``model`` into ``folder`` when it is verified (see the
    module docstring); the flavor options that point to it, or ``None``."""
    predictor = verified_linear(model, example)
    if predictor is None:
        return None
    classes = predictor.classes
    document = {
        "estimator": predictor.estimator,
        "kind": predictor.kind,
        # Python floats print round-trip exact, so JSON keeps every bit.
        "coef": predictor.coef.tolist(),
        "intercept": predictor.intercept.tolist(),
        "classes": None if classes is None else classes.tolist(),
        "classes_dtype": None if classes is None else classes.dtype.str,
        "feature_names": predictor.feature_names,
    }
    if classes is not None and classes.dtype.kind == "O":
        if not all(isinstance(c, str) for c in document["classes"]):
            return None  # only text labels round-trip through JSON as objects
        document["classes_dtype"] = "object"
    (folder / LINEAR_FILE).write_text(json.dumps(document), encoding="utf-8")
    return {"file": LINEAR_FILE, "estimator": predictor.estimator}


def load_linear(folder: Path, options: dict[str, Any]) -> LinearPredictor:
    """Read the predictor :func:`export_linear` wrote (numpy only).

    Raises:
        InvalidArgumentError: The file is malformed.
    """
    import numpy as np

    path = folder / str(options["file"])
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        classes = document["classes"]
        if document["kind"] not in ("classifier", "regressor") or (
            document["kind"] == "classifier" and classes is None
        ):
            raise ValueError(f"kind {document['kind']!r} with classes {classes!r}")
        return LinearPredictor(
            estimator=str(document["estimator"]),
            kind=str(document["kind"]),
            coef=np.asarray(document["coef"], dtype=np.float64),
            intercept=np.asarray(document["intercept"], dtype=np.float64),
            classes=None
            if classes is None
            else np.asarray(classes, dtype=np.dtype(document["classes_dtype"])),
            feature_names=document["feature_names"],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(f"Cannot read the linear predictor {path}: {exc}") from None


def serves_rows(signature: Any, predictor: LinearPredictor) -> bool:
    """Whether ``predictor`` can stand in for its estimator under ``signature``: named
    columns, all ``double`` (what the full check would pass through unchanged), in the
    order the estimator was fitted on."""
    if signature is None or signature.is_tensor or predictor.feature_names is None:
        return False
    names = [str(c.name) for c in signature.inputs]
    return names == predictor.feature_names and all(c.type == "double" for c in signature.inputs)


class RowsAdapter:
    """The input check of a model predicted by a :class:`LinearPredictor`.

    :class:`NumericRows` whose columns are the signature's pass as they are (they hold
    float64 numbers by construction); anything else takes the full signature check,
    built (and pandas imported) on first need, so bad input is named exactly as usual.
    """

    __slots__ = ("_full", "names", "signature")

    def __init__(self, signature: Any) -> None:
        self.signature = signature
        self.names = [str(c.name) for c in signature.inputs]
        self._full: Any = None

    def __call__(self, data: Any) -> Any:
        if isinstance(data, NumericRows) and data.columns == self.names:
            return data
        if self._full is None:
            from driftline.models._enforce import build_adapter

            self._full = build_adapter(self.signature)
        return self._full(data)
