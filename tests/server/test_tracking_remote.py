"""Tracking through a driftline server: the SDK on ``DRIFTLINE_URI=http://...``, the REST
routes as any HTTP client sees them, and idempotent logging batches.

Every test talks to a real ``driftline server`` process over loopback. What the server
stored is read from its own database (opened as the server opens it), so a test cannot
pass on a local fallback. The store contract itself runs on the HTTP backend in
tests/tracking/test_store_contract.py.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import driftline as dl
from driftline.core.clock import now_ms
from driftline.errors import ConflictError, DriftlineError, InvalidArgumentError, NotFoundError
from driftline.tracking import RunStatus, TrackingService
from driftline.tracking import _http as http_backend
from driftline.tracking._http import HttpTrackingStore, filter_text, order_text
from driftline.tracking.search import parse_filter, parse_order_by
from driftline.tracking.store import LogBatch
from driftline.workspace import Workspace

pytestmark = pytest.mark.server


@pytest.fixture
def remote(server: Any, open_workspace: Callable[..., Workspace]) -> Workspace:
    """A remote workspace with synchronous logging (each log call is one batch)."""
    ws = open_workspace(server.url)
    assert ws.is_remote
    assert ws.database is None
    return ws


def api(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A raw request, as a client that is not the SDK would send it."""
    return httpx.request(method, f"{url}/api/v1/{path}", timeout=30, **kwargs)


def post_batch(url: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return api(
        url, "POST", "batches", content=content, headers={"content-type": "application/json"}
    )


def assert_envelope(response: httpx.Response, status: int, code: str, *, has: str = "") -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["status"] == status
    assert has in error["message"]
    return str(error["message"])


def stored_points(on_server: Callable[[], Workspace], run_id: str, key: str) -> int:
    return len(on_server().tracking.store.get_metric_history(run_id, key))


# -- the module-level API against the server ------------------------------------------------


def test_dl_logs_through_the_server_with_one_post_per_batch(
    server: Any,
    on_server: Callable[[], Workspace],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIFTLINE_URI", server.url)
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "client"))
    monkeypatch.setenv("DRIFTLINE_CAPTURE_ENVIRONMENT", "false")
    monkeypatch.setenv("DRIFTLINE_FLUSH_INTERVAL", "600")  # the writer sends only on flush
    ws = dl.get_workspace()
    assert ws.is_remote
    posts: list[str] = []
    send = ws.client.request  # type: ignore[union-attr]

    def counting(method: str, path: str, **kwargs: Any) -> Any:
        posts.append(f"{method} {path}")
        return send(method, path, **kwargs)

    monkeypatch.setattr(ws.client, "request", counting)

    with dl.start_run(experiment="remote", name="sweep-1") as run:
        dl.log_param("lr", 0.1)
        dl.set_tag("team", "risk")
        before = len(posts)
        for step in range(20_000):
            dl.log_metric("loss", 1.0 / (step + 1))
        dl.log_metric("nan", math.nan)
        assert posts[before:] == []  # logging only enqueued
        assert stored_points(on_server, run.id, "loss") == 0
        dl.flush()
        assert posts[before:] == ["POST batches"]  # one batch, one request
        assert stored_points(on_server, run.id, "loss") == 20_000

    stored = on_server().tracking.get_run(run.id)
    assert stored.status is RunStatus.FINISHED
    assert stored.params == {"lr": "0.1"}
    assert stored.tags == {"team": "risk"}
    assert math.isnan(stored.metrics["nan"])
    found = dl.search_runs(
        experiment="remote", filter="metrics.loss < 0.001 and params.lr = '0.1'"
    ).items
    assert [r.id for r in found] == [run.id]
    assert dl.get_run(run.id) == stored
    history = dl.get_metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(20_000))
    assert history[-1].value == 1.0 / 20_000


def test_typed_errors_come_back_as_the_same_class(
    remote: Workspace, open_workspace: Callable[..., Workspace], server: Any
) -> None:
    tracking = remote.tracking
    with pytest.raises(NotFoundError, match=r"No run with id '0+'"):
        tracking.get_run("0" * 32)
    with pytest.raises(NotFoundError):
        tracking.log_batch("0" * 32, metrics=[("m", 1.0, 0, None)])
    with pytest.raises(InvalidArgumentError, match="position 14"):
        tracking.search_runs(filter="metrics.auc >> 3")
    # The server parses the filter text too: a syntax error there is the same 400.
    with pytest.raises(InvalidArgumentError, match="position 14"):
        remote.client.post_json("runs/search", {"filter": "metrics.auc >> 3"})  # type: ignore[union-attr]

    run = tracking.create_run("e")
    tracking.log_batch(run.id, params={"C": 1})
    other = open_workspace(server.url, user="someone-else").tracking  # another client
    with pytest.raises(ConflictError) as caught:
        other.log_batch(run.id, params={"C": 2})
    # The very message the SQL store gives embedded.
    assert str(caught.value) == f"param 'C' of run {run.id} is '1'; cannot change it to '2'"
    tracking.end_run(run.id)
    with pytest.raises(ConflictError, match="FINISHED"):
        tracking.end_run(run.id)


def test_a_param_conflict_found_by_the_background_writer_is_raised_at_flush(
    remote: Workspace, open_workspace: Callable[..., Workspace], server: Any
) -> None:
    run = remote.tracking.create_run("e")
    remote.tracking.log_batch(run.id, params={"C": "1"})
    later = open_workspace(server.url, async_logging=True, flush_interval=600).tracking
    later.log_batch(run.id, params={"C": "2"}, metrics=[("m", 1.0, 0, None)])
    with pytest.raises(ConflictError, match="cannot change it to '2'"):
        later.flush()
    assert remote.tracking.get_run(run.id).params == {"C": "1"}
    assert remote.tracking.get_run(run.id).metrics == {"m": 1.0}  # the rest was written


def test_rows_of_an_unknown_run_are_dropped_alone(
    server: Any, open_workspace: Callable[..., Workspace], on_server: Callable[[], Workspace]
) -> None:
    ws = open_workspace(server.url, async_logging=True, flush_interval=600)
    run = ws.tracking.create_run("e")
    writer = ws.tracking.writer
    assert writer is not None
    ghost = "f" * 32  # e.g. a run deleted on the server after this client checked it
    now = now_ms()
    writer.metrics.extend([(run.id, "m", 1.0, 0, now), (ghost, "m", 2.0, 0, now)])
    writer.params.append((run.id, "p", "x"))
    # The server refuses the whole batch (404); the writer re-sends it run by run.
    with pytest.raises(DriftlineError, match=f"run {ghost} were rejected"):
        ws.tracking.flush()
    assert stored_points(on_server, run.id, "m") == 1
    assert on_server().tracking.get_run(run.id).params == {"p": "x"}


def test_remote_experiments_and_runs_are_the_servers(
    remote: Workspace, on_server: Callable[[], Workspace]
) -> None:
    tracking = remote.tracking
    created = tracking.create_experiment("churn", description="who leaves", tags={"t": "1"})
    assert on_server().tracking.get_experiment("churn") == created
    run = tracking.create_run("churn", name="first", tags={"k": "v"})
    assert remote.settings.user == run.user
    child = tracking.create_run("churn", parent_id=run.id)
    assert on_server().tracking.get_run(child.id).parent_id == run.id
    tracking.delete_run(run.id)
    assert tracking.search_runs(experiments="churn").items == [tracking.get_run(child.id)]
    assert len(tracking.search_runs(experiments="churn", include_deleted=True).items) == 2
    tracking.delete_experiment("churn")
    assert tracking.list_experiments().items == []
    assert [e.name for e in on_server().tracking.list_experiments(include_deleted=True)] == [
        "churn"
    ]


# -- idempotent batches ------------------------------------------------------------------------


def test_a_batch_posted_twice_with_one_key_is_written_once(
    remote: Workspace, server: Any, on_server: Callable[[], Workspace]
) -> None:
    run = remote.tracking.create_run("e")
    remote.tracking.log_batch(run.id, params={"C": "stored"})
    n = 1_000
    body = {
        "key": "batch-0001",
        "metrics": {
            "run_id": [run.id] * n,
            "key": ["loss"] * n,
            "value": [*([0.5] * (n - 3)), "NaN", "Infinity", "-Infinity"],
            "step": list(range(n)),
            "timestamp": [now_ms()] * n,
        },
        "params": {"run_id": [run.id, run.id], "key": ["C", "new"], "value": ["other", "v"]},
        "tags": {"run_id": [run.id], "key": ["stage"], "value": ["dev"]},
    }
    first = post_batch(server.url, body)
    assert first.status_code == 200, first.text
    conflicts = first.json()["conflicts"]
    assert conflicts == [f"param 'C' of run {run.id} is 'stored'; cannot change it to 'other'"]
    remote.tracking.log_batch(run.id, tags={"stage": "prod"})  # written after the batch

    again = post_batch(server.url, body)  # e.g. a retry after the first answer was lost
    assert again.status_code == 200, again.text
    assert again.json()["conflicts"] == conflicts  # the same answer
    assert stored_points(on_server, run.id, "loss") == n  # the points once
    stored = on_server().tracking.get_run(run.id)
    assert stored.tags == {"stage": "prod"}  # the replay did not set the old tag again
    assert stored.params == {"C": "stored", "new": "v"}
    history = on_server().tracking.get_metric_history(run.id, "loss")
    assert math.isnan(history[-3].value)
    assert [p.value for p in history[-2:]] == [math.inf, -math.inf]

    body["key"] = "batch-0002"  # another batch with the same rows is written again
    assert post_batch(server.url, body).status_code == 200
    assert stored_points(on_server, run.id, "loss") == 2 * n


@pytest.mark.postgres
def test_a_batch_is_written_once_per_key_on_postgresql(
    postgres: Any, server_factory: Callable[..., Any], open_workspace: Callable[..., Workspace]
) -> None:
    pg_server = server_factory(uri=postgres.url(postgres.create_database()))
    tracking = open_workspace(pg_server.url).tracking
    run = tracking.create_run("e")
    n = 5_000  # through COPY
    body: dict[str, Any] = {
        "key": "once",
        "metrics": {
            "run_id": [run.id] * n,
            "key": ["m"] * n,
            "value": [float(i) for i in range(n)],
            "step": list(range(n)),
            "timestamp": [now_ms()] * n,
        },
        "params": {"run_id": [run.id], "key": ["p"], "value": ["v"]},
    }
    for _ in range(2):
        answer = post_batch(pg_server.url, body)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"conflicts": []}
    assert len(tracking.get_metric_history(run.id, "m")) == n
    body["key"] = "another"
    assert post_batch(pg_server.url, body).status_code == 200
    assert len(tracking.get_metric_history(run.id, "m")) == 2 * n


def test_the_store_keeps_a_batch_key_across_retries(
    remote: Workspace, on_server: Callable[[], Workspace]
) -> None:
    run = remote.tracking.create_run("e")
    store = remote.tracking.store
    batch = LogBatch(metrics=[(run.id, "m", float(i), i, now_ms()) for i in range(10)])
    assert store.write_batch(batch) == []
    key = batch.key
    assert key  # generated before the first attempt and kept on the batch
    assert store.write_batch(batch) == []  # what the writer does when an answer was lost
    assert batch.key == key
    assert stored_points(on_server, run.id, "m") == 10


def test_an_oversized_batch_is_sent_in_parts(
    remote: Workspace, on_server: Callable[[], Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_backend, "_MAX_BODY", 20_000)
    run = remote.tracking.create_run("e")
    remote.tracking.log_batch(run.id, params={"p0": "held"})
    batch = LogBatch(
        metrics=[(run.id, "m", float(i), i, now_ms()) for i in range(2_000)],
        params=[(run.id, f"p{i}", "v" * 100) for i in range(100)],
    )
    conflicts = remote.tracking.store.write_batch(batch)
    assert conflicts == [f"param 'p0' of run {run.id} is 'held'; cannot change it to '{'v' * 100}'"]
    assert remote.tracking.store.write_batch(batch) == conflicts  # parts keep their keys
    assert stored_points(on_server, run.id, "m") == 2_000
    assert len(on_server().tracking.get_run(run.id).params) == 100


def test_receipts_are_written_with_the_batch_and_pruned_after_a_day(
    open_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    import sqlalchemy as sa

    ws = open_workspace(f"sqlite:///{tmp_path / 'receipts.db'}")
    assert ws.database is not None
    store = ws.tracking.store
    run = ws.tracking.create_run("e")
    day_old = now_ms() - 25 * 3600 * 1000
    ws.database.write(
        lambda conn: conn.execute(
            sa.text("INSERT INTO batch_receipts (key, created_at) VALUES ('old', :t)"),
            {"t": day_old},
        )
    )
    store.write_batch(LogBatch(metrics=[(run.id, "m", 1.0, 0, now_ms())], key="new"))
    store.write_batch(LogBatch(metrics=[(run.id, "m", 1.0, 0, now_ms())], key="new"))
    keys = ws.database.read(
        lambda conn: [row[0] for row in conn.execute(sa.text("SELECT key FROM batch_receipts"))]
    )
    assert keys == ["new"]
    assert len(store.get_metric_history(run.id, "m")) == 1
    # Without a key (embedded logging) nothing is recorded.
    store.write_batch(LogBatch(metrics=[(run.id, "m", 1.0, 1, now_ms())]))
    assert len(store.get_metric_history(run.id, "m")) == 2


def test_heartbeats_travel_in_batches(remote: Workspace, server: Any) -> None:
    run = remote.tracking.create_run("e")
    before = remote.tracking.get_run(run.id).heartbeat_at
    assert before is not None
    answer = post_batch(server.url, {"key": "hb-1", "heartbeats": [run.id, "0" * 32]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"conflicts": []}
    after = remote.tracking.get_run(run.id).heartbeat_at
    assert after is not None
    assert after >= before


# -- bad input ------------------------------------------------------------------------------


def _metrics(run: str, **changes: Any) -> dict[str, Any]:
    columns = {
        "run_id": [run],
        "key": ["m"],
        "value": [1.0],
        "step": [0],
        "timestamp": [now_ms()],
    }
    columns.update(changes)
    return {"key": "k1", "metrics": columns}


BAD_BATCHES: list[tuple[str, Callable[[str], Any], str]] = [
    ("not json", lambda r: b"{not json", "not valid JSON"),
    ("an array", lambda r: [], "must be a JSON object"),
    ("unknown field", lambda r: {"metric": {}}, "Unknown field"),
    ("bad key", lambda r: {"key": "has space"}, "key must be"),
    ("key not a string", lambda r: {"key": 5}, "key must be"),
    ("missing array", lambda r: {"metrics": {"run_id": [r]}}, "exactly the arrays"),
    ("not an object", lambda r: {"metrics": [1]}, "object of arrays"),
    ("not an array", lambda r: _metrics(r, step=0), "metrics.step must be an array"),
    ("uneven arrays", lambda r: _metrics(r, step=[0, 1]), "same length"),
    ("text value", lambda r: _metrics(r, value=["abc"]), "metrics.value must be a number"),
    ("boolean value", lambda r: _metrics(r, value=[True]), "not a boolean"),
    ("fractional step", lambda r: _metrics(r, step=[1.5]), "metrics.step must hold only int"),
    ("boolean step", lambda r: _metrics(r, step=[True]), "metrics.step must hold only int"),
    ("huge step", lambda r: _metrics(r, step=[2**63]), "64 bits"),
    ("run id not text", lambda r: _metrics(r, run_id=[7]), "metrics.run_id must hold only str"),
    ("invalid metric key", lambda r: _metrics(r, key=["a..b"]), "Invalid metric key"),
    (
        "long param",
        lambda r: {"params": {"run_id": [r], "key": ["p"], "value": ["x" * 8001]}},
        "longer than 8000",
    ),
    (
        "param value not text",
        lambda r: {"params": {"run_id": [r], "key": ["p"], "value": [1]}},
        "params.value must hold only str",
    ),
    ("heartbeats not a list", lambda r: {"heartbeats": "x"}, "heartbeats must be an array"),
]


@pytest.mark.parametrize(
    ("case", "body", "message"), BAD_BATCHES, ids=[case for case, _, _ in BAD_BATCHES]
)
def test_malformed_batches_are_400_envelopes(
    remote: Workspace, server: Any, case: str, body: Callable[[str], Any], message: str
) -> None:
    run = remote.tracking.create_run("e")
    response = post_batch(server.url, body(run.id))
    assert_envelope(response, 400, "INVALID_ARGUMENT", has=message)
    assert remote.tracking.get_run(run.id).metrics == {}


def test_a_run_purged_after_the_server_saw_it_is_404_not_500(
    remote: Workspace, server: Any
) -> None:
    import sqlite3

    run = remote.tracking.create_run("e")
    assert post_batch(server.url, _metrics(run.id)).status_code == 200  # the server knows it
    conn = sqlite3.connect(server.root / ".driftline" / "driftline.db", timeout=30)
    try:
        with conn:
            conn.execute("DELETE FROM metrics WHERE run_id = ?", (run.id,))
            conn.execute("DELETE FROM latest_metrics WHERE run_id = ?", (run.id,))
            conn.execute("DELETE FROM runs WHERE run_id = ?", (run.id,))
    finally:
        conn.close()
    body = _metrics(run.id)
    body["key"] = "after-purge"
    assert_envelope(post_batch(server.url, body), 404, "NOT_FOUND", has="does not exist")


def test_a_retried_batch_is_acknowledged_even_if_one_of_its_runs_was_purged(
    remote: Workspace,
    server: Any,
    on_server: Callable[[], Workspace],
    server_factory: Callable[..., Any],
) -> None:
    import sqlite3

    kept, purged = remote.tracking.create_run("e"), remote.tracking.create_run("e")
    body = _metrics(kept.id, run_id=[kept.id, purged.id], key=["m", "m"], value=[1.0, 2.0],
                    step=[0, 0], timestamp=[now_ms()] * 2)  # fmt: skip
    body["key"] = "committed-then-retried"
    assert post_batch(server.url, body).status_code == 200
    conn = sqlite3.connect(server.root / ".driftline" / "driftline.db", timeout=30)
    try:
        with conn:
            for table in ("metrics", "latest_metrics", "runs"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (purged.id,))
    finally:
        conn.close()
    # The answer to the first attempt was lost; the client sends the same batch again, to
    # another server process on the database (which has not seen these runs).
    other = server_factory(uri=server.uri)
    answer = post_batch(other.url, body)
    assert answer.status_code == 200, answer.text
    assert len(on_server().tracking.get_metric_history(kept.id, "m")) == 1  # not twice


def test_whole_floats_are_integers_as_json_schema_says(
    remote: Workspace, server: Any, on_server: Callable[[], Workspace]
) -> None:
    run = remote.tracking.create_run("e")
    answer = post_batch(server.url, _metrics(run.id, step=[3.0], timestamp=[float(now_ms())]))
    assert answer.status_code == 200, answer.text
    assert [p.step for p in on_server().tracking.get_metric_history(run.id, "m")] == [3]
    body = {"experiment_id": run.experiment_id, "name": "r", "user": "u", "start_time": 5.0}
    created = api(server.url, "POST", "runs", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["start_time"] == 5


def test_a_batch_for_an_unknown_run_is_404(server: Any) -> None:
    response = post_batch(server.url, _metrics("0" * 32))
    assert_envelope(response, 404, "NOT_FOUND", has="No run with id")


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", "experiments", {"name": 5}, "name"),
        ("POST", "experiments", {"name": "x", "colour": "red"}, "colour"),
        ("POST", "experiments", {"name": "  "}, "name"),
        ("POST", "experiments", {"name": "x", "tags": {"/k": "1"}}, "Invalid tag key"),
        ("POST", "experiments", {"name": "x", "tags": {"a..b": "1"}}, "Invalid tag key"),
        ("POST", "runs", {"experiment_id": "x"}, "name"),
        ("POST", "runs/search", {"max_results": 0}, "max_results"),
        ("POST", "runs/search", {"max_results": "10"}, "max_results"),
        ("POST", "runs/search", {"filter": "params.x <"}, "Invalid filter at position"),
        ("POST", "runs/search", {"order_by": ["metrics.auc sideways"]}, "asc"),
        ("POST", "runs/search", {"lifecycle": "gone"}, "lifecycle"),
        ("GET", "experiments?max_results=-1", None, "max_results"),
        ("PUT", "experiments/abc/lifecycle", {"stage": "gone"}, "stage"),
        ("POST", "runs/abc/status", {"status": "DONE"}, "status"),
    ],
)
def test_wrong_types_and_values_are_400_envelopes(
    server: Any, method: str, path: str, body: Any, message: str
) -> None:
    response = api(server.url, method, path, json=body)
    assert_envelope(response, 400, "INVALID_ARGUMENT", has=message)


def test_run_and_artifact_routes_check_their_input(remote: Workspace, server: Any) -> None:
    run = remote.tracking.create_run("e")
    experiment_id = run.experiment_id
    valid = {"experiment_id": experiment_id, "name": "r", "user": "u", "start_time": 1}
    assert api(server.url, "POST", "runs", json=valid).status_code == 201
    for change, status, message in [
        ({"experiment_id": "0" * 32}, 404, "No experiment"),
        ({"parent_id": "0" * 32}, 404, "No run"),
        ({"start_time": -1}, 400, "start_time"),
        ({"start_time": "now"}, 400, "start_time"),
        ({"tags": {"k": "x" * 8001}}, 400, "longer than 8000"),
    ]:
        response = api(server.url, "POST", "runs", json={**valid, **change})
        code = "NOT_FOUND" if status == 404 else "INVALID_ARGUMENT"
        assert_envelope(response, status, code, has=message)
    entry = {"path": "a.txt", "digest": "blake3:" + "0" * 64, "size": 1, "created_at": 1}
    for change, message in [
        ({"path": "../escape"}, "'..'"),
        ({"path": "/abs"}, "path"),
        ({"path": "a\\b"}, "path"),
        ({"digest": "md5:123"}, "digest"),
        ({"size": -1}, "size"),
    ]:
        response = api(
            server.url, "POST", f"runs/{run.id}/artifacts", json={"artifacts": [entry | change]}
        )
        assert_envelope(response, 400, "INVALID_ARGUMENT", has=message)
    response = api(server.url, "GET", f"runs/{run.id}/artifacts", params={"prefix": "../x"})
    assert_envelope(response, 400, "INVALID_ARGUMENT", has="'..'")
    response = api(server.url, "GET", f"runs/{'0' * 32}/metric-history", params={"key": "m"})
    assert_envelope(response, 404, "NOT_FOUND")
    response = api(server.url, "GET", "experiments/by-name", params={"name": "nope"})
    assert_envelope(response, 404, "NOT_FOUND", has="nope")


# -- the search tree as text -------------------------------------------------------------------

FILTERS = [
    "metrics.auc > 0.8",
    "metrics.auc >= -1.5e-3 and metrics.loss < 10 and metrics.x <= 1e999",
    "metrics.`val loss` != 3",
    "params.C = '1.0' or params.C > 0.5",
    "params.name like 'it''s %' and params.path ilike 'C:\\\\dir%'",
    "tags.team in ('risk', 'fraud') and tags.x not in ('a')",
    "tags.`odd key` not like '%x%'",
    "not (metrics.a is null or metrics.b is not null)",
    "attributes.status in ('finished', 'RUNNING') and attributes.name < 'm'",
    "attributes.start_time >= '2026-01-01T00:00:00' and attributes.end_time < 1700000000000",
    "attributes.run_id = 'abc' and attributes.user != 'x' and attributes.parent_id is null",
    "(metrics.a > 1 and (metrics.b > 2 or metrics.c > 3)) or not metrics.d = 4",
    "params.x = 'quote \" and \\\\ backslash'",
]


@pytest.mark.parametrize("text", FILTERS)
def test_filter_text_parses_back_to_the_same_tree(text: str) -> None:
    node = parse_filter(text)
    assert node is not None
    assert parse_filter(filter_text(node)) == node


def test_order_text_parses_back_to_the_same_terms() -> None:
    terms = parse_order_by(["metrics.auc desc", "attributes.start_time", "params.`a b` asc"])
    assert parse_order_by([order_text(term) for term in terms]) == terms


def test_capabilities_match_the_servers_store() -> None:
    from driftline.tracking._sql import SqlTrackingStore

    # What the services rely on matches; latest_points and child_runs are one-transaction
    # shortcuts of SQL stores (the service falls back to the general calls), which only
    # code next to the database uses.
    sql = SqlTrackingStore.capabilities
    shortcuts = {"latest_points": False, "child_runs": False}
    assert HttpTrackingStore.capabilities == dataclasses.replace(sql, **shortcuts)
    assert sql.latest_points
    assert sql.child_runs


def test_a_remote_service_searches_with_every_operator(remote: Workspace) -> None:
    tracking: TrackingService = remote.tracking
    run = tracking.create_run("e", name="alpha")
    tracking.log_batch(
        run.id,
        metrics=[("auc", 0.9, 0, None), ("val loss", 0.1, 0, None)],
        params={"C": "1.0", "name": "it's"},
        tags={"team": "risk"},
    )
    other = tracking.create_run("e", name="beta")
    for text in [
        "metrics.auc > 0.8 and metrics.`val loss` < 0.2",
        "params.C > 0.5 and params.name like 'it''s'",
        "tags.team in ('risk', 'x') and attributes.name = 'alpha'",
        "not (metrics.auc is null) and attributes.status = 'running'",
    ]:
        assert [r.id for r in tracking.search_runs(filter=text).items] == [run.id], text
    ranked = tracking.search_runs(order_by=["metrics.auc desc"]).items
    assert [r.id for r in ranked] == [run.id, other.id]
