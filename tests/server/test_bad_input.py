"""Single requests that once ended in a 500: each is now a 400 that says what was wrong.

Every input goes to a real server process, through the native route and the MLflow route
that take it. A 500 that does happen (a bug) is an error envelope on a connection that
stays usable.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.server

MLFLOW = "/api/2.0/mlflow"


@pytest.fixture
def experiment_id(server: Any) -> str:
    """An MLflow experiment with one run that has a metric, so searches reach the database."""
    created = httpx.post(f"{server.url}{MLFLOW}/experiments/create", json={"name": "probe"})
    assert created.status_code == 200, created.text
    eid = str(created.json()["experiment_id"])
    run = httpx.post(f"{server.url}{MLFLOW}/runs/create", json={"experiment_id": eid})
    run_id = run.json()["run"]["info"]["run_id"]
    logged = httpx.post(
        f"{server.url}{MLFLOW}/runs/log-metric",
        json={"run_id": run_id, "key": "a", "value": 2.0, "timestamp": 1, "step": 0},
    )
    assert logged.status_code == 200, logged.text
    return eid


def native_search(server: Any, filter_text: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/runs/search", json={"filter": filter_text}, timeout=60)


def mlflow_search(server: Any, experiment_id: str, filter_text: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}{MLFLOW}/runs/search",
        json={"experiment_ids": [experiment_id], "filter": filter_text},
        timeout=60,
    )


def native_message(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    return str(error["message"])


def mlflow_message(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    return str(body["message"])


# -- filters ------------------------------------------------------------------------------

PROBES = [
    ("parens", "(" * 500 + "metrics.a > 1" + ")" * 500, "nests deeper than 16 levels"),
    ("not", "not " * 2000 + "metrics.a > 1", "nests deeper than 16 levels"),
    ("and", " and ".join(["metrics.a > 1"] * 3000), "more than 100 comparisons"),
    ("fields", " or ".join(f"metrics.m{i} > 1" for i in range(41)), "more than 40 distinct"),
    ("time", "attributes.start_time > 99999999999999999999999", "number out of range"),
    ("int", "metrics.a > " + "9" * 5000, "number out of range"),
    ("time-inf", "attributes.end_time < 1e999", "number out of range"),
    ("literal", "tags.t = '" + "x" * 8001 + "'", "at most 8,000 characters"),
    ("key", "tags." + "k" * 251 + " = 'x'", "key is at most 250 characters"),
]


@pytest.mark.parametrize(("text", "message"), [p[1:] for p in PROBES], ids=[p[0] for p in PROBES])
def test_a_bad_filter_is_a_400_on_both_search_routes(
    server: Any, experiment_id: str, text: str, message: str
) -> None:
    native = native_message(native_search(server, text))
    assert message in native
    assert "position" in native
    assert len(native) < 1000  # a long filter is shown around the error, not whole
    assert message in mlflow_message(mlflow_search(server, experiment_id, text))


def test_a_filter_at_the_limits_is_answered(server: Any, experiment_id: str) -> None:
    deep = "(" * 16 + "metrics.a > 1" + ")" * 16
    many = " and ".join(["metrics.a > 1"] * 100)
    for text in (deep, many, "metrics.a < 1e999", "attributes.start_time > -9223372036854775807"):
        found = native_search(server, text)
        assert found.status_code == 200, found.text
        assert len(found.json()["runs"]) == 1
        found = mlflow_search(server, experiment_id, text)
        assert found.status_code == 200, found.text
        assert len(found.json()["runs"]) == 1


def test_orderings_and_other_mlflow_searches_are_bounded(server: Any, experiment_id: str) -> None:
    native = httpx.post(
        f"{server.url}/api/v1/runs/search", json={"order_by": ["metrics." + "k" * 251]}
    )
    assert "key is at most 250" in native_message(native)
    ordered = httpx.post(
        f"{server.url}{MLFLOW}/runs/search",
        json={"experiment_ids": [experiment_id], "order_by": ["start_time"] * 21},
    )
    assert "at most 20 terms" in mlflow_message(ordered)
    conditions = " and ".join(["name = 'x'"] * 101)
    for method, path, params in [
        ("POST", "/experiments/search", {"filter": conditions}),
        ("GET", "/registered-models/search", {"filter": conditions}),
        ("GET", "/model-versions/search", {"filter": conditions}),
        ("POST", "/experiments/search", {"order_by": ["name"] * 21}),
    ]:
        kwargs: dict[str, Any] = {"json": params} if method == "POST" else {"params": params}
        response = httpx.request(method, f"{server.url}{MLFLOW}{path}", **kwargs)
        message = mlflow_message(response)
        assert "at most 100 conditions" in message or "at most 20 terms" in message, path
    too_many = httpx.post(
        f"{server.url}{MLFLOW}/runs/search",
        json={"experiment_ids": [str(i) for i in range(1001)]},
    )
    assert "at most 1000 experiments" in mlflow_message(too_many)


# -- lone surrogates ----------------------------------------------------------------------


def post_raw(server: Any, path: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.url}{path}", content=body, headers={"Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    "value",
    [b'"x\\ud800"', b'"\\udc00y"', b'"\\ud800\\ud800\\udc00"', b'"\\\\\\ud800"', b'"\xed\xa0\x80"'],
    ids=["high", "low", "high-then-pair", "after-escaped-backslash", "utf8-encoded"],
)
def test_a_lone_surrogate_is_a_400_on_every_route(
    server: Any, experiment_id: str, value: bytes
) -> None:
    run = httpx.post(f"{server.url}{MLFLOW}/runs/create", json={"experiment_id": experiment_id})
    run_id = run.json()["run"]["info"]["run_id"].encode()
    mlflow_probes = [
        ("/experiments/create", b'{"name": ' + value + b"}"),
        ("/runs/set-tag", b'{"run_id": "' + run_id + b'", "key": "k", "value": ' + value + b"}"),
        ("/runs/log-parameter", b'{"run_id": "' + run_id + b'", "key": "p", "value": ' + value
         + b"}"),
        ("/registered-models/create", b'{"name": ' + value + b"}"),
    ]  # fmt: skip
    for path, body in mlflow_probes:
        message = mlflow_message(post_raw(server, MLFLOW + path, body))
        assert "surrogate" in message or "UTF-8" in message, path
    native = post_raw(server, "/api/v1/experiments", b'{"name": ' + value + b"}")
    message = native_message(native)
    assert "surrogate" in message or "UTF-8" in message
    # Nothing was stored: the run has no tag and no param, no experiment was made.
    data = httpx.get(f"{server.url}{MLFLOW}/runs/get", params={"run_id": run_id.decode()})
    assert all(tag["key"] != "k" for tag in data.json()["run"]["data"].get("tags", []))
    assert data.json()["run"]["data"].get("params", []) == []


def test_a_surrogate_split_across_chunks_is_seen(server: Any) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "x\\ud8'
        yield b'00"}'

    response = httpx.post(
        f"{server.url}{MLFLOW}/experiments/create",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert "surrogate" in mlflow_message(response)


def test_a_surrogate_pair_is_a_character_and_reads_back(server: Any, experiment_id: str) -> None:
    body = b'{"name": "smile \\ud83d\\ude00"}'
    created = post_raw(server, f"{MLFLOW}/experiments/create", body)
    assert created.status_code == 200, created.text
    got = httpx.get(
        f"{server.url}{MLFLOW}/experiments/get",
        params={"experiment_id": created.json()["experiment_id"]},
    )
    assert got.json()["experiment"]["name"] == "smile \U0001f600"


def test_text_problem_agrees_with_what_can_be_encoded() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from driftline.server.limits import text_problem

    pieces = st.sampled_from(
        ["\\", "\\\\", "\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ud7ff", "\\ue000",
         "\\u0000", "\\u0041", "u", "d800", "a", '\\"']
    )  # fmt: skip

    @settings(max_examples=3000, deadline=None)
    @given(st.lists(pieces, max_size=12))
    def check(parts: list[str]) -> None:
        text = '"' + "".join(parts) + '"'
        try:
            value = json.loads(text)
        except ValueError:
            return  # not JSON: the route refuses it anyway
        try:
            value.encode("utf-8")
            storable = "\x00" not in value
        except UnicodeEncodeError:
            storable = False
        assert (text_problem(text.encode()) is None) == storable, text

    check()


# -- a 500 keeps the connection --------------------------------------------------------


@pytest.fixture
def crashing_server(tmp_path: Path) -> Iterator[str]:
    """The real app under uvicorn on loopback, with test-only routes that raise."""
    import time

    import uvicorn

    from driftline.server.app import create_app
    from driftline.settings import Settings

    app = create_app(
        Settings.load(
            home=tmp_path / ".driftline",
            uri=f"sqlite:///{tmp_path / 'driftline.db'}",
            artifact_root=str(tmp_path / "artifacts"),
        )
    )

    def crash() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test/crash", crash)
    app.add_api_route(f"{MLFLOW}/test/crash", crash)
    # Port 0: the system picks a free one, read back once the server listens.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        assert thread.is_alive(), "the server stopped"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _local_address(response: httpx.Response) -> Any:
    return response.extensions["network_stream"].get_extra_info("client_addr")


def test_a_500_is_an_envelope_and_the_connection_stays_usable(crashing_server: str) -> None:
    with httpx.Client(base_url=crashing_server, timeout=30) as client:
        first = client.get("/health")
        assert first.status_code == 200
        address = _local_address(first)
        for path in ("/test/crash", f"{MLFLOW}/test/crash"):
            crashed = client.get(path)
            assert crashed.status_code == 500
            if path.startswith(MLFLOW):
                assert crashed.json()["error_code"] == "INTERNAL_ERROR"
                assert "RuntimeError" in crashed.json()["message"]
            else:
                assert crashed.json()["error"]["code"] == "INTERNAL_ERROR"
                assert "RuntimeError" in crashed.json()["error"]["message"]
            assert crashed.headers.get("connection", "").lower() != "close"
            # The next request goes over the same connection and is answered.
            after = client.get("/health")
            assert after.status_code == 200
            assert _local_address(after) == address
