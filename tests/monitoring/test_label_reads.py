"""Reading a time range of labels gives the same labels whichever way the database reads
them (on SQLite: by the time index for a narrow range, by a table scan for a wide one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from traffic_log import write_log

from driftline.monitoring import MonitoringService
from driftline.monitoring import _sql as label_sql
from driftline.workspace import Workspace

START = datetime(2025, 3, 1, tzinfo=UTC)
HOUR_MS = 3_600_000


def _rows(table: object) -> set[tuple[object, ...]]:
    return {tuple(r.values()) for r in table.to_pylist()}  # type: ignore[attr-defined]


@pytest.mark.parametrize("share", [1, 10_000])  # 1: only a range of every label is scanned
def test_a_range_of_labels_reads_the_same_by_index_or_by_scan(
    workspace: Workspace, share: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = workspace.service("monitoring", MonitoringService)
    assert svc.log_root is not None
    assert svc.labels is not None
    rng = np.random.default_rng(0)
    n = 400
    ids = write_log(svc.log_root, "churn", START, pd.DataFrame({"x": rng.random(n)}), rng.random(n))
    write_log(svc.log_root, "other", START, pd.DataFrame({"x": rng.random(50)}), rng.random(50))
    order = rng.permutation(n)  # labels ingested out of time order
    times = [START + timedelta(hours=int(h)) for h in rng.integers(0, 240, n)]
    svc.log_labels(
        "churn",
        pd.DataFrame(
            {
                "request_id": [ids[i] for i in order],
                "label": rng.integers(0, 2, n)[order],
                "time": [times[i] for i in order],
            }
        ),
    )
    everything = svc.labels.read_labels("churn")
    assert everything.num_rows == n
    monkeypatch.setattr(label_sql, "_SCAN_SHARE", share)
    start_ms = int(START.timestamp() * 1000)
    for lo, hi in [(0, 240), (10, 20), (100, 101), (230, 500)]:
        since, until = start_ms + lo * HOUR_MS, start_ms + hi * HOUR_MS
        got = svc.labels.read_labels("churn", since_ms=since, until_ms=until)
        want = [r for r in everything.to_pylist() if since <= r["label_time"] < until]
        assert _rows(got) == {tuple(r.values()) for r in want}
        assert got.schema == everything.schema
    assert svc.labels.read_labels("other", since_ms=0, until_ms=2**62).num_rows == 0
