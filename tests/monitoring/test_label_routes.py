"""Labels, performance and checks over REST on a real ``driftline server --auth``
process, and through a remote workspace (Python API and ``driftline labels ingest``):
bodies are JSON, Arrow or Parquet; a bad body is a 400 naming the column, an oversized
one a 413; ingesting needs ``edit`` on the deployment's model, reading ``read``."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from monitor_traffic import frame
from test_monitor_routes import bootstrap_admin, cli
from traffic_log import write_log

from driftline.api.client import ApiClient
from driftline.auth._http import HttpUserAdmin
from driftline.monitoring import MonitoringService
from driftline.workspace import Workspace

API = "/api/v1/monitoring"
DAY = timedelta(days=1)
# Labels are stamped when they arrive and join predictions at most 14 days older.
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - 3 * DAY
N = 400


def traffic(root: Path) -> list[str]:
    """Two days of a binary classifier's traffic (probabilities); the request ids."""
    ids: list[str] = []
    for k in range(2):
        data = frame(N, seed=k)
        p = 1 / (1 + np.exp(-(data["age"].to_numpy() - 40.0) / 5.0))
        ids += write_log(
            str(root / ".driftline" / "predictions"), "churn", START + k * DAY, data,
            np.column_stack([1 - p, p]), spacing=DAY / (2 * N), prefix=f"d{k}-",
        )  # fmt: skip
    return ids


def labels(ids: list[str], seed: int) -> pd.DataFrame:
    """Labels that follow the model's inputs (a useful, imperfect model)."""
    day = int(ids[0].split("-")[0][1:])
    age = frame(N, seed=day)["age"].to_numpy()
    first = int(ids[0].split("-")[1])
    age = age[first : first + len(ids)]
    rng = np.random.default_rng(seed)
    y = (rng.random(len(ids)) < 1 / (1 + np.exp(-(age - 40.0) / 5.0))).astype(np.int64)
    return pd.DataFrame({"request_id": ids, "label": y})


def parquet(table: pd.DataFrame | pa.Table) -> bytes:
    sink = io.BytesIO()
    data = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table)
    pq.write_table(data, sink)
    return sink.getvalue()


@pytest.mark.server
def test_labels_performance_and_checks_over_rest(
    server_factory: Callable[..., Any],
    open_workspace: Callable[..., Workspace],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    server = server_factory(args=("--auth", "--max-body-mb", "1"))
    admin_token = bootstrap_admin(server.root, server.uri)
    ws = open_workspace(
        server.uri, home=server.root / ".driftline", artifact_root=str(server.root / "artifacts")
    )
    train = frame(2_000, seed=7)
    train["churned"] = np.arange(len(train)) % 2  # a training table holds the target
    ws.service("monitoring", MonitoringService).fit_reference(train, name="train")
    ids = traffic(server.root)

    admin = HttpUserAdmin(ApiClient(server.url, token=admin_token))
    admin.create_user("vic", role="viewer")
    viewer = admin.create_token("vic").secret
    admin.create_user("opal", role="viewer")
    admin.grant("opal", model="churn", permission="edit")
    operator = admin.create_token("opal").secret
    admin.close()

    def post(path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return httpx.post(server.url + API + path, headers=headers, timeout=60, **kwargs)

    first = labels(ids[:100], seed=1)
    records = {"labels": [*first.to_dict("records"), {"request_id": "ghost", "label": 1}]}
    assert post("/labels/churn", viewer, json=records).status_code == 403
    done = post("/labels/churn", operator, json=records)
    assert done.status_code == 200, done.text
    assert done.json() == {
        "deployment": "churn", "received": 101, "inserted": 101, "replaced": 0,
        "unknown": 1, "unknown_examples": ["ghost"],
    }  # fmt: skip
    # a later label of the same request replaces the earlier one (Parquet body)
    again = post("/labels/churn", operator, content=parquet(first.head(10)),
                 headers={"Content-Type": "application/vnd.apache.parquet"})  # fmt: skip
    assert again.status_code == 200, again.text
    assert (again.json()["inserted"], again.json()["replaced"]) == (0, 10)

    def refused(body: Any, kind: str = "application/json") -> tuple[int, str]:
        if not isinstance(body, bytes):
            import orjson

            body = orjson.dumps(body)
        answer = post("/labels/churn", operator, content=body, headers={"Content-Type": kind})
        return answer.status_code, answer.json()["error"]["message"]

    code, message = refused(
        {"labels": [{"request_id": "a", "label": 1}, {"request_id": "b", "label": "x"}]}
    )
    assert code == 400
    assert "'label'" in message
    code, message = refused({"labels": [{"request_id": "a"}]})
    assert (code, "missing ['label']" in message) == (400, True)
    code, message = refused({"labels": [{"request_id": "a\x00", "label": 1}]})
    assert (code, "'request_id'" in message) == (400, True)
    numbers = parquet(pa.table({"request_id": [1.5], "label": [1]}))
    code, message = refused(numbers, "application/vnd.apache.parquet")
    assert (code, "Column 'request_id' must hold text" in message) == (400, True), message
    code, message = refused(b"not parquet", "application/vnd.apache.parquet")
    assert (code, "Cannot read the labels body as parquet" in message) == (400, True)
    code, message = refused(b"request_id,label\na,1", "text/csv")
    assert (code, "application/vnd.apache.arrow.stream" in message) == (400, True)
    big = pa.table({"request_id": [f"r{i:07d}" for i in range(120_000)], "label": [1] * 120_000})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, big.schema) as writer:
        writer.write_table(big)
    assert sink.getvalue().size > 1024 * 1024
    code, message = refused(sink.getvalue().to_pybytes(), "application/vnd.apache.arrow.stream")
    assert code == 413, message

    # A remote workspace: the Python API forwards labels, performance and checks.
    remote = open_workspace(server.url, token=operator, home=tmp_path / "client")
    svc = remote.service("monitoring", MonitoringService)
    ingest = svc.log_labels("churn", labels(ids[100:N], seed=2))
    assert (ingest.received, ingest.inserted, ingest.unknown) == (N - 100, N - 100, 0)
    report = svc.performance("churn", window="1d", since=START, until=START + 2 * DAY)
    realized = [w for w in report.windows if w.kind == "realized"]
    assert [w.coverage for w in realized] == [1.0, 0.0]
    auc = realized[0].metrics["roc_auc"]
    assert 0.6 < auc < 1.0
    assert report.task == "binary"
    result = svc.check(
        "churn", window="1d", since=START, until=START + 2 * DAY, reference="train",
        checks=("drift", "quality", "performance"),
    )  # fmt: skip
    assert result.reference == "dataframe"  # the source "train" was fitted on
    assert [w.rows for w in result.windows] == [N, N]
    first_day = result.windows[0]
    assert first_day.quality is not None
    assert first_day.quality.issues == ()  # the reference's target is not a missing column
    assert first_day.drift is not None
    assert "churned" not in first_day.drift.columns
    assert [p.metrics.get("roc_auc") for p in first_day.performance if p.kind == "realized"] == [
        pytest.approx(auc)
    ]
    viewer_svc = open_workspace(server.url, token=viewer, home=tmp_path / "viewer").service(
        "monitoring", MonitoringService
    )
    seen = viewer_svc.performance("churn", window="1d", since=START, until=START + 2 * DAY)
    assert seen.windows == report.windows  # reading needs only read

    # The CLI against the team server.
    path = tmp_path / "labels.parquet"
    path.write_bytes(parquet(labels(ids[N : N + 50], seed=3)))
    monkeypatch.setenv("DRIFTLINE_URI", server.url)
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "cli"))
    monkeypatch.setenv("DRIFTLINE_TOKEN", viewer)
    code, _, err = cli(capsys, "labels", "ingest", "churn", str(path))
    assert code == 1
    assert "PermissionDeniedError" in err
    monkeypatch.setenv("DRIFTLINE_TOKEN", operator)
    code, out, err = cli(capsys, "labels", "ingest", "churn", str(path), "--json")
    assert code == 0, err
    assert '"inserted": 50' in out
