"""Bad requests get the right status and a useful message; the server keeps serving."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.server

ROW = {"f0": 0.5, "f1": 1.0, "f2": -0.25, "f3": 2.0}


def test_malformed_json_is_400(server: Any) -> None:
    r = httpx.post(f"{server.url}/predict", content=b'{"inputs": [', headers={"X-Request-ID": "m1"})
    assert r.status_code == 400
    body = r.json()
    assert body["error"]["code"] == "INVALID_ARGUMENT"
    assert "not valid JSON" in body["error"]["message"]
    assert body["request_id"] == "m1"


def test_unknown_fields_are_400(server: Any) -> None:
    r = httpx.post(f"{server.url}/predict", json={"inputs": [ROW], "extra": 1})
    assert r.status_code == 400
    assert "'extra'" in r.json()["error"]["message"]


def test_a_wrong_column_type_names_the_column_and_type(server: Any) -> None:
    r = httpx.post(f"{server.url}/predict", json={"inputs": [{**ROW, "f2": "high"}]})
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "'f2' expects type double" in message
    assert "str values" in message
    r = httpx.post(
        f"{server.url}/predict", json={"inputs": [{k: v for k, v in ROW.items() if k != "f3"}]}
    )
    assert r.status_code == 400
    assert "missing column 'f3' (expected type double)" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/predict", json={"inputs": [{**ROW, "f0": True}]})
    assert r.status_code == 400


def test_too_many_rows_and_too_large_a_body_are_413(server: Any) -> None:
    r = httpx.post(f"{server.url}/predict", json={"inputs": [ROW] * 101})
    assert r.status_code == 413
    assert "at most 100" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/invocations", json={"dataframe_records": [ROW] * 101})
    assert r.status_code == 413
    huge = b'{"inputs": [' + b" " * (65 * 1024) + b"]}"
    assert httpx.post(f"{server.url}/predict", content=huge).status_code == 413


def test_a_model_that_raises_is_a_500_with_its_class_and_others_are_served(server: Any) -> None:
    r = httpx.post(
        f"{server.url}/predict",
        json={"inputs": [{**ROW, "f0": 13}]},
        headers={"X-Request-ID": "r13"},
    )
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["type"] == "ZeroDivisionError"
    assert "unlucky" in error["message"]
    assert r.json()["request_id"] == "r13"
    r = httpx.post(f"{server.url}/invocations", json={"dataframe_records": [{**ROW, "f0": 13}]})
    assert (r.status_code, r.json()["error_class"]) == (500, "ZeroDivisionError")
    assert httpx.post(f"{server.url}/predict", json={"inputs": [ROW]}).status_code == 200


def test_an_unknown_alias_at_start_up_exits_non_zero(sqlite_home: dict[str, Any]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "--home", str(sqlite_home["home"]),
         "serve", "churn@nosuch", "--port", "1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "NotFoundError: Cannot serve churn@nosuch" in done.stderr
    assert "champion->1" in done.stderr  # the aliases it has
    done = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "--home", str(sqlite_home["home"]),
         "serve", "churn", "--port", "1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "churn@champion, churn/3" in done.stderr
