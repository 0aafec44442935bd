"""Every flavor round-trips through a run: log, load by runs:/ URI, same predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import driftline as dl
from driftline.errors import AlreadyExistsError, InvalidArgumentError, UserCodeError
from driftline.models import PythonModel
from driftline.models.package import MANIFEST_FILE


def _log(model: Any, name: str = "model", **kwargs: Any) -> dl.models.ModelInfo:
    with dl.start_run(experiment="flavors"):
        return dl.models.log_model(model, name, **kwargs)


def _manifest(loaded: Any) -> dict[str, Any]:
    return json.loads((loaded.path / MANIFEST_FILE).read_text())  # type: ignore[no-any-return]


# -- scikit-learn -----------------------------------------------------------------------


def test_sklearn_pipeline_round_trips_with_the_issue_example(
    model_workspace: Any, iris: tuple[Any, Any]
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = iris
    with dl.start_run(experiment="churn") as run:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x, y)
        ref = dl.models.log_model(model, "model", input_example=x.head(5), metadata={"team": "a"})
    assert ref.uri == f"runs:/{run.id}/model"
    assert ref.run_id == run.id
    m = dl.models.load(f"runs:/{run.id}/model")
    np.testing.assert_array_equal(m.predict(x), model.predict(x))
    assert [c.name for c in m.signature.inputs] == list(x.columns)
    assert m.metadata == {"team": "a"}
    assert m.info.uri == ref.uri
    assert m.info.run_id == run.id
    assert m.flavor == "sklearn"
    head = x.head(3)
    expected = model.predict(head)
    np.testing.assert_array_equal(m.predict(head.to_dict("records")), expected)
    np.testing.assert_array_equal(m.predict(head.to_dict("list")), expected)
    np.testing.assert_array_equal(m.predict(head.to_numpy()), expected)
    pd.testing.assert_frame_equal(m.input_example, x.head(5))


def test_manifest_lists_every_file_with_digest_and_size(
    model_workspace: Any, iris: tuple[Any, Any]
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    x, y = iris
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)
    ref = _log(model, input_example=x.head(5), requirements=["scikit-learn>=1.4"])
    m = dl.models.load(ref.uri)
    np.testing.assert_array_equal(m.predict(x), model.predict(x))
    manifest = _manifest(m)
    files = sorted(p.relative_to(m.path).as_posix() for p in m.path.rglob("*") if p.is_file())
    assert sorted([*manifest["files"], MANIFEST_FILE]) == files
    for entry in manifest["files"].values():
        assert entry["digest"].startswith("blake3:")
        assert entry["size"] > 0
    assert manifest["format_version"] == 1
    assert manifest["flavor"] == "sklearn"
    assert manifest["input_example"] == "input_example.json"
    assert "sklearn.tree._tree.Tree" in manifest["flavor_options"]["trusted_types"]
    assert manifest["library_versions"]["scikit-learn"]
    assert manifest["python_version"]
    assert "scikit-learn>=1.4" in manifest["requirements"]  # replaces the pin
    assert not any(r.startswith("scikit-learn==") for r in manifest["requirements"])
    assert manifest["signature"]["inputs"]["type"] == "columns"


def test_a_model_name_is_not_overwritten(model_workspace: Any, iris: tuple[Any, Any]) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    model = LogisticRegression(max_iter=300).fit(x, y)
    with dl.start_run():
        dl.models.log_model(model, "model")
        with pytest.raises(AlreadyExistsError, match="another name"):
            dl.models.log_model(model, "model")


def test_log_model_needs_an_active_run(model_workspace: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="start_run"):
        dl.models.log_model(object(), "model")


def test_an_unsupported_object_lists_the_flavors_and_points_to_python_model(
    model_workspace: Any,
) -> None:
    class Mystery:
        def predict(self, x: Any) -> Any:
            return x

    with pytest.raises(InvalidArgumentError) as caught, dl.start_run():
        dl.models.log_model(Mystery(), "model")
    message = str(caught.value)
    for flavor in ("scikit-learn", "LightGBM", "XGBoost", "PyTorch", "ONNX", "PythonModel"):
        assert flavor in message


# -- LightGBM / XGBoost -----------------------------------------------------------------


def test_lightgbm_classifier_with_string_labels_and_native_booster(
    model_workspace: Any, iris: tuple[Any, Any]
) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = iris
    labels = y.map({0: "setosa", 1: "versicolor", 2: "virginica"})
    classifier = lgb.LGBMClassifier(n_estimators=8, verbose=-1).fit(x, labels)
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, (y == 1)), 5)
    with dl.start_run() as run:
        dl.models.log_model(classifier, "clf", input_example=x.head(5))
        dl.models.log_model(booster, "booster", input_example=x.head(5))
    clf = dl.models.load(f"runs:/{run.id}/clf")
    np.testing.assert_array_equal(clf.predict(x), classifier.predict(x))
    assert _manifest(clf)["flavor_options"]["file"] == "model.lgb"
    assert (clf.path / "model.lgb").read_text().startswith("tree")  # the native text format
    raw = dl.models.load(f"runs:/{run.id}/booster")
    np.testing.assert_allclose(raw.predict(x), booster.predict(x))


def test_lightgbm_regressor(model_workspace: Any, diabetes: tuple[Any, Any]) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = diabetes
    model = lgb.LGBMRegressor(n_estimators=8, verbose=-1).fit(x, y)
    m = dl.models.load(_log(model, input_example=x.head(5)).uri)
    np.testing.assert_allclose(m.predict(x), model.predict(x))


def test_xgboost_classifier_and_booster_saved_as_json(
    model_workspace: Any, iris: tuple[Any, Any], diabetes: tuple[Any, Any]
) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = iris
    classifier = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    m = dl.models.load(_log(classifier, "clf", input_example=x.head(5)).uri)
    np.testing.assert_array_equal(m.predict(x), classifier.predict(x))
    assert json.loads((m.path / "model.json").read_text())  # XGBoost's JSON format
    xd, yd = diabetes
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(xd, yd), 5)
    b = dl.models.load(_log(booster, "booster", input_example=xd.head(5)).uri)
    np.testing.assert_allclose(b.predict(xd), booster.predict(xgb.DMatrix(xd)), rtol=1e-6)


# -- PyTorch ----------------------------------------------------------------------------


def test_torch_module_loads_without_its_class(model_workspace: Any) -> None:
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):  # local: not importable, so only TorchScript can load it
        def __init__(self) -> None:
            super().__init__()
            self.hidden = torch.nn.Linear(4, 8)
            self.out = torch.nn.Linear(8, 3)

        def forward(self, x: Any) -> Any:
            return self.out(torch.relu(self.hidden(x)))

    torch.manual_seed(0)
    net = Net()
    x = np.random.default_rng(0).normal(size=(20, 4)).astype("float32")
    ref = _log(net, input_example=x[:5])
    m = dl.models.load(ref.uri)
    expected = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(m.predict(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.predict(x.astype("float64").tolist()), expected, rtol=1e-5)
    assert m.signature.inputs[0].shape == (-1, 4)
    state = torch.load(m.path / "state_dict.pt", weights_only=True)
    rebuilt = Net()
    rebuilt.load_state_dict(state)
    np.testing.assert_allclose(rebuilt(torch.from_numpy(x)).detach().numpy(), expected)
    assert net.training  # saving put it back in the mode it was in


# -- ONNX -------------------------------------------------------------------------------


def test_onnx_model_from_skl2onnx(model_workspace: Any, iris: tuple[Any, Any]) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    data = x.to_numpy(dtype="float32")
    model = LogisticRegression(max_iter=300).fit(data, y)
    proto = skl2onnx.to_onnx(model, data[:1])
    with_example = dl.models.load(_log(proto, "a", input_example=data[:5]).uri)
    np.testing.assert_array_equal(with_example.predict(data), model.predict(data))
    from_graph = dl.models.load(_log(proto, "b").uri)  # signature read from the graph
    assert from_graph.signature.inputs[0].dtype == "float32"
    assert from_graph.signature.inputs[0].shape[-1] == 4
    np.testing.assert_array_equal(from_graph.predict(x.to_numpy()), model.predict(data))


# -- PythonModel ------------------------------------------------------------------------


class Scaled(PythonModel):
    """Multiplies column x by a factor read from an artifact at load time."""

    def load_context(self, context: Any) -> None:
        self.factor = float(Path(context.artifacts["factor"]).read_text())

    def predict(self, context: Any, model_input: Any) -> Any:
        return model_input["x"].to_numpy() * self.factor


class Broken(PythonModel):
    def predict(self, context: Any, model_input: Any) -> Any:
        raise RuntimeError("boom")


def test_python_model_with_an_artifact(model_workspace: Any, tmp_path: Path) -> None:
    factor = tmp_path / "factor.txt"
    factor.write_text("3")
    ref = _log(
        Scaled(), input_example=pd.DataFrame({"x": [1.0, 2.0]}), artifacts={"factor": factor}
    )
    assert ref.artifacts == {"factor": "artifacts/factor/factor.txt"}
    factor.write_text("100")  # the package holds its own copy
    m = dl.models.load(ref.uri)
    np.testing.assert_array_equal(m.predict({"x": [1, 2, 3]}), [3.0, 6.0, 9.0])
    assert Path(m.artifacts["factor"]).read_text() == "3"
    assert _manifest(m)["flavor_options"]["serialization"] == "cloudpickle"
    assert ref.signature is not None
    assert ref.signature.outputs[0].dtype == "float64"


def test_python_model_errors_are_user_code_errors(model_workspace: Any) -> None:
    with pytest.warns(UserWarning, match="infer its outputs"):
        ref = _log(Broken(), input_example=pd.DataFrame({"x": [1.0]}))
    m = dl.models.load(ref.uri)
    with pytest.raises(UserCodeError, match="boom") as caught:
        m.predict({"x": [1.0]})
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_sklearn_loads_without_listing_every_estimator(
    tmp_path: Path, iris: tuple[Any, Any]
) -> None:
    """A fresh process loading a scikit-learn model imports skops without its walk over
    all of scikit-learn, and trusts exactly the types it trusted before."""
    import subprocess
    import sys

    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from driftline.models.flavors.sklearn import SklearnFlavor

    x, y = iris
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3)).fit(x, y)
    saved = SklearnFlavor().save(model, tmp_path, example=None)
    assert saved.options["trusted_types"] == ["sklearn.tree._tree.Tree"]
    (tmp_path / "options.json").write_text(json.dumps(saved.options))
    np.save(tmp_path / "x.npy", np.asarray(x))
    np.save(tmp_path / "expected.npy", model.predict(x))
    script = f"""
import json, sys, types
from pathlib import Path
import numpy as np
from driftline.models.flavors.sklearn import SklearnFlavor
folder = Path({str(tmp_path)!r})
info = types.SimpleNamespace(flavor_options=json.loads((folder / "options.json").read_text()))
model = SklearnFlavor().load(folder, info)
assert (model.predict(np.load(folder / "x.npy")) == np.load(folder / "expected.npy")).all()
assert "sklearn.utils._testing" not in sys.modules, "skops listed every estimator"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_sklearn_trusts_by_default_only_what_skops_trusts() -> None:
    from sklearn.utils import all_estimators
    from skops.io._utils import get_type_name

    from driftline.models.flavors.sklearn import _estimator_types

    names = {get_type_name(c) for _, c in all_estimators()} - {""}
    names = {n for n in names if n.startswith("sklearn.")}
    others = {
        "sklearn.tree._tree.Tree", "sklearn.base.BaseEstimator", "os.system",
        "sklearn.utils._testing.MinimalClassifier", "sklearn.linear_model._base.LinearModel",
        "sklearn.linear_model.Nope",
    }  # fmt: skip
    assert _estimator_types(names | others) == names
