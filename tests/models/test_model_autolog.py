"""autolog(): params, metrics and the model of each fit, with and without an active run."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import driftline as dl
from driftline.models import autolog


@pytest.fixture
def autologging(model_workspace: Any) -> Iterator[Any]:
    autolog()
    yield model_workspace
    autolog(disable=True)


def _artifact_roots(run_id: str) -> set[str]:
    entries = dl.get_workspace().tracking.list_artifacts(run_id)
    return {entry.path.split("/", 1)[0] for entry in entries}


def test_sklearn_fit_without_a_run_starts_and_ends_one(
    autologging: Any, iris: tuple[Any, Any]
) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = iris
    model = LogisticRegression(C=0.5, max_iter=300).fit(x, y)
    assert dl.active_run() is None
    (run,) = dl.search_runs().items
    assert run.status.value == "FINISHED"
    assert run.params["C"] == "0.5"
    assert run.params["max_iter"] == "300"
    assert run.metrics["training_accuracy_score"] == pytest.approx(model.score(x, y))
    assert run.metrics["training_score"] == pytest.approx(model.score(x, y))
    assert {"training_f1_score", "training_precision_score", "training_recall_score"} <= set(
        run.metrics
    )
    loaded = dl.models.load(f"runs:/{run.id}/model")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [c.name for c in loaded.signature.inputs] == list(x.columns)  # from the example
    assert len(loaded.input_example) == 5


def test_a_pipeline_logs_once_into_the_active_run(
    autologging: Any, diabetes: tuple[Any, Any]
) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = diabetes
    with dl.start_run() as run:
        make_pipeline(StandardScaler(), Ridge(alpha=2.0)).fit(x, y)
    stored = dl.get_run(run.id)
    assert stored.params["ridge__alpha"] == "2.0"
    assert "training_r2_score" in stored.metrics
    assert "training_root_mean_squared_error" in stored.metrics
    assert _artifact_roots(run.id) == {"model"}  # the steps' own fits are not logged
    assert len(dl.search_runs().items) == 1


def test_lightgbm_logs_eval_results_per_iteration(autologging: Any, iris: tuple[Any, Any]) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = iris
    model = lgb.LGBMClassifier(n_estimators=6, verbose=-1)
    # LightGBM 4.7 renamed eval_set to eval_X/eval_y (the old name warns).
    new_api = "eval_X" in inspect.signature(model.fit).parameters
    evaluation = {"eval_X": x, "eval_y": y} if new_api else {"eval_set": [(x, y)]}
    with dl.start_run() as run:
        model.fit(x, y, **evaluation)
    history = dl.get_metric_history(run.id, "valid_0-multi_logloss")
    assert [point.step for point in history] == list(range(6))
    assert history[0].value > history[-1].value
    stored = dl.get_run(run.id)
    assert stored.params["n_estimators"] == "6"
    assert "training_accuracy_score" in stored.metrics
    assert dl.models.load(f"runs:/{run.id}/model").flavor == "lightgbm"


def test_native_lightgbm_train(autologging: Any, iris: tuple[Any, Any]) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = iris
    with dl.start_run() as run:
        params = {"objective": "multiclass", "num_class": 3, "verbose": -1}
        lgb.train(params, lgb.Dataset(x, y), 4, valid_sets=[lgb.Dataset(x, y)])
    assert len(dl.get_metric_history(run.id, "valid_0-multi_logloss")) == 4
    stored = dl.get_run(run.id)
    assert stored.params["objective"] == "multiclass"
    assert stored.params["num_boost_round"] == "4"
    loaded = dl.models.load(f"runs:/{run.id}/model")
    assert loaded.predict(x.head(2)).shape == (2, 3)


def test_xgboost_logs_eval_results_and_model(autologging: Any, iris: tuple[Any, Any]) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = iris
    with dl.start_run() as run:
        model = xgb.XGBClassifier(n_estimators=5, max_depth=2)
        model.fit(x, y, eval_set=[(x, y)], verbose=False)
    history = dl.get_metric_history(run.id, "validation_0-mlogloss")
    assert [point.step for point in history] == list(range(5))
    assert dl.get_run(run.id).params["max_depth"] == "2"
    loaded = dl.models.load(f"runs:/{run.id}/model")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_disable_restores_the_original_fit(model_workspace: Any, iris: tuple[Any, Any]) -> None:
    from sklearn.base import BaseEstimator
    from sklearn.linear_model import LogisticRegression

    original = LogisticRegression.__dict__["fit"]
    hook = BaseEstimator.__dict__.get("__init_subclass__")
    autolog()
    assert LogisticRegression.__dict__["fit"] is not original
    assert LogisticRegression.fit.__wrapped__ is original  # type: ignore[attr-defined]
    autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is original
    assert BaseEstimator.__dict__.get("__init_subclass__") is hook
    x, y = iris
    LogisticRegression(max_iter=300).fit(x, y)
    assert dl.search_runs().items == []


def test_classes_defined_after_autolog_are_covered(autologging: Any, iris: tuple[Any, Any]) -> None:
    from sklearn.linear_model import LogisticRegression

    class Custom(LogisticRegression):
        def fit(self, x: Any, y: Any) -> Any:
            return super().fit(x, y)

    x, y = iris
    with dl.start_run() as run:
        Custom(max_iter=300).fit(x, y)
    assert _artifact_roots(run.id) == {"model"}  # logged once, not again for super().fit
    autolog(disable=True)
    assert not getattr(Custom.fit, "__driftline_autolog__", False)


def test_a_logging_failure_warns_and_never_breaks_fit(
    autologging: Any, iris: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.linear_model import LogisticRegression

    import driftline.models

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(driftline.models, "log_model", broken)
    x, y = iris
    with pytest.warns(UserWarning, match="disk full"), dl.start_run() as run:
        model = LogisticRegression(max_iter=300).fit(x, y)
    assert model.predict(x.head(1)).shape == (1,)
    assert dl.get_run(run.id).params["max_iter"] == "300"  # what could be logged was


def test_a_failing_fit_fails_the_run_it_started(autologging: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ValueError, match="class"):
        LogisticRegression().fit([[1.0], [2.0]], [0, 0])  # one class only
    (run,) = dl.search_runs().items
    assert run.status.value == "FAILED"
