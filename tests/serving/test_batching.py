"""Micro-batching batches under concurrent load, sheds load with 503 + Retry-After, and
SIGTERM drains the prediction log: every answered request is a row."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from tests.serving.conftest import ServeProcess, reset_default_workspace

pytestmark = [pytest.mark.server, pytest.mark.slow]

ROW = {"f0": 0.5, "f1": 1.0, "f2": -0.25, "f3": 2.0}


@pytest.fixture(scope="module")
def batched(sqlite_home: dict[str, Any]) -> Iterator[ServeProcess]:
    proc = ServeProcess(
        sqlite_home["home"], "churn/1", "--deployment", "churn-batched",
        "--max-batch-size", "32", "--max-latency-ms", "20", "--max-queue", "4",
        "--timeout-ms", "10000",
    )  # fmt: skip
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


def _post(url: str, row: dict[str, Any]) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return client.post(f"{url}/predict", json={"inputs": [row]})


def _histogram(text: str) -> tuple[float, float]:
    count = sum(
        float(v) for v in re.findall(r"driftline_serving_batch_rows_count\{[^}]*\} (\S+)", text)
    )
    total = sum(
        float(v) for v in re.findall(r"driftline_serving_batch_rows_sum\{[^}]*\} (\S+)", text)
    )
    return count, total


def test_batching_lifecycle(batched: ServeProcess, sqlite_home: dict[str, Any]) -> None:
    answered: list[httpx.Response] = []
    # 1. Concurrent requests are coalesced: fewer predict calls than rows.
    # (Four clients: never more than four requests wait, the queue's bound here.)
    with ThreadPoolExecutor(4) as pool:
        answered += list(pool.map(lambda _: _post(batched.url, ROW), range(160)))
    assert {r.status_code for r in answered} == {200}
    assert {r.json()["predictions"][0] for r in answered} == {1}
    calls, rows = _histogram(httpx.get(f"{batched.url}/metrics").text)
    assert rows == 160
    assert calls < rows, "no batch held more than one row"

    # 2. A bad row fails alone; the rows batched with it are answered.
    mixed = [ROW, {**ROW, "f0": 13}, {**ROW, "f1": "x"}, ROW]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda row: _post(batched.url, row), mixed))
    answered += results
    assert [r.status_code for r in results] == [200, 500, 400, 200]
    assert results[1].json()["error"]["type"] == "ZeroDivisionError"

    # 3. Overload: a slow request holds the model; the queue fills and requests are shed.
    slow = {**ROW, "f0": 7, "f1": 3.0}  # the model sleeps 3 s on it
    with ThreadPoolExecutor(16) as pool:
        first = pool.submit(_post, batched.url, slow)
        deadline = time.monotonic() + 30
        while httpx.get(f"{batched.url}/status").json()["batching"]["predicting_rows"] == 0:
            assert time.monotonic() < deadline, "the slow call never ran"
            assert not first.done(), first.result().text
            time.sleep(0.02)
        rest = list(pool.map(lambda _: _post(batched.url, ROW), range(16)))
        phase = [first.result(), *rest]
        answered += phase
    shed = [r for r in phase if r.status_code == 503]
    assert shed, [r.status_code for r in rest]
    assert all(r.headers["retry-after"] == "1" for r in shed)
    assert all(r.json()["error"]["code"] == "OVERLOADED" for r in shed)
    assert {r.status_code for r in rest} <= {200, 503}

    # 4. SIGTERM drains the prediction log: one row per answered request.
    # uvicorn shuts down gracefully, then re-raises the signal it caught: -15 is a clean exit.
    assert batched.stop() in (0, -15)
    import driftline as dl

    dl.configure(home=sqlite_home["home"])
    try:
        log = dl.serving.predictions("churn-batched")
    finally:
        reset_default_workspace()
    assert len(log) == len(answered)
    assert set(log["request_id"]) == {r.headers["x-request-id"] for r in answered}
    by_status = log["status"].value_counts().to_dict()
    assert by_status[503] == len(shed)
    assert by_status[400] == 1
    row = log[log["status"] == 500].iloc[0]
    assert row["error"].startswith("ZeroDivisionError")
    assert row["inputs"] == '{"f0":[13.0],"f1":[1.0],"f2":[-0.25],"f3":[2.0]}'
    ok = log[log["status"] == 200].iloc[0]
    assert ok["outputs"] == "[1]"
    assert (ok["model"], ok["model_version"], ok["variant"]) == ("churn", 1, "stable")
    assert str(log["time"].dt.tz) == "UTC"
