"""Values that could not be read back are refused at the door, through a real server.

A run with ``start_time: 10**16`` (year 318857), evaluation metrics nested 300 deep, or
alias-move details nested 300 deep used to be stored (and answered 500 or 200); every
later search, listing or audit read then failed for everyone. Each must now be a 400
that stores nothing, and the readers must keep working.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftline.core.values import MAX_MS
from driftline.errors import InvalidArgumentError
from driftline.workspace import Workspace

pytestmark = pytest.mark.server

_FAR = 10**16  # year 318857: beyond what a datetime can hold


def _nested(depth: int) -> Any:
    value: Any = 1.0
    for _ in range(depth):
        value = {"a": value}
    return value


def api(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{url}/api/v1/{path}", timeout=30, **kwargs)


def mlflow(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{url}/api/2.0/mlflow/{path}", timeout=30, **kwargs)


@pytest.fixture
def remote(server: Any, open_workspace: Callable[..., Workspace]) -> Workspace:
    ws = open_workspace(server.url)
    assert ws.is_remote
    return ws


def _experiment_id(url: str) -> str:
    response = api(url, "POST", "experiments", json={"name": "probe"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _runs_list(server: Any) -> subprocess.CompletedProcess[str]:
    home = server.root / "cli-home"
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "--home", str(home), "--uri", server.url,
         "runs", "list"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _assert_search_works(server: Any) -> None:
    native = api(server.url, "POST", "runs/search", json={})
    assert native.status_code == 200, native.text
    found = mlflow(server.url, "POST", "runs/search", json={"experiment_ids": ["0"]})
    assert found.status_code == 200, found.text
    listed = _runs_list(server)
    assert listed.returncode == 0, listed.stderr


def test_a_far_start_time_is_refused_and_search_keeps_working(server: Any, on_server: Any) -> None:
    experiment_id = _experiment_id(server.url)
    body = {"experiment_id": experiment_id, "name": "far", "user": "x", "start_time": _FAR}
    response = api(server.url, "POST", "runs", json=body)
    assert response.status_code == 400, response.text
    mlflow_create = mlflow(
        server.url, "POST", "runs/create", json={"experiment_id": "0", "start_time": _FAR}
    )
    assert mlflow_create.status_code == 400, mlflow_create.text
    assert mlflow_create.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "start_time" in mlflow_create.json()["message"]
    # Nothing was stored: the server's own database holds no run.
    ws = on_server()
    assert ws.tracking.search_runs(include_deleted=True).items == []
    _assert_search_works(server)


def test_the_last_storable_time_is_kept_and_read_back(server: Any) -> None:
    experiment_id = _experiment_id(server.url)
    body = {"experiment_id": experiment_id, "name": "edge", "user": "x", "start_time": MAX_MS}
    response = api(server.url, "POST", "runs", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["start_time"] == MAX_MS
    ended = api(
        server.url, "POST", f"runs/{response.json()['id']}/status",
        json={"status": "FINISHED", "end_time": MAX_MS + 1},
    )  # fmt: skip
    assert ended.status_code == 400, ended.text
    _assert_search_works(server)


def test_far_times_and_huge_numbers_in_logging_are_refused(server: Any) -> None:
    created = mlflow(server.url, "POST", "runs/create", json={"experiment_id": "0"})
    run_id = created.json()["run"]["info"]["run_id"]
    for metric in (
        {"key": "m", "value": 1.0, "timestamp": _FAR, "step": 0},
        {"key": "m", "value": 10**400, "timestamp": 1, "step": 0},
        {"key": "m", "value": 1.0, "timestamp": 1, "step": 2**63},
    ):
        response = mlflow(
            server.url, "POST", "runs/log-batch", json={"run_id": run_id, "metrics": [metric]}
        )
        assert response.status_code == 400, (metric, response.text)
    batch = {"metrics": {"run_id": [run_id], "key": ["m"], "value": [1.0], "step": [0],
                         "timestamp": [_FAR]}}  # fmt: skip
    assert api(server.url, "POST", "batches", json=batch).status_code == 400
    batch["metrics"]["timestamp"] = [1]
    batch["metrics"]["value"] = [10**400]
    response = api(server.url, "POST", "batches", content=json.dumps(batch))
    assert response.status_code == 400, response.text
    history = mlflow(
        server.url, "GET", "metrics/get-history", params={"run_id": run_id, "metric_key": "m"}
    )
    assert history.status_code == 200
    assert history.json().get("metrics", []) == []
    _assert_search_works(server)


def test_the_same_bad_time_is_refused_alike_by_sdk_rest_and_mlflow(
    server: Any, remote: Workspace, open_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    embedded = open_workspace(f"sqlite:///{tmp_path / 'local.db'}")
    for ws in (embedded, remote):
        run = ws.tracking.create_run("probe")
        with pytest.raises(InvalidArgumentError, match="timestamp"):
            ws.tracking.log_batch(run.id, metrics=[("m", 1.0, 0, _FAR)])
        with pytest.raises(InvalidArgumentError, match="start_time"):
            ws.tracking.store.create_run(
                experiment_id=run.experiment_id, name="far", user="x",
                start_time=_FAR, parent_id=None, tags={},
            )  # fmt: skip
    experiment_id = remote.tracking.get_experiment("probe").id
    rest = api(
        server.url, "POST", "runs",
        json={"experiment_id": experiment_id, "name": "far", "user": "x", "start_time": _FAR},
    )  # fmt: skip
    via_mlflow = mlflow(server.url, "POST", "runs/create", json={"start_time": _FAR})
    assert (rest.status_code, via_mlflow.status_code) == (400, 400)
    assert rest.json()["error"]["code"] == "INVALID_ARGUMENT", rest.text
    assert via_mlflow.json()["error_code"] == "INVALID_PARAMETER_VALUE"


# -- free-form JSON ----------------------------------------------------------------------


def _register(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "driftline-model.json").write_text(json.dumps({"flavor": "sklearn"}))
    (folder / "model.bin").write_bytes(b"model")
    run = ws.tracking.create_run("train")
    ws.tracking.log_artifacts(run.id, folder, "model")
    ws.registry.register_model(f"runs:/{run.id}/model", "churn")


def test_deeply_nested_evaluation_metrics_are_refused(
    server: Any, remote: Workspace, on_server: Any, tmp_path: Path
) -> None:
    _register(remote, tmp_path)
    path = "registry/models/churn/versions/1/evaluations"
    body = {"id": "e1", "target": "y", "task": "binary", "rows": 10}
    deep = api(server.url, "POST", path, json={**body, "metrics": {"auc": _nested(300)}})
    assert deep.status_code == 400, deep.text
    assert "nests deeper" in deep.json()["error"]["message"]
    deep_slice = {**body, "metrics": {}, "slices": {"c": {"v": _nested(300)}}}
    assert api(server.url, "POST", path, json=deep_slice).status_code == 400
    assert on_server().registry.store.list_evaluations("churn", 1) == []
    ok = api(server.url, "POST", path, json={**body, "id": "e2", "metrics": {"auc": 0.9}})
    assert ok.status_code == 200, ok.text
    listed = api(server.url, "GET", path)
    assert listed.status_code == 200, listed.text
    assert [e["id"] for e in listed.json()["evaluations"]] == ["e2"]
    facts = remote.registry.card_facts("churn/1")
    assert facts is not None


def test_deeply_nested_alias_details_are_refused_and_the_audit_reads(
    server: Any, remote: Workspace, tmp_path: Path
) -> None:
    _register(remote, tmp_path)
    move = {"version": 1, "expected": "*", "reason": "set", "details": _nested(300)}
    response = api(server.url, "POST", "registry/models/churn/aliases/champion", json=move)
    assert response.status_code == 400, response.text
    assert "details" in response.json()["error"]["message"]
    assert "champion" not in remote.registry.get_model("churn").aliases
    audit = api(server.url, "GET", "audit")
    assert audit.status_code == 200, audit.text
    assert not any(e["action"] == "alias_set" for e in audit.json()["entries"])
