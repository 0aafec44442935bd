"""Performance on a deployment's traffic: labels joined in time, realized and CBPE figures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk
from traffic_log import write_log

from driftline.errors import InvalidArgumentError
from driftline.monitoring import MonitoringService
from driftline.workspace import Workspace

DAY = timedelta(days=1)
# Three whole UTC days in the past: windows are aligned to days.
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - 4 * DAY
PER_DAY = 400


@pytest.fixture
def svc(open_workspace: Callable[..., Workspace]) -> MonitoringService:
    service: MonitoringService = open_workspace("sqlite://").service(
        "monitoring", MonitoringService
    )
    return service


def binary_traffic(svc: MonitoringService, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Three days of a calibrated binary classifier; class probabilities as outputs."""
    assert svc.log_root is not None
    rng = np.random.default_rng(seed)
    n = 3 * PER_DAY
    p = rng.beta(2, 3, n)
    y = (rng.random(n) < p).astype(int)
    frame = pd.DataFrame({"x": rng.normal(size=n), "plan": rng.choice(["a", "b"], n)})
    ids = write_log(
        svc.log_root, "churn", START, frame, np.column_stack([1 - p, p]),
        spacing=DAY / PER_DAY,
    )  # fmt: skip
    return ids, y


def test_realized_figures_per_window_match_sklearn(svc: MonitoringService) -> None:
    ids, y = binary_traffic(svc)
    # Day 3 has labels for half of its rows only.
    keep = [i for i in range(len(ids)) if i < 2 * PER_DAY or i % 2 == 0]
    svc.log_labels("churn", pd.DataFrame({"request_id": [ids[i] for i in keep], "label": y[keep]}))
    rep = svc.performance("churn", since=START, until=START + 3 * DAY)
    assert rep.task == "binary"
    realized = [w for w in rep.windows if w.kind == "realized"]
    assert [w.status for w in realized] == ["ok", "ok", "ok"]
    assert [w.coverage for w in realized] == [1.0, 1.0, 0.5]
    assert [w.rows for w in realized] == [PER_DAY] * 3
    traffic = svc.traffic("churn", START, START + 3 * DAY).to_pandas()
    p = traffic.set_index("request_id").loc[ids, "prediction_1"].to_numpy()
    for day, w in enumerate(realized):
        rows = np.array([i for i in keep if day * PER_DAY <= i < (day + 1) * PER_DAY])
        assert w.labelled == len(rows)
        assert w.metrics["roc_auc"] == pytest.approx(sk.roc_auc_score(y[rows], p[rows]))
        assert w.metrics["f1"] == pytest.approx(sk.f1_score(y[rows], p[rows] >= 0.5))
        assert w.metrics["log_loss"] == pytest.approx(sk.log_loss(y[rows], p[rows]))
        assert w.metrics["accuracy"] == pytest.approx(sk.accuracy_score(y[rows], p[rows] >= 0.5))
    estimated = [w for w in rep.windows if w.estimated]
    assert all(w.status == "ok" for w in estimated)
    for r, e in zip(realized, estimated, strict=True):
        assert e.lower["roc_auc"] <= e.metrics["roc_auc"] <= e.upper["roc_auc"]
        assert abs(e.metrics["roc_auc"] - r.metrics["roc_auc"]) < 0.08
    frame = rep.to_frame()
    assert set(frame["kind"]) == {"realized", "estimated"}
    assert (frame.query("kind == 'realized' and metric == 'roc_auc'")["coverage"] > 0).all()


def test_windows_younger_than_the_label_delay_are_estimated_not_scored(
    svc: MonitoringService,
) -> None:
    ids, y = binary_traffic(svc, seed=1)
    svc.log_labels("churn", pd.DataFrame({"request_id": ids, "label": y}))
    until = START + 3 * DAY
    delay = datetime.now(UTC) - (START + 2 * DAY) + timedelta(minutes=1)  # day 2 too young
    rep = svc.performance("churn", since=START, until=until, label_delay=delay)
    realized = [w for w in rep.windows if w.kind == "realized"]
    assert [w.status for w in realized] == ["ok", "label_delay", "label_delay"]
    assert realized[1].metrics == {}
    assert realized[1].coverage == 1.0
    estimated = [w for w in rep.windows if w.estimated]
    assert [w.status for w in estimated] == ["ok", "ok", "ok"]  # calibrated on day 1
    assert rep.calibration_rows == PER_DAY


def test_labels_later_than_the_join_window_are_not_joined(svc: MonitoringService) -> None:
    ids, y = binary_traffic(svc, seed=2)
    late = START + 30 * DAY
    svc.log_labels(
        "churn", pd.DataFrame({"request_id": ids, "label": y, "time": [late] * len(ids)})
    )
    rep = svc.performance("churn", since=START, until=START + 3 * DAY)
    realized = [w for w in rep.windows if w.kind == "realized"]
    assert [(w.status, w.labelled) for w in realized] == [("insufficient_data", 0)] * 3
    assert {w.status for w in rep.windows if w.estimated} == {"no_calibration"}
    rep = svc.performance("churn", since=START, until=START + 3 * DAY, join_window="40d")
    assert {w.status for w in rep.windows if w.kind == "realized"} == {"ok"}


def test_segments_and_an_empty_window(svc: MonitoringService) -> None:
    ids, y = binary_traffic(svc, seed=3)
    svc.log_labels("churn", pd.DataFrame({"request_id": ids, "label": y}))
    rep = svc.performance(
        "churn", since=START, until=START + 4 * DAY, segment="plan", min_rows=50, estimate=False
    )
    realized = [w for w in rep.windows if w.kind == "realized"]
    assert {w.segment_value for w in realized} == {"a", "b"}
    assert sum(w.rows for w in realized) == 3 * PER_DAY
    last_day = [w for w in realized if w.start == int((START + 3 * DAY).timestamp() * 1000)]
    assert [(w.status, w.rows, w.coverage) for w in last_day] == [("insufficient_data", 0, 0.0)] * 2
    with pytest.raises(InvalidArgumentError, match="segment by 'nope'"):
        svc.performance("churn", since=START, until=START + DAY, segment="nope")


def test_regression_and_predicted_labels(svc: MonitoringService) -> None:
    assert svc.log_root is not None
    rng = np.random.default_rng(4)
    n = 300
    y = rng.normal(10, 2, n)
    pred = y + rng.normal(0, 1, n)
    ids = write_log(svc.log_root, "price", START, pd.DataFrame({"x": y}), pred, prefix="p")
    svc.log_labels("price", pd.DataFrame({"request_id": ids, "label": y}))
    rep = svc.performance("price", since=START, until=START + DAY)
    (w,) = rep.windows
    assert rep.task == "regression"
    assert w.metrics["mae"] == pytest.approx(sk.mean_absolute_error(y, pred))
    assert w.metrics["rmse"] == pytest.approx(sk.root_mean_squared_error(y, pred))
    assert w.metrics["mape"] == pytest.approx(sk.mean_absolute_percentage_error(y, pred))
    assert w.metrics["r2"] == pytest.approx(sk.r2_score(y, pred))

    classes = np.array(["cat", "dog", "eel"])
    truth = rng.integers(0, 3, n)
    guess = np.where(rng.random(n) < 0.7, truth, rng.integers(0, 3, n))
    ids = write_log(
        svc.log_root, "pets", START, pd.DataFrame({"x": truth}), classes[guess], prefix="q"
    )
    svc.log_labels("pets", pd.DataFrame({"request_id": ids, "label": classes[truth]}))
    (w,) = svc.performance("pets", since=START, until=START + DAY).windows
    assert w.task == "classification"
    assert w.metrics["accuracy"] == pytest.approx(sk.accuracy_score(truth, guess))
    assert w.metrics["f1"] == pytest.approx(sk.f1_score(truth, guess, average="macro"))
    with pytest.raises(InvalidArgumentError, match="Regression needs numeric"):
        svc.performance("pets", since=START, until=START + DAY, task="regression")


def test_shadow_copies_of_requests_are_not_counted_twice(svc: MonitoringService) -> None:
    assert svc.log_root is not None
    rng = np.random.default_rng(5)
    n = 200
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)
    frame = pd.DataFrame({"x": p})
    ids = write_log(svc.log_root, "churn", START, frame, p)
    write_log(svc.log_root, "churn", START, frame, 1 - p, variant="shadow")  # same ids
    svc.log_labels("churn", pd.DataFrame({"request_id": ids, "label": y}))
    (realized, _) = svc.performance("churn", since=START, until=START + DAY).windows
    assert (realized.rows, realized.labelled) == (n, n)
    assert realized.metrics["roc_auc"] == pytest.approx(sk.roc_auc_score(y, p))
    both = svc.traffic("churn", START, START + DAY, shadow=True)
    assert both.num_rows == 2 * n


def test_a_column_that_changes_type_in_the_log_is_a_clear_error(svc: MonitoringService) -> None:
    assert svc.log_root is not None
    write_log(svc.log_root, "d", START, pd.DataFrame({"x": [1.0]}), np.ones(1))
    write_log(svc.log_root, "d", START + DAY, pd.DataFrame({"x": ["a"]}), np.ones(1), prefix="s")
    with pytest.raises(InvalidArgumentError, match="changes a column's type"):
        svc.performance("d", since=START, until=START + 2 * DAY)


def test_average_ranks_are_scipys_with_ties() -> None:
    from scipy.stats import rankdata

    from driftline.monitoring.metrics import average_ranks, roc_auc

    rng = np.random.default_rng(5)
    for x in (rng.normal(size=500), rng.integers(0, 4, 500).astype(float), np.array([]),
              np.array([3.0, 3.0, 3.0]), np.array([-np.inf, 0.0, np.inf])):  # fmt: skip
        assert np.array_equal(average_ranks(x), rankdata(x))
    y = rng.integers(0, 2, 500).astype(float)
    tied = rng.integers(0, 4, 500) / 4
    assert roc_auc(y, tied) == pytest.approx(sk.roc_auc_score(y, tied), abs=1e-12)
