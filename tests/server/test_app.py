"""The server's system routes, error envelope and limits, against a real process."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.server


def test_health_ready_and_info(live_server) -> None:
    assert httpx.get(f"{live_server.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{live_server.url}/ready").json() == {"status": "ready"}
    info = httpx.get(f"{live_server.url}/api/v1/info").json()
    assert info["api"] == "v1"
    assert info["hash_algorithm"] == "blake3"
    assert info["auth"] is False


def test_openapi_document_lists_the_api(live_server) -> None:
    document = httpx.get(f"{live_server.url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/info" in document["paths"]


def test_unknown_route_gets_the_json_envelope(live_server) -> None:
    response = httpx.get(f"{live_server.url}/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert "/api/v1/no-such-thing" in response.json()["error"]["message"]


def test_unknown_mlflow_route_is_a_non_json_404(live_server) -> None:
    # The MLflow client reads a non-JSON 404 as "endpoint not implemented" and falls back.
    response = httpx.post(f"{live_server.url}/api/2.0/mlflow/not-a-route", json={})
    assert response.status_code == 404
    assert not response.headers["content-type"].startswith("application/json")
    assert response.text == "Endpoint not implemented"


def test_wrong_method_is_405_in_the_envelope(live_server) -> None:
    response = httpx.post(f"{live_server.url}/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_oversized_body_is_413_and_the_server_keeps_serving(live_server) -> None:
    response = httpx.post(f"{live_server.url}/api/v1/info", content=b"x" * (33 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "REQUEST_TOO_LARGE"
    assert httpx.get(f"{live_server.url}/health").status_code == 200


def test_cors_is_off_unless_an_origin_is_allowed(live_server, server_factory) -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
    }
    closed = httpx.options(f"{live_server.url}/api/v1/info", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    plain = httpx.get(f"{live_server.url}/api/v1/info", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in plain.headers

    opened = server_factory(args=("--cors-origin", "https://ui.example"))
    allowed = httpx.get(f"{opened.url}/api/v1/info", headers={"Origin": "https://ui.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
    other = httpx.get(f"{opened.url}/api/v1/info", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_a_second_server_on_the_same_database_serves_what_the_first_stored(
    server_factory, tmp_path
) -> None:
    # Two server processes (and their workers) on one SQLite file: what one stores is
    # visible through the other at once (no per-process caching of stored state).
    first = server_factory(workers=2)
    second = server_factory(uri=first.uri)
    created = httpx.post(f"{first.url}/api/v1/experiments", json={"name": "shared"})
    assert created.status_code == 201, created.text
    experiment_id = created.json()["id"]
    seen = httpx.get(f"{second.url}/api/v1/experiments/{experiment_id}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["name"] == "shared"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/experiments", b'{"name": "a\\u0000b"}'),
        ("POST", "/api/v1/experiments", b'{"name": "a\x00b"}'),
        ("GET", "/api/v1/runs/abc%00def", None),
        ("GET", "/api/v1/experiments/by-name?name=a%00", None),
    ],
    ids=["json-escape", "raw-byte", "path", "query"],
)
def test_nul_in_text_is_a_400_never_a_database_error(live_server, method, path, body) -> None:
    response = httpx.request(
        method,
        f"{live_server.url}{path}",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert "NUL" in response.json()["error"]["message"]


def test_an_escaped_backslash_before_u0000_is_ordinary_text(live_server) -> None:
    body = b'{"name": "literally \\\\u0000"}'  # the 7 characters \\u0000: no NUL
    response = httpx.post(
        f"{live_server.url}/api/v1/experiments",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "literally \\u0000"


def test_users_and_tokens_are_not_managed_on_a_server_without_auth(live_server) -> None:
    # Accounts made on an open server would be valid credentials once --auth is turned on.
    for method, path, body in [
        ("POST", "/api/v1/users", {"name": "eve", "role": "admin"}),
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/tokens", {"user": "eve"}),
    ]:
        response = httpx.request(method, f"{live_server.url}{path}", json=body)
        assert response.status_code == 403, response.text
        assert "--auth" in response.json()["error"]["message"]


def test_uploads_may_hold_nul_bytes_whatever_the_json_limit(server_factory) -> None:
    # Raw bytes are exempt from the NUL rule by route, not by which limit happens to apply
    # (here the JSON limit equals the upload limit).
    from driftline.core.hashing import hash_bytes

    server = server_factory(args=("--max-body-mb", "8192"))
    data = b"\x00binary\x00" * 100
    digest = hash_bytes(data, "blake3")
    stored = httpx.put(f"{server.url}/api/v1/artifacts/objects/{digest}", content=data)
    assert stored.status_code < 300, stored.text
