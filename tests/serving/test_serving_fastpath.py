"""The serving predict path: scikit-learn estimators predict from the checked frame's
array, with the same answers as the ordinary path, and only when that is safe."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftline.models import load_model_folder, save_model
from driftline.serving.batching import predict_one
from driftline.serving.fastpath import predictor
from driftline.serving.payloads import InputShaper, decode_predict

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def data() -> tuple[Any, Any]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(120, 4)), columns=FEATURES)
    return x, (x["f0"] - x["f2"] > 0).astype(int)


def _load(model: Any, folder: Path, example: Any) -> Any:
    save_model(model, folder, input_example=example)
    return load_model_folder(folder)


def test_a_fitted_estimator_predicts_from_the_array(data: tuple[Any, Any], tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = data
    for i, estimator in enumerate((LogisticRegression(), RandomForestClassifier(n_estimators=5))):
        loaded = _load(estimator.fit(x, y), tmp_path / str(i), x.head(3))
        fast = predictor(loaded)
        assert fast != loaded.predict_checked  # the fast path was built
        assert predictor(loaded) is fast  # once per model object
        shaper = InputShaper(loaded.signature)
        records = x.head(7).to_dict("records")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "X does not have valid feature names"
            got = predict_one(loaded, decode_predict({"inputs": records}, shaper))
        assert (got == loaded.predict(x.head(7))).all()
        assert "feature_names_in_" in vars(loaded.raw)  # the user's estimator is untouched
        # Columns in another order: the ordinary path, which reorders by name.
        shuffled = x.head(7)[["f3", "f1", "f0", "f2"]]
        assert (predict_one(loaded, shuffled) == got).all()


def test_a_pipeline_takes_the_ordinary_path(data: tuple[Any, Any], tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = data
    loaded = _load(make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y), tmp_path / "p",
                   x.head(3))  # fmt: skip
    assert predictor(loaded) == loaded.predict_checked


def test_a_bad_input_is_still_refused_by_the_signature(
    data: tuple[Any, Any], tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    from driftline.errors import InvalidArgumentError

    x, y = data
    loaded = _load(LogisticRegression().fit(x, y), tmp_path / "m", x.head(3))
    shaper = InputShaper(loaded.signature)
    bad = decode_predict({"inputs": [{"f0": "x", "f1": 1.0, "f2": 1.0, "f3": 1.0}]}, shaper)
    with pytest.raises(InvalidArgumentError, match="f0"):
        predict_one(loaded, bad)
