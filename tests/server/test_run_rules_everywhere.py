"""One set of run rules: the same bad input gets the same typed error and message through
the SDK (embedded and remote), driftline's REST API and the MLflow routes.

The rules live in :class:`~driftline.tracking.TrackingService`; the routes only translate
wire formats to its calls. Each case below breaks one rule through every entry point of a
real server process and compares what comes back: the error class (read from the code of
each wire format) and the message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest

from driftline.api.tracking import encode_log_batch
from driftline.core.clock import now_ms
from driftline.errors import (
    ConflictError,
    DriftlineError,
    InvalidArgumentError,
    NotFoundError,
    error_class_for_code,
)
from driftline.tracking import Experiment, Run, RunStatus
from driftline.workspace import Workspace

pytestmark = pytest.mark.server

MLFLOW = "/api/2.0/mlflow"
GHOST = "0" * 32
# The MLflow wire codes of the error classes these cases raise.
MLFLOW_CODES: dict[str, type[DriftlineError]] = {
    "INVALID_PARAMETER_VALUE": InvalidArgumentError,
    "RESOURCE_DOES_NOT_EXIST": NotFoundError,
    "RESOURCE_CONFLICT": ConflictError,
}


@dataclass(frozen=True)
class Case:
    """One broken rule, as each entry point spells it."""

    name: str
    sdk: Callable[[Workspace, Run], object]
    rest: Callable[[str, Run], httpx.Response]
    mlflow: Callable[[str, Run], httpx.Response]


Outcome = tuple[type[DriftlineError], str]


def rest_run(url: str, run: Run, **change: Any) -> httpx.Response:
    body = {
        "experiment_id": run.experiment_id,
        "name": "r",
        "user": "u",
        "start_time": now_ms(),
        **change,
    }
    return httpx.post(f"{url}/api/v1/runs", json=body, timeout=30)


def mlflow_run(url: str, run: Run, **change: Any) -> httpx.Response:
    body = {"experiment_id": run.experiment_id, "run_name": "r", **change}
    return httpx.post(f"{url}{MLFLOW}/runs/create", json=body, timeout=30)


def rest_batch(url: str, run: Run, kind: str, key: str, value: Any) -> httpx.Response:
    rows: dict[str, list[Any]] = {"metrics": [], "params": [], "tags": []}
    if kind == "metrics":
        rows[kind].append((run.id, key, value, 0, now_ms()))
    else:
        rows[kind].append((run.id, key, value))
    body = encode_log_batch("", rows["metrics"], rows["params"], rows["tags"], [])
    return httpx.post(
        f"{url}/api/v1/batches",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )


def mlflow_post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}{MLFLOW}/{path}", json=body, timeout=30)


def mlflow_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def sdk_run(ws: Workspace, run: Run, **options: Any) -> Run:
    experiment: Experiment = ws.tracking.experiment_by_id(run.experiment_id)
    return ws.tracking.create_run(experiment.name, **options)


LONG = "x" * 8001

CASES = [
    Case(
        "tag key",
        lambda ws, run: sdk_run(ws, run, tags={"a..b": "1"}),
        lambda url, run: rest_run(url, run, tags={"a..b": "1"}),
        lambda url, run: mlflow_run(url, run, tags=mlflow_tags({"a..b": "1"})),
    ),
    Case(
        "tag value",
        lambda ws, run: sdk_run(ws, run, tags={"t": LONG}),
        lambda url, run: rest_run(url, run, tags={"t": LONG}),
        lambda url, run: mlflow_run(url, run, tags=mlflow_tags({"t": LONG})),
    ),
    Case(
        "long run name",
        lambda ws, run: sdk_run(ws, run, name="n" * 257),
        lambda url, run: rest_run(url, run, name="n" * 257),
        lambda url, run: mlflow_run(url, run, run_name="n" * 257),
    ),
    Case(
        "blank run name",
        lambda ws, run: sdk_run(ws, run, name="   "),
        lambda url, run: rest_run(url, run, name="   "),
        lambda url, run: mlflow_run(url, run, run_name="   "),
    ),
    Case(
        "unknown parent",
        lambda ws, run: sdk_run(ws, run, parent_id=GHOST),
        lambda url, run: rest_run(url, run, parent_id=GHOST),
        lambda url, run: mlflow_run(url, run, tags=mlflow_tags({"mlflow.parentRunId": GHOST})),
    ),
    Case(
        "metric key",
        lambda ws, run: ws.tracking.log_batch(run.id, metrics=[("a..b", 1.0, 0, None)]),
        lambda url, run: rest_batch(url, run, "metrics", "a..b", 1.0),
        lambda url, run: mlflow_post(
            url,
            "runs/log-metric",
            {"run_id": run.id, "key": "a..b", "value": 1.0, "timestamp": now_ms()},
        ),
    ),
    Case(
        "param value",
        lambda ws, run: ws.tracking.log_batch(run.id, params={"p": LONG}),
        lambda url, run: rest_batch(url, run, "params", "p", LONG),
        lambda url, run: mlflow_post(
            url, "runs/log-parameter", {"run_id": run.id, "key": "p", "value": LONG}
        ),
    ),
    Case(
        "tag key when logging",
        lambda ws, run: ws.tracking.log_batch(run.id, tags={"/t": "1"}),
        lambda url, run: rest_batch(url, run, "tags", "/t", "1"),
        lambda url, run: mlflow_post(
            url, "runs/set-tag", {"run_id": run.id, "key": "/t", "value": "1"}
        ),
    ),
]


def rest_outcome(response: httpx.Response) -> Outcome:
    assert response.status_code < 500, response.text
    error = response.json()["error"]
    return error_class_for_code(error["code"]), error["message"]


def mlflow_outcome(response: httpx.Response) -> Outcome:
    assert response.status_code < 500, response.text
    body = response.json()
    return MLFLOW_CODES[body["error_code"]], body["message"]


def sdk_outcome(call: Callable[[], object]) -> Outcome:
    with pytest.raises(DriftlineError) as info:
        call()
    return type(info.value), str(info.value)


@pytest.fixture
def workspaces(
    server: Any, open_workspace: Callable[..., Workspace], tmp_path: Any
) -> dict[str, tuple[Workspace, Run]]:
    """A run in an embedded workspace and one on the server (reached remotely)."""
    local = open_workspace(f"sqlite:///{tmp_path / 'local.db'}")
    remote = open_workspace(server.url)
    return {
        "embedded": (local, local.tracking.create_run("rules")),
        "remote": (remote, remote.tracking.create_run("rules")),
    }


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_broken_run_rule_is_the_same_error_through_every_entry_point(
    case: Case, server: Any, workspaces: dict[str, tuple[Workspace, Run]]
) -> None:
    outcomes: dict[str, Outcome] = {}
    for name, (ws, run) in workspaces.items():
        outcomes[f"sdk {name}"] = sdk_outcome(partial(case.sdk, ws, run))
    _, run = workspaces["remote"]
    outcomes["rest"] = rest_outcome(case.rest(server.url, run))
    outcomes["mlflow"] = mlflow_outcome(case.mlflow(server.url, run))
    # Messages name the run or experiment where a rule is about them: the same object
    # on the server for REST, MLflow and the remote SDK; the embedded run is another.
    local_run = workspaces["embedded"][1]
    embedded = outcomes["sdk embedded"]
    outcomes["sdk embedded"] = (embedded[0], embedded[1].replace(local_run.id, run.id))
    assert len(set(outcomes.values())) == 1, outcomes
    error, message = outcomes["rest"]
    assert error in (InvalidArgumentError, NotFoundError), outcomes
    assert message


def test_ending_a_run_twice_is_the_same_conflict_everywhere(
    server: Any, workspaces: dict[str, tuple[Workspace, Run]]
) -> None:
    outcomes: dict[str, Outcome] = {}
    for name, (ws, _) in workspaces.items():
        run = ws.tracking.create_run("rules")
        ws.tracking.end_run(run.id, RunStatus.FINISHED)
        error, text = sdk_outcome(partial(ws.tracking.end_run, run.id, RunStatus.FAILED))
        outcomes[f"sdk {name}"] = (error, text.replace(run.id, "RUN"))
    remote, _ = workspaces["remote"]

    def rest(run: Run) -> Outcome:
        body = {"status": "FAILED", "expected": "RUNNING", "end_time": now_ms()}
        url = f"{server.url}/api/v1/runs/{run.id}/status"
        return rest_outcome(httpx.post(url, json=body, timeout=30))

    def mlflow(run: Run) -> Outcome:
        body = {"run_id": run.id, "status": "FAILED"}
        return mlflow_outcome(mlflow_post(server.url, "runs/update", body))

    sends: dict[str, Callable[[Run], Outcome]] = {"rest": rest, "mlflow": mlflow}
    for entry, send in sends.items():
        run = remote.tracking.create_run("rules")
        remote.tracking.end_run(run.id, RunStatus.FINISHED)
        error, text = send(run)
        outcomes[entry] = (error, text.replace(run.id, "RUN"))
    assert len(set(outcomes.values())) == 1, outcomes
    error, message = outcomes["rest"]
    assert error is ConflictError
    assert "cannot be reopened or ended again" in message


def test_a_run_in_a_deleted_experiment_is_refused_everywhere(
    server: Any, workspaces: dict[str, tuple[Workspace, Run]]
) -> None:
    outcomes: dict[str, Outcome] = {}
    for name, (ws, _) in workspaces.items():
        gone = ws.tracking.create_experiment("gone")
        ws.tracking.delete_experiment(gone.id)
        outcomes[f"sdk {name}"] = sdk_outcome(partial(ws.tracking.create_run, "gone"))
    remote, run = workspaces["remote"]
    gone_id = remote.tracking.get_experiment("gone").id
    outcomes["rest"] = rest_outcome(rest_run(server.url, run, experiment_id=gone_id))
    outcomes["mlflow"] = mlflow_outcome(mlflow_run(server.url, run, experiment_id=gone_id))
    assert len(set(outcomes.values())) == 1, outcomes
    assert outcomes["rest"][0] is ConflictError
