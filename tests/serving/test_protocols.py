"""The three protocols against a real `driftline serve` process: /predict, MLflow's
scoring protocol (the payloads its client sends), Open Inference Protocol v2."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.server

ROW = {"f0": 0.5, "f1": 1.0, "f2": -0.25, "f3": 2.0}
ROWS = [ROW, {"f0": -2.0, "f1": -1.0, "f2": 0.0, "f3": 0.0}]
EXPECTED = [1, 0]  # v1 learned y = f0 + 0.5 f1 > 0


def test_predict_records_and_columns(server: Any) -> None:
    r = httpx.post(f"{server.url}/predict", json={"inputs": ROWS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predictions"] == EXPECTED
    assert body["model"] == "churn/1"
    assert body["variant"] == "stable"
    assert body["request_id"] == r.headers["x-request-id"]
    assert len(body["request_id"]) == 32  # a UUIDv7
    columns = {k: [row[k] for row in ROWS] for k in ROW}
    r = httpx.post(f"{server.url}/predict", json={"inputs": columns})
    assert r.json()["predictions"] == EXPECTED


def test_the_clients_request_id_is_echoed(server: Any) -> None:
    r = httpx.post(
        f"{server.url}/predict", json={"inputs": [ROW]}, headers={"X-Request-ID": "order-42"}
    )
    assert r.json()["request_id"] == "order-42"
    assert r.headers["x-request-id"] == "order-42"


def _mlflow_split() -> dict[str, Any]:
    # What mlflow's scoring client sends for a DataFrame: df.to_dict(orient="split").
    import pandas as pd

    df = pd.DataFrame(ROWS)
    return {"dataframe_split": df.to_dict(orient="split")}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(_mlflow_split(), id="dataframe_split"),
        pytest.param(
            {"dataframe_split": {"columns": list(ROW), "data": [list(r.values()) for r in ROWS]}},
            id="split-no-index",
        ),
        pytest.param({"dataframe_records": ROWS}, id="dataframe_records"),
        pytest.param({"instances": ROWS}, id="instances-records"),
        pytest.param({"instances": [list(r.values()) for r in ROWS]}, id="instances-rows"),
        pytest.param({"inputs": {k: [r[k] for r in ROWS] for k in ROW}}, id="inputs-columns"),
        pytest.param({"inputs": ROWS, "params": {"threshold": 0.5}}, id="inputs-with-params"),
    ],
)
def test_mlflow_invocations(server: Any, payload: dict[str, Any]) -> None:
    r = httpx.post(
        f"{server.url}/invocations",
        content=json.dumps(payload),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": EXPECTED}


def test_mlflow_csv_and_probes(server: Any) -> None:
    csv = "f0,f1,f2,f3\n0.5,1.0,-0.25,2.0\n-2.0,-1.0,0.0,0.0\n"
    r = httpx.post(f"{server.url}/invocations", content=csv, headers={"Content-Type": "text/csv"})
    assert r.json() == {"predictions": EXPECTED}
    assert httpx.get(f"{server.url}/ping").status_code == 200
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert httpx.get(f"{server.url}/version").text


def test_mlflow_errors_are_mlflow_shaped(server: Any) -> None:
    r = httpx.post(f"{server.url}/invocations", json={"data": ROWS})
    assert r.status_code == 400
    assert r.json()["error_code"] == "BAD_REQUEST"
    assert "dataframe_split" in r.json()["message"]
    r = httpx.post(f"{server.url}/invocations", content="x", headers={"Content-Type": "text/xml"})
    assert r.status_code == 415


def test_oip_metadata_and_health(server: Any) -> None:
    assert httpx.get(f"{server.url}/v2").json()["name"] == "driftline"
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
    meta = httpx.get(f"{server.url}/v2/models/churn").json()
    assert meta["name"] == "churn"
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": f, "datatype": "FP64", "shape": [-1]} for f in ROW]
    assert meta["parameters"]["driftline"]["alias"] == "champion"
    assert httpx.get(f"{server.url}/v2/models/churn/versions/1/ready").json()["ready"] is True
    assert httpx.get(f"{server.url}/v2/models/churn/versions/2").status_code == 404
    r = httpx.get(f"{server.url}/v2/models/nope")
    assert r.status_code == 404
    assert isinstance(r.json()["error"], str)


def test_oip_infer_one_tensor_per_column(server: Any) -> None:
    request = {
        "id": "req-1",
        "inputs": [
            {"name": k, "shape": [2], "datatype": "FP64", "data": [r[k] for r in ROWS]} for k in ROW
        ],
    }
    r = httpx.post(f"{server.url}/v2/models/churn/versions/1/infer", json=request)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "req-1"
    assert r.headers["x-request-id"] == "req-1"
    assert (body["model_name"], body["model_version"]) == ("churn", "1")
    [output] = body["outputs"]
    assert output["shape"] == [2]
    assert output["data"] == EXPECTED
    assert output["datatype"] == "INT64"


def test_oip_infer_one_matrix_nested_or_flat(server: Any) -> None:
    rows = [list(r.values()) for r in ROWS]
    flat = [v for row in rows for v in row]
    for data in (rows, flat):
        tensor = {"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": data}
        r = httpx.post(f"{server.url}/v2/models/churn/infer", json={"inputs": [tensor]})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == EXPECTED


def test_oip_errors(server: Any) -> None:
    url = f"{server.url}/v2/models/churn/infer"
    bad_shape = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [1]}]}
    r = httpx.post(url, json=bad_shape)
    assert r.status_code == 400
    assert "needs 8 values" in r.json()["error"]
    text = {"inputs": [{"name": "f0", "shape": [1], "datatype": "FP64", "data": ["1.5"]}]}
    assert httpx.post(url, json=text).status_code == 400
    assert (
        httpx.post(f"{server.url}/v2/models/churn/versions/9/infer", json=bad_shape).status_code
        == 404
    )


def test_metrics_count_requests_and_rows(server: Any) -> None:
    httpx.post(f"{server.url}/predict", json={"inputs": ROWS})
    text = httpx.get(f"{server.url}/metrics").text
    assert 'driftline_serving_requests_total{deployment="churn",endpoint="predict"' in text
    assert "driftline_serving_request_latency_seconds_bucket" in text
    assert "driftline_serving_batch_rows_bucket" in text
    assert "driftline_serving_prediction_log_rows_dropped_total" in text
    assert "driftline_serving_queue_depth" in text
