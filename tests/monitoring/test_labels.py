"""Labels: stored by request id on SQLite and PostgreSQL, replaced, unknown ids counted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from traffic_log import write_log

from driftline.cli import main
from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.monitoring import MonitoringService
from driftline.workspace import Workspace

START = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def svc(workspace: Workspace) -> MonitoringService:
    service: MonitoringService = workspace.service("monitoring", MonitoringService)
    assert service.log_root is not None
    frame = pd.DataFrame({"x": np.arange(50, dtype=float)})
    write_log(service.log_root, "churn", START, frame, np.linspace(0, 1, 50))
    return service


def stored(svc: MonitoringService) -> dict[tuple[str, int], Any]:
    assert svc.labels is not None
    t = svc.labels.read_labels("churn").to_pylist()
    return {(r["request_id"], r["row"]): r["value_num"] for r in t}


def test_labels_are_stored_replaced_and_unknown_ids_counted(svc: MonitoringService) -> None:
    first = svc.log_labels(
        "churn", pd.DataFrame({"request_id": [f"r{i}" for i in range(10)], "label": [1] * 10})
    )
    assert (first.received, first.inserted, first.replaced, first.unknown) == (10, 10, 0, 0)
    again = svc.log_labels(
        "churn",
        pd.DataFrame({"request_id": ["r0", "r1", "r1", "zz9", "r20"], "label": [0, 0, 1, 1, 0]}),
    )
    # r0 replaced; r1 twice in the batch (the last wins) and stored before; zz9 unknown
    assert (again.received, again.inserted, again.replaced) == (5, 2, 3)
    assert (again.unknown, again.unknown_examples) == (1, ("zz9",))
    labels = stored(svc)
    assert len(labels) == 12
    assert (labels["r0", 0], labels["r1", 0], labels["zz9", 0]) == (0.0, 1.0, 1.0)


def test_a_large_batch_is_written_in_bulk(svc: MonitoringService) -> None:
    n = 20_000
    ids = [f"r{i % 50}" for i in range(n)]
    rows = [i // 50 for i in range(n)]
    frame = pa.table({"request_id": ids, "row": rows, "label": np.arange(n, dtype=float)})
    result = svc.log_labels("churn", frame)
    assert (result.inserted, result.replaced, result.unknown) == (n, 0, 0)
    result = svc.log_labels("churn", frame.slice(0, 7_000))
    assert (result.inserted, result.replaced) == (0, 7_000)
    assert len(stored(svc)) == n


@pytest.mark.parametrize(
    ("frame", "column"),
    [
        (pd.DataFrame({"request_id": [1.5], "label": [1]}), "request_id"),
        (pd.DataFrame({"request_id": ["r1"], "label": [[1, 2]]}), "label"),
        (pd.DataFrame({"request_id": ["r1"], "label": [None]}), "label"),
        (pd.DataFrame({"request_id": ["r1"], "label": [float("nan")]}), "label"),
        (pd.DataFrame({"request_id": ["r1"], "label": [1], "time": [1.5]}), "time"),
        (pd.DataFrame({"request_id": ["r1"], "label": [1], "time": ["yesterday"]}), "time"),
        (pd.DataFrame({"request_id": ["r1"], "label": [1], "row": [-1]}), "row"),
        (pd.DataFrame({"request_id": ["r1"]}), "label"),
        (pd.DataFrame({"request_id": ["r1"], "label": [1], "extra": [2]}), "extra"),
    ],
)
def test_wrong_label_columns_are_named(
    svc: MonitoringService, frame: pd.DataFrame, column: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=column):
        svc.log_labels("churn", frame)
    assert stored(svc) == {}


def test_labels_of_a_deployment_without_predictions_are_refused(svc: MonitoringService) -> None:
    with pytest.raises(NotFoundError, match="no predictions"):
        svc.log_labels("nope", pd.DataFrame({"request_id": ["r1"], "label": [1]}))


def test_labels_ingest_command(
    configure_default: Callable[..., Workspace], tmp_path: Path, capsys: Any
) -> None:
    import json

    ws = configure_default(async_logging=False)
    service: MonitoringService = ws.service("monitoring", MonitoringService)
    assert service.log_root is not None
    write_log(service.log_root, "churn", START, pd.DataFrame({"x": [1.0, 2.0]}), np.ones(2))
    where = ["--home", str(ws.settings.home), "--uri", ws.settings.uri]
    pd.DataFrame(
        {
            "request_id": ["r0", "r1", "nope"],
            "label": ["yes", "no", "yes"],
            "time": ["2025-03-02T00:00:00Z"] * 3,
        }
    ).to_csv(tmp_path / "labels.csv", index=False)
    pq.write_table(pa.table({"request_id": ["r0"], "label": ["no"]}), tmp_path / "more.parquet")

    code, out, _ = run(capsys, *where, "labels", "ingest", "churn", "labels.csv")
    assert code == 0
    assert "3 labels for churn: 3 new, 0 replaced" in out
    assert "1 for unknown requests" in out
    assert "nope" in out
    code, out, _ = run(capsys, *where, "labels", "ingest", "churn", "more.parquet", "--json")
    result = json.loads(out)
    assert result == {
        "deployment": "churn",
        "received": 1,
        "inserted": 0,
        "replaced": 1,
        "unknown": 0,
        "unknown_examples": [],
    }
    assert service.labels is not None
    labels = service.labels.read_labels("churn").to_pylist()
    assert {r["request_id"]: r["value_text"] for r in labels} == {
        "r0": "no",
        "r1": "no",
        "nope": "yes",
    }
    pd.DataFrame({"request_id": ["r0"], "label": [[1]]}).to_parquet(tmp_path / "bad.parquet")
    code, _, err = run(capsys, *where, "labels", "ingest", "churn", "bad.parquet")
    assert code != 0
    assert "'label'" in err


def run(capsys: Any, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
