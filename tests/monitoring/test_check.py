"""check(): drift, prediction drift, data quality and performance per window of traffic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from traffic_log import failed_request, write_log

from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.monitoring import MonitoringService, QualityThresholds
from driftline.monitoring._frames import Source
from driftline.monitoring.quality import assess
from driftline.monitoring.reference import fit
from driftline.workspace import Workspace

DAY = timedelta(days=1)
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - 5 * DAY
N = 600


@pytest.fixture
def svc(open_workspace: Callable[..., Workspace]) -> MonitoringService:
    service: MonitoringService = open_workspace("sqlite://").service(
        "monitoring", MonitoringService
    )
    return service


def day(
    svc: MonitoringService, k: int, *, shift: float = 0.0, new_plan: bool = False, n: int = N
) -> list[str]:
    assert svc.log_root is not None
    rng = np.random.default_rng(k)
    x = rng.normal(shift, 1, n)
    plans = ["a", "b", "c"] if new_plan else ["a", "b"]
    frame = pd.DataFrame({"x": x, "plan": rng.choice(plans, n)})
    p = 1 / (1 + np.exp(-x))
    return write_log(
        svc.log_root, "churn", START + k * DAY, frame, np.column_stack([1 - p, p]),
        spacing=DAY / (2 * n), prefix=f"d{k}-",
    )  # fmt: skip


def test_each_window_gets_drift_prediction_drift_quality_and_performance(
    svc: MonitoringService,
) -> None:
    ids = day(svc, 0) + day(svc, 1)
    day(svc, 2, shift=1.0, new_plan=True)
    day(svc, 3, n=20)
    assert svc.log_root is not None
    failed_request(svc.log_root, "churn", START + DAY, "boom")  # failed requests are skipped
    with pytest.raises(NotFoundError, match="fit_traffic_reference"):
        svc.check("churn", since=START, until=START + 4 * DAY)
    _, ref = svc.fit_traffic_reference("churn", since=START, until=START + DAY)
    assert set(ref.columns) == {"x", "plan", "prediction_0", "prediction_1"}
    rng = np.random.default_rng(9)
    svc.log_labels("churn", pd.DataFrame({"request_id": ids, "label": rng.integers(0, 2, 2 * N)}))

    res = svc.check("churn", since=START, until=START + 4 * DAY)
    assert [w.rows for w in res.windows] == [N, N, N, 20]
    assert [w.status for w in res.windows] == ["ok", "ok", "ok", "insufficient_data"]
    first, calm, moved, small = res.windows
    assert first.drift is not None
    assert second_verdicts(first) == (False, False)
    assert second_verdicts(calm) == (False, False)
    assert second_verdicts(moved) == (True, True)
    assert moved.drift is not None
    assert "x" in moved.drift.drifted_columns
    assert moved.quality is not None
    kinds = {(i.column, i.kind) for i in moved.quality.issues}
    assert ("plan", "new_categories") in kinds
    assert calm.quality is not None
    assert calm.quality.issues == ()
    assert small.drift is None
    assert small.quality is None
    assert res.task == "binary"
    realized = [p for p in calm.performance if p.kind == "realized"]
    assert realized[0].status == "ok"
    assert realized[0].coverage == 1.0
    assert [p.status for p in moved.performance if p.kind == "realized"] == ["insufficient_data"]

    frame = res.to_frame()
    assert set(frame["check"]) >= {"drift", "prediction_drift", "quality", "performance"}
    flagged = frame[(frame["check"] == "prediction_drift") & frame["flagged"].eq(True)]
    assert set(flagged["window_start"]) == {pd.Timestamp(START + 2 * DAY)}
    only = svc.check("churn", since=START, until=START + 4 * DAY, checks=("quality",))
    assert all(w.drift is None and w.performance == () for w in only.windows)
    with pytest.raises(InvalidArgumentError, match="Unknown checks"):
        svc.check("churn", since=START, until=START + DAY, checks=("vibes",))


def second_verdicts(w: object) -> tuple[bool, bool]:
    drift = getattr(w, "drift", None)
    pred = getattr(w, "prediction_drift", None)
    assert drift is not None
    assert pred is not None
    return bool(drift.drifted_columns), pred.drifted


def test_an_empty_range_is_insufficient_data_not_an_error(svc: MonitoringService) -> None:
    day(svc, 0)
    svc.fit_traffic_reference("churn", since=START, until=START + DAY)
    res = svc.check("churn", since=START + 2 * DAY, until=START + 3 * DAY)
    assert [(w.status, w.rows) for w in res.windows] == [("insufficient_data", 0)]


def test_quality_findings() -> None:
    rng = np.random.default_rng(0)
    n = 1_000
    ref = fit(
        Source(
            "ref",
            None,
            table=pa.table(
                {
                    "x": rng.uniform(0, 10, n),
                    "y": rng.normal(size=n),
                    "c": rng.choice(["a", "b"], n),
                    "gone": np.ones(n),
                    "z": rng.normal(size=n),
                }
            ),
        )
    )
    x = rng.uniform(0, 10, n)
    x[:50] = 20.0  # 5 % above the reference's max
    y = rng.normal(size=n)
    y[:300] = np.nan  # missing share 0 -> 0.3
    c = rng.choice(["a", "b", "zebra"], n, p=[0.45, 0.45, 0.1])
    cur = pa.table({"x": x, "y": y, "c": c, "z": ["text"] * n})
    report = assess(ref, cur)
    found = {i.kind: i for i in report.issues}
    assert set(found) == {
        "out_of_range",
        "missing_rate_jump",
        "new_categories",
        "missing_column",
        "type_mismatch",
    }
    assert found["out_of_range"].value == pytest.approx(0.05)
    assert found["out_of_range"].examples == ("20",)
    assert found["missing_rate_jump"].value == pytest.approx(0.3)
    assert found["new_categories"].examples == ("zebra",)
    assert (found["missing_column"].column, found["type_mismatch"].column) == ("gone", "z")
    calm = pa.table(
        {
            "x": rng.uniform(0, 10, n),
            "y": rng.normal(size=n),
            "c": rng.choice(["a", "b"], n),
            "gone": np.ones(n),
            "z": np.full(n, np.nan),
        }
    )
    assert [(i.column, i.kind) for i in assess(ref, calm).issues] == [("z", "all_null")]
    strict = QualityThresholds(out_of_range=0.1)
    assert "out_of_range" not in {i.kind for i in assess(ref, cur, thresholds=strict).issues}
    assert assess(ref, cur.slice(0, 10)).status == "insufficient_data"


def test_the_module_level_api(configure_default: Callable[..., Workspace]) -> None:
    import driftline as dl

    ws = configure_default(async_logging=False)
    svc = ws.service("monitoring", MonitoringService)
    ids = day(svc, 0)
    dl.monitoring.fit_traffic_reference("churn", since=START, until=START + DAY)
    result = dl.monitoring.log_labels(
        "churn", pd.DataFrame({"request_id": ids, "label": [1, 0] * (N // 2)})
    )
    assert result.inserted == N
    perf = dl.monitoring.performance("churn", since=START, until=START + DAY)
    assert [(w.kind, w.coverage) for w in perf.windows] == [("realized", 1.0), ("estimated", 1.0)]
    res = dl.monitoring.check("churn", since=START, until=START + DAY, thresholds={"min_rows": 50})
    assert res.windows[0].status == "ok"
    assert not res.to_frame().empty
    empty = dl.monitoring.performance("nobody", since=START, until=START + DAY)
    assert (empty.task, [w.status for w in empty.windows]) == ("unknown", ["insufficient_data"])
