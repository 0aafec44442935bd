"""Evaluation, comparison, quality gates and gated promotion with real scikit-learn models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from driftline.errors import InvalidArgumentError, PermissionDeniedError
from driftline.models import ModelCache, save_model
from driftline.registry.card import render_card_html, render_card_text
from driftline.registry.gates import parse_gates
from driftline.registry.promotion import GateFailedError, compare_models, evaluate, promote
from driftline.workspace import Workspace


def cache_in(tmp_path: Path) -> ModelCache:
    """The model cache of a test: a folder of its own."""
    return ModelCache(tmp_path / "model-cache")


@pytest.fixture
def ws(make_workspace: Callable[..., Workspace]) -> Workspace:
    return make_workspace()


try:  # `python -m pytest` from the repository root, as CI runs it
    from tests.conftest import ALL_BACKENDS
except ImportError:  # pragma: no cover - only tests/ on sys.path
    from conftest import ALL_BACKENDS

# Also against a real server process (the HTTP backend).
remote_too = pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = load_breast_cancer(as_frame=True).frame
    frame["size"] = np.where(frame["mean radius"] > 14, "large", "small")
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return shuffled.iloc[:400].reset_index(drop=True), shuffled.iloc[400:].reset_index(drop=True)


def features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["target", "size"])


def register(
    ws: Workspace,
    model: Any,
    train: pd.DataFrame,
    tmp_path: Path,
    name: str = "cancer",
    columns: list[str] | None = None,
) -> Any:
    """Log a fitted model to a run that read the training version, then register it."""
    x = features(train) if columns is None else train[columns]
    run = ws.tracking.create_run("train")
    training = ws.data.commit("cancer-train", train)
    ws.data.log_input(run.id, training)
    folder = tmp_path / f"pkg-{run.id}"
    save_model(model, folder, input_example=x.head(5))
    ws.tracking.log_artifacts(run.id, folder, "model")
    return ws.registry.register_model(f"runs:/{run.id}/model", name)


def logreg(train: pd.DataFrame, c: float = 1.0) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(
        features(train), train["target"]
    )


def dummy(train: pd.DataFrame) -> Any:
    return DummyClassifier(strategy="prior").fit(features(train), train["target"])


@remote_too
def test_evaluate_records_classification_metrics_and_slices(
    ws: Workspace, cancer: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, test = cancer
    mv = register(ws, logreg(train), train, tmp_path)
    ws.data.commit("cancer-test", test)
    result = evaluate(
        ws.registry,
        mv.uri,
        data="cancer-test@1",
        target="target",
        slices=["size"],
        cache=cache_in(tmp_path),
    )
    assert result.task == "classification"
    assert result.dataset == "cancer-test@1"
    assert result.rows == len(test)
    assert result.metrics["roc_auc"] > 0.97
    assert set(result.metrics) >= {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "confusion_matrix",
    }
    assert sum(map(sum, result.metrics["confusion_matrix"]["matrix"])) == len(test)
    assert set(result.slices["size"]) == {"large", "small"}
    assert sum(s["rows"] for s in result.slices["size"].values()) == len(test)
    assert ws.registry.store.list_evaluations("cancer", 1)[0].id == result.id


@remote_too
def test_evaluate_regression(ws: Workspace, tmp_path: Path) -> None:
    frame = load_diabetes(as_frame=True).frame
    model = LinearRegression().fit(frame.drop(columns=["target"]), frame["target"])
    folder = tmp_path / "reg"
    save_model(model, folder, input_example=frame.drop(columns=["target"]).head(3))
    mv = ws.registry.register_model(folder, "diabetes")
    result = evaluate(ws.registry, mv.uri, data=frame, target="target", cache=cache_in(tmp_path))
    assert result.task == "regression"
    assert set(result.metrics) == {"rmse", "mae", "r2", "mape"}
    assert 0.4 < result.metrics["r2"] < 0.7
    with pytest.raises(InvalidArgumentError, match="Target column 'nope'"):
        evaluate(ws.registry, mv.uri, data=frame, target="nope", cache=cache_in(tmp_path))


@remote_too
def test_compare_models_reports_differences_with_confidence_intervals(
    ws: Workspace, cancer: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, test = cancer
    good = register(ws, logreg(train), train, tmp_path)
    bad = register(ws, dummy(train), train, tmp_path)
    result = compare_models(
        ws.registry,
        [bad.uri, good.uri],
        data=test,
        target="target",
        cache=cache_in(tmp_path),
        rounds=100,
    )
    assert result.models == ("cancer/2", "cancer/1")
    auc = next(m for m in result.metrics if m.metric == "roc_auc")
    diff, low, high = auc.differences[1], auc.ci_low[1], auc.ci_high[1]
    assert diff is not None
    assert low is not None
    assert high is not None
    assert diff > 0.4
    assert low <= diff <= high
    assert low > 0  # the better model is better beyond doubt


@remote_too
def test_promotion_through_gates_moves_the_alias(
    ws: Workspace, cancer: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, test = cancer
    mv = register(ws, logreg(train), train, tmp_path)
    ws.data.commit("cancer-test", test)
    gates = {
        "evaluation": {"data": "cancer-test@1", "target": "target"},
        "gates": [
            {"metric": "auc", "min": 0.9},
            {"metric": "log_loss", "max": 0.5},
            {"latency_p99_ms": 1000},
            {"signature": "compatible"},
            {"data_validation": "passed"},
        ],
    }
    report = promote(
        ws.registry, "cancer", mv.version, "champion", gates=gates, cache=cache_in(tmp_path)
    )
    assert report.promoted
    assert [g.passed for g in report.gates] == [True] * 5
    assert ws.registry.get_version("cancer@champion").version == mv.version


@remote_too
def test_a_failing_gate_refuses_with_a_report_and_changes_nothing(
    ws: Workspace, cancer: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, test = cancer
    mv = register(ws, logreg(train), train, tmp_path)
    ws.data.commit("cancer-test", test)
    gates = {
        "evaluation": {"data": "cancer-test@1", "target": "target"},
        "gates": [{"metric": "log_loss", "max": 0.001}, {"latency_p99_ms": 0.000001}],
    }
    with pytest.raises(GateFailedError) as refused:
        promote(
            ws.registry, "cancer", mv.version, "champion", gates=gates, cache=cache_in(tmp_path)
        )
    report = refused.value.report
    assert not report.promoted
    assert [g.passed for g in report.gates] == [False, False]
    assert report.gates[0].threshold == 0.001
    assert report.gates[0].measured > 0.001
    assert report.gates[1].measured > 0
    assert "log_loss <= 0.001" in str(refused.value)
    assert "champion" not in ws.registry.get_model("cancer").aliases


@remote_too
def test_regression_and_signature_gates_compare_with_the_holder(
    ws: Workspace, cancer: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, test = cancer
    ws.data.commit("cancer-test", test)
    first = register(ws, logreg(train), train, tmp_path)
    promote(ws.registry, "cancer", first.version, "champion", gates=None, cache=cache_in(tmp_path))
    worse = register(ws, dummy(train), train, tmp_path)
    gates = {
        "evaluation": {"data": "cancer-test@1", "target": "target"},
        "gates": [{"metric": "auc", "max_regression": 0.01}],
    }
    with pytest.raises(GateFailedError) as refused:
        promote(
            ws.registry, "cancer", worse.version, "champion", gates=gates, cache=cache_in(tmp_path)
        )
    assert refused.value.report.gates[0].measured > 0.4  # auc regression vs the holder
    narrower = ["mean radius", "mean texture", "extra"]
    train2 = train.assign(extra=1.0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
        train2[narrower], train2["target"]
    )
    other = register(ws, model, train2, tmp_path, columns=narrower)
    with pytest.raises(GateFailedError, match="signature"):
        promote(
            ws.registry,
            "cancer",
            other.version,
            "champion",
            gates={
                "evaluation": {"data": "cancer-test@1", "target": "target"},
                "gates": [{"signature": "compatible"}],
            },
            cache=cache_in(tmp_path),
        )
    assert ws.registry.get_version("cancer@champion").version == first.version


@remote_too
def test_data_validation_gate_catches_drifted_evaluation_data(
    ws: Workspace, cancer: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, test = cancer
    mv = register(ws, logreg(train), train, tmp_path)
    drifted = pd.concat([test] * 4, ignore_index=True)
    drifted["mean area"] = drifted["mean area"] * 3
    drifted["size"] = "giant"
    with pytest.raises(GateFailedError, match="data validation"):
        promote(
            ws.registry,
            "cancer",
            mv.version,
            "champion",
            cache=cache_in(tmp_path),
            gates={
                "evaluation": {"data": _parquet(drifted, tmp_path), "target": "target"},
                "gates": [{"data_validation": "passed"}],
            },
        )


def _parquet(frame: pd.DataFrame, tmp_path: Path) -> str:
    path = tmp_path / "eval.parquet"
    frame.to_parquet(path)
    return str(path)


@remote_too
def test_approvals_are_checked_before_any_gate(
    ws: Workspace, cancer: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, _ = cancer
    mv = register(ws, logreg(train), train, tmp_path)
    ws.registry.set_policy("production", 1)
    with pytest.raises(PermissionDeniedError, match="needs 1 approval"):
        promote(
            ws.registry,
            "cancer",
            mv.version,
            "production",
            gates={"gates": [{"metric": "auc", "min": 0.5}]},
            cache=cache_in(tmp_path),
        )
    ws.registry.approve("cancer", mv.version, "production", comment="ok")
    report = promote(
        ws.registry, "cancer", mv.version, "production", gates=None, cache=cache_in(tmp_path)
    )
    assert report.promoted


def test_gate_files_are_parsed_strictly(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"Unknown metric 'aucc'; known: accuracy"):
        parse_gates({"gates": [{"metric": "aucc", "min": 0.9}]})
    with pytest.raises(InvalidArgumentError, match="Unknown gate"):
        parse_gates({"gates": [{"latency_p50_ms": 3}]})
    with pytest.raises(InvalidArgumentError, match="exactly one of min, max"):
        parse_gates({"gates": [{"metric": "auc", "min": 0.9, "max": 1}]})
    with pytest.raises(InvalidArgumentError, match="Unknown key"):
        parse_gates({"gate": []})
    path = tmp_path / "gates.yaml"
    path.write_text("evaluation: {data: d@1, target: y}\ngates:\n  - {metric: auc, min: 0.85}\n")
    spec = parse_gates(path)
    assert (spec.data, spec.target, spec.gates[0].metric) == ("d@1", "y", "roc_auc")
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        parse_gates(tmp_path / "missing.yaml")


@remote_too
def test_model_card_has_lineage_metrics_and_history(
    ws: Workspace, cancer: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, test = cancer
    mv = register(ws, logreg(train), train, tmp_path)
    evaluate(
        ws.registry, mv.uri, data=test, target="target", slices=["size"], cache=cache_in(tmp_path)
    )
    promote(
        ws.registry,
        "cancer",
        mv.version,
        "champion",
        cache=cache_in(tmp_path),
        gates={"gates": [{"metric": "auc", "min": 0.5}]},
    )
    ws.registry.approve("cancer", mv.version, "champion", comment="<b>fine</b>")
    ws.registry.update_model("cancer", description="churn scorer", tags={"team": "risk"})
    assert ws.registry.get_model("cancer").tags == {"team": "risk"}
    assert ws.registry.audit_log(model="cancer", limit=1)[0].action == "update_model"
    facts = ws.registry.card_facts("cancer/1")
    text = render_card_text(facts)
    assert "input data: cancer-train@1" in text
    assert "roc_auc" in text
    assert "slice size=large" in text
    assert "champion: promote" in text
    assert "Gates passed for @champion" in text
    assert "roc_auc >= 0.5: measured" in text
    assert "mean radius: double" in text
    html = render_card_html(facts)
    assert "&lt;b&gt;fine&lt;/b&gt;" in html
    assert "<b>fine</b>" not in html


def test_latency_gate_says_how_it_measured_and_a_fast_model_passes_every_try(
    ws: Workspace, cancer: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, _test = cancer
    mv = register(ws, logreg(train), train, tmp_path)
    gates = {"gates": [{"latency_p99_ms": 250}]}  # a one-row logistic regression: ~1 ms
    for _ in range(3):
        report = promote(
            ws.registry, "cancer", mv.version, "champion", gates=gates, cache=cache_in(tmp_path)
        )
        (gate,) = report.gates
        assert gate.passed, gate.message
        assert 0 < gate.measured < 250
        assert len(str(gate.measured)) <= 8  # rounded: 3 significant digits
        assert "median of 5 rounds' p99" in gate.message
        assert "on 1 row(s) of the input example after 10 warm-up calls" in gate.message
    card = render_card_text(ws.registry.card_facts(f"cancer/{mv.version}"))
    assert "latency p99 <= 250.0 ms: measured" in card
    assert "median of 5 rounds' p99" in card


def test_model_card_shows_the_newest_evaluation_per_data_and_rounded_values(
    ws: Workspace, cancer: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, test = cancer
    mv = register(ws, logreg(train), train, tmp_path)
    ws.data.commit("cancer-test", test)
    for _ in range(2):  # the same data twice: one section, not two
        evaluation = evaluate(
            ws.registry, mv.uri, data="cancer-test@1", target="target", cache=cache_in(tmp_path)
        )
    evaluate(ws.registry, mv.uri, data=test.iloc[:60], target="target", cache=cache_in(tmp_path))
    report = promote(
        ws.registry,
        "cancer",
        mv.version,
        "champion",
        cache=cache_in(tmp_path),
        gates={"gates": [{"metric": "log_loss", "max": 0.5}]},
    )
    text = render_card_text(ws.registry.card_facts(f"cancer/{mv.version}"))
    assert text.count("## Evaluation on cancer-test@1, target target") == 1
    assert "earlier evaluations: 1 on the same data (newest shown)" in text
    assert text.count("## Evaluation on a DataFrame, target target (60 rows") == 1
    auc = evaluation.metrics["roc_auc"]
    assert f"- roc_auc: {auc:.4f}\n" in text
    log_loss = report.gates[0].measured  # of the latest evaluation, the DataFrame's
    assert f"log_loss <= 0.5: measured {log_loss:.4f}, threshold 0.5" in text
    assert repr(log_loss) not in text  # no unrounded 17-digit values
