"""Linear scikit-learn models get a numpy twin at save time: verified against the
estimator before it is written, hash-checked like any file, and loaded with
``lite=True`` without importing scikit-learn or pandas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from driftline.errors import IntegrityError
from driftline.models import load_model_folder, save_model
from driftline.models.flavors.linear import (
    LINEAR_FILE,
    LinearPredictor,
    NumericRows,
    verified_linear,
)

FEATURES = ["f0", "f1", "f2", "f3", "f4"]


@pytest.fixture(scope="module")
def data() -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(11)
    x = pd.DataFrame(rng.normal(size=(300, 5)), columns=FEATURES)
    y_binary = (x["f0"] + x["f1"] - x["f3"] > 0).astype(int)
    y_three = np.digitize(x["f0"] - 0.5 * x["f2"], [-0.6, 0.6])
    return x, y_binary, y_three


class Shifted(LogisticRegression):
    """A subclass may predict otherwise than its base: it gets no twin."""


def _estimators() -> list[tuple[str, Any, str]]:
    from sklearn.linear_model import (
        ElasticNet,
        Lasso,
        LinearRegression,
        Perceptron,
        Ridge,
        RidgeClassifier,
        SGDClassifier,
        SGDRegressor,
    )
    from sklearn.svm import LinearSVC, LinearSVR

    return [
        ("logistic-binary", LogisticRegression(), "binary"),
        ("logistic-3", LogisticRegression(C=0.5), "three"),
        ("logistic-text", LogisticRegression(), "text"),
        ("sgd-classifier", SGDClassifier(random_state=0), "three"),
        ("ridge-classifier", RidgeClassifier(), "binary"),
        ("perceptron", Perceptron(random_state=0), "three"),
        ("linear-svc", LinearSVC(), "binary"),
        ("linear-regression", LinearRegression(), "real"),
        ("ridge", Ridge(alpha=2.0), "real"),
        ("lasso", Lasso(alpha=0.01), "real"),
        ("elastic-net", ElasticNet(alpha=0.01), "real"),
        ("sgd-regressor", SGDRegressor(random_state=0), "real"),
        ("linear-svr", LinearSVR(), "real"),
    ]


def _target(kind: str, data: tuple[Any, Any, Any]) -> Any:
    x, y_binary, y_three = data
    return {
        "binary": y_binary,
        "three": y_three,
        "text": np.array(["low", "mid", "high"])[y_three],
        "real": 3 * x["f0"] - x["f2"] + 0.1,
    }[kind]


@pytest.mark.parametrize("case", _estimators(), ids=lambda c: c[0])
def test_the_twin_predicts_exactly_as_the_estimator(
    case: tuple[str, Any, str], data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    name, estimator, kind = case
    x = data[0]
    estimator.fit(x, _target(kind, data))
    info = save_model(estimator, tmp_path / name, input_example=x.head(3))
    assert info.flavor_options["linear"]["file"] == LINEAR_FILE
    lite = load_model_folder(tmp_path / name, lite=True)
    full = load_model_folder(tmp_path / name)
    assert isinstance(lite.raw, LinearPredictor)
    assert not isinstance(full.raw, LinearPredictor)
    rng = np.random.default_rng(5)
    for scale in (0.01, 1.0, 100.0):
        frame = pd.DataFrame(rng.normal(size=(500, 5)) * scale, columns=FEATURES)
        expected = full.predict(frame)
        got = lite.predict(NumericRows(FEATURES, frame.to_numpy()))
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)  # bit for bit, labels and values
        np.testing.assert_array_equal(lite.predict(frame), expected)
        if name.startswith("logistic"):
            np.testing.assert_allclose(
                lite.raw.predict_proba(frame), full.raw.predict_proba(frame), rtol=1e-12
            )


def test_models_that_are_not_plain_linear_get_no_twin(
    data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, _ = data

    for i, model in enumerate(
        (
            RandomForestClassifier(n_estimators=3, random_state=0),
            make_pipeline(StandardScaler(), LogisticRegression()),
            Shifted(),
        )
    ):
        model.fit(x, y)
        info = save_model(model, tmp_path / str(i), input_example=x.head(3))
        assert "linear" not in info.flavor_options
        assert not (tmp_path / str(i) / LINEAR_FILE).exists()
        loaded = load_model_folder(tmp_path / str(i), lite=True)
        assert not isinstance(loaded.raw, LinearPredictor)  # the full flavor
        assert (loaded.predict(x.head(20)) == model.predict(x.head(20))).all()


def test_a_twin_that_disagrees_with_the_estimator_is_never_written(
    data: tuple[Any, Any, Any],
) -> None:
    x, y, _ = data
    model = LogisticRegression().fit(x, y)
    assert verified_linear(model, x.head(3)) is not None
    # The estimator's own predict is the reference: one that answers otherwise (here, by
    # flipping the labels) refuses the twin, on the example or the random rows.
    model.predict = lambda values: 1 - LogisticRegression.predict(model, values)  # type: ignore[method-assign]
    assert verified_linear(model, x.head(3)) is None


def test_a_signature_that_is_not_all_double_loads_the_estimator(
    data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    x, y, _ = data
    ints = (x * 10).round().astype("int64")
    model = LogisticRegression(max_iter=500).fit(ints, y)
    info = save_model(model, tmp_path / "ints", input_example=ints.head(3))
    assert "linear" in info.flavor_options  # written, but the integer columns are cast
    loaded = load_model_folder(tmp_path / "ints", lite=True)
    assert not isinstance(loaded.raw, LinearPredictor)


def test_a_modified_twin_is_refused_before_loading(
    data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    x, y, _ = data
    save_model(LogisticRegression().fit(x, y), tmp_path / "m", input_example=x.head(3))
    twin = tmp_path / "m" / LINEAR_FILE
    document = json.loads(twin.read_text())
    document["intercept"] = [d + 1.0 for d in document["intercept"]]
    twin.write_text(json.dumps(document))
    with pytest.raises(IntegrityError):
        load_model_folder(tmp_path / "m", lite=True)


def test_a_bad_input_is_named_as_by_the_full_check(
    data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    from driftline.errors import InvalidArgumentError

    x, y, _ = data
    save_model(LogisticRegression().fit(x, y), tmp_path / "m", input_example=x.head(3))
    lite = load_model_folder(tmp_path / "m", lite=True)
    full = load_model_folder(tmp_path / "m")
    bad = x.head(2).astype(object)
    bad.loc[0, "f3"] = "x"
    messages = []
    for model in (lite, full):
        with pytest.raises(InvalidArgumentError) as caught:
            model.predict(bad)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "'f3'" in messages[0]


def test_the_twin_refuses_nan_as_the_estimator_does(
    data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    from driftline.models import NumericRows

    x, y, _ = data
    save_model(LogisticRegression().fit(x, y), tmp_path / "m", input_example=x.head(3))
    twin = load_model_folder(tmp_path / "m", lite=True).raw
    assert isinstance(twin, LinearPredictor)
    rows = x.head(2).to_numpy(dtype=float).copy()
    rows[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LogisticRegression().fit(x, y).predict(rows)
    for given in (rows, NumericRows(list(x.columns), rows)):
        with pytest.raises(ValueError, match="NaN or infinity"):
            twin.predict(given)
    with pytest.raises(ValueError, match="features"):
        twin.predict(NumericRows(["a"], rows[:, :1]))


def test_loading_the_twin_imports_neither_sklearn_nor_pandas(
    data: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    x, y, _ = data
    model = LogisticRegression().fit(x, y)
    save_model(model, tmp_path / "m", input_example=x.head(3))
    rows = x.head(4).to_numpy().tolist()
    script = (
        "import sys, numpy as np\n"
        "from driftline.models import load_model_folder\n"
        "from driftline.models.flavors.linear import NumericRows\n"
        f"m = load_model_folder({str(tmp_path / 'm')!r}, lite=True)\n"
        f"print(m.predict(NumericRows({FEATURES!r}, np.array({rows!r}))).tolist())\n"
        "print(sorted({n.split('.')[0] for n in sys.modules} & {'sklearn', 'pandas', 'scipy'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    assert json.loads(out[0]) == model.predict(x.head(4)).tolist()
    assert out[1] == "[]"


def test_a_malformed_twin_file_is_a_clear_error(tmp_path: Path) -> None:
    from driftline.errors import InvalidArgumentError
    from driftline.models.flavors.linear import load_linear

    document = {"estimator": "x.LogisticRegression", "kind": "classifier", "coef": [[1.0]],
                "intercept": [0.0], "classes": None, "classes_dtype": None,
                "feature_names": ["a"]}  # fmt: skip
    for broken in ({**document, "kind": "forest"}, document, {"kind": "regressor"}):
        (tmp_path / LINEAR_FILE).write_text(json.dumps(broken))
        with pytest.raises(InvalidArgumentError, match="Cannot read the linear predictor"):
            load_linear(tmp_path, {"file": LINEAR_FILE})
