"""The real MLflow client against a real driftline server, and the data seen from both sides.

Each MLflow scenario runs in its own Python process (MLflow keeps global state: tracking
URI, active run, caches) with ``MLFLOW_TRACKING_URI`` pointing at a server this module
starts for itself, and prints what it observed as JSON on its last line. The driftline
side is checked through a workspace opened on the server's own database and artifact
store, and through the CLI.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftline.settings import Settings
from driftline.workspace import Workspace

pytestmark = [pytest.mark.server, pytest.mark.slow]

pytest.importorskip("mlflow", reason="the MLflow client is a dev extra")
pytest.importorskip("sklearn")

MLFLOW = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture(scope="module")
def server(server_factory: Callable[..., Any]) -> Any:
    """A driftline server of this module's own (the session's shared one stays clean)."""
    return server_factory()


@pytest.fixture(scope="module")
def client_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow-client")


def run_mlflow(
    server: Any, home: Path, script: str, *args: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``script`` (with ``args``) with the MLflow client against ``server``; return the
    JSON it prints last."""
    path = home / f"scenario_{abs(hash(script))}.py"
    path.write_text(textwrap.dedent(script))
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DRIFTLINE_", "MLFLOW_")) and k not in ("HOME",)
    }
    environment.update(env or {})
    environment.update(
        HOME=str(home),
        MLFLOW_TRACKING_URI=server.url,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",  # a failing request shows up, not a retry
        GIT_PYTHON_REFRESH="quiet",
    )
    result = subprocess.run(
        [sys.executable, str(path), *args],
        cwd=home,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"MLflow scenario failed ({result.returncode}):\n{result.stderr[-6000:]}\n"
            f"server log:\n{server.log.read_text()[-3000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def server_workspace(server: Any, tmp_path: Path) -> Iterator[Workspace]:
    """A driftline workspace on the server's own database and artifact store."""
    ws = Workspace.from_settings(
        Settings.load(
            uri=server.uri,
            artifact_root=str(server.root / "artifacts"),
            home=tmp_path / ".driftline",
            async_logging=False,
            capture_environment=False,
        )
    )
    yield ws
    ws.close()


WORKFLOW = """
    import json, os, tempfile
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    out = {}
    experiment = mlflow.set_experiment("mlflow-wf")
    out["experiment_id"] = experiment.experiment_id
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = LogisticRegression(max_iter=300).fit(X, y)
    with mlflow.start_run(run_name="r1") as run:
        run_id = run.info.run_id
        out["artifact_uri"] = run.info.artifact_uri
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"a": 1, "b": "x"})
        mlflow.log_metric("loss", 0.5, step=3)
        for step in range(5):
            mlflow.log_metric("curve", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=4)
        mlflow.set_tag("team", "a")
        folder = tempfile.mkdtemp()
        with open(os.path.join(folder, "a.txt"), "w") as f:
            f.write("hello")
        mlflow.log_artifact(os.path.join(folder, "a.txt"), "dir")
        folder = tempfile.mkdtemp()
        os.makedirs(os.path.join(folder, "sub"))
        with open(os.path.join(folder, "b.txt"), "w") as f:
            f.write("b")
        with open(os.path.join(folder, "sub", "c.txt"), "w") as f:
            f.write("c")
        mlflow.log_artifacts(folder, "d2")
        frame = X.copy()
        frame["t"] = y
        mlflow.log_input(mlflow.data.from_pandas(frame, name="iris"), context="training")
        info = mlflow.sklearn.log_model(
            clf, name="model", input_example=X.iloc[:2], pip_requirements=["scikit-learn"]
        )
        out["model_id"] = info.model_id
        out["model_uri"] = info.model_uri
    out["run_id"] = run_id
    client = MlflowClient()
    found = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string="metrics.loss < 1 and params.lr = '0.1' and tags.team LIKE 'a%'",
        output_format="list",
    )
    out["search"] = [r.info.run_id for r in found]
    out["search_none"] = len(client.search_runs(
        [experiment.experiment_id], "metrics.loss > 1"
    ))
    got = client.get_run(run_id)
    out["name"] = got.info.run_name
    out["status"] = got.info.status
    out["params"] = got.data.params
    out["metrics"] = got.data.metrics
    out["tags"] = got.data.tags
    out["inputs"] = [
        [d.dataset.name, d.dataset.digest, [t.value for t in d.tags]]
        for d in got.inputs.dataset_inputs
    ]
    out["outputs"] = [o.model_id for o in got.outputs.model_outputs]
    out["history"] = [[m.step, m.value] for m in client.get_metric_history(run_id, "curve")]
    out["loss_history"] = [
        [m.step, m.value, m.timestamp] for m in client.get_metric_history(run_id, "loss")
    ]
    out["root"] = sorted(f.path for f in client.list_artifacts(run_id))
    out["d2"] = sorted((f.path, f.is_dir) for f in client.list_artifacts(run_id, "d2"))
    downloaded = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="dir/a.txt")
    out["downloaded"] = open(downloaded).read()
    logged = client.get_logged_model(out["model_id"])
    out["logged_status"] = str(logged.status)
    out["logged_metrics"] = sorted(m.key for m in logged.metrics or [])
    version = mlflow.register_model(f"runs:/{run_id}/model", "iris-clf")
    out["version"] = version.version
    by_id = mlflow.register_model(out["model_uri"], "iris-clf")
    out["version_by_id"] = by_id.version
    out["version_source"] = client.get_model_version("iris-clf", by_id.version).source
    client.set_registered_model_alias("iris-clf", "champion", by_id.version)
    out["alias_version"] = client.get_model_version_by_alias("iris-clf", "champion").version
    model = mlflow.pyfunc.load_model("models:/iris-clf@champion")
    out["predicted"] = [int(v) for v in model.predict(X.iloc[:20])]
    out["expected"] = [int(v) for v in clf.predict(X.iloc[:20])]
    by_model_id = mlflow.pyfunc.load_model(out["model_uri"])
    out["by_model_id"] = [int(v) for v in by_model_id.predict(X.iloc[:20])]
    try:
        client.get_run("0" * 32)
    except MlflowException as exc:
        out["missing_run"] = exc.error_code
    out["experiments"] = [
        e.name for e in client.search_experiments(filter_string="name LIKE 'mlflow-%'")
    ]
    out["models"] = [m.name for m in client.search_registered_models("name = 'iris-clf'")]
    out["versions"] = sorted(v.version for v in client.search_model_versions("name='iris-clf'"))
    out["latest"] = [v.version for v in client.get_latest_versions("iris-clf")]
    client.set_registered_model_alias("iris-clf", "old", "1")
    client.delete_registered_model_alias("iris-clf", "old")
    out["aliases"] = client.get_registered_model("iris-clf").aliases
    print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def workflow(server: Any, client_home: Path) -> dict[str, Any]:
    """The MLflow workflow of the issue, run once: what the client observed."""
    return run_mlflow(server, client_home, WORKFLOW)


def test_the_mlflow_client_round_trips_a_workflow(workflow: dict[str, Any]) -> None:
    run_id = workflow["run_id"]
    assert len(run_id) == 32
    assert workflow["artifact_uri"] == (
        f"mlflow-artifacts:/{workflow['experiment_id']}/{run_id}/artifacts"
    )
    assert workflow["search"] == [run_id]
    assert workflow["search_none"] == 0
    assert workflow["name"] == "r1"
    assert workflow["status"] == "FINISHED"
    assert workflow["params"] == {"lr": "0.1", "a": "1", "b": "x"}
    assert workflow["metrics"] == {"loss": 0.5, "curve": 0.2, "acc": 0.9, "f1": 0.8}
    assert workflow["tags"]["team"] == "a"
    assert workflow["tags"]["mlflow.runName"] == "r1"
    assert workflow["tags"]["mlflow.source.type"] == "LOCAL"
    assert not any(key.startswith("driftline.mlflow") for key in workflow["tags"])
    assert [(name, context) for name, _, context in workflow["inputs"]] == [("iris", ["training"])]
    assert workflow["outputs"] == [workflow["model_id"]]
    # Each point once, by step (log_model re-sends the run's points to link them).
    assert workflow["history"] == [[0, 1.0], [1, 0.5], [2, 1 / 3], [3, 0.25], [4, 0.2]]
    assert workflow["loss_history"][0][:2] == [3, 0.5]
    assert workflow["root"] == ["d2", "dir", "model"]  # the adapter's records stay hidden
    assert workflow["d2"] == [["d2/b.txt", False], ["d2/sub", True]]
    assert workflow["downloaded"] == "hello"
    assert workflow["logged_status"] == "READY"
    assert workflow["logged_metrics"] == ["curve"]  # the points at the model's step (0)
    assert workflow["version"] == "1"
    assert workflow["version_by_id"] == "2"
    assert workflow["version_source"] == workflow["model_uri"]
    assert workflow["alias_version"] == "2"
    assert workflow["predicted"] == workflow["expected"]
    assert workflow["by_model_id"] == workflow["expected"]
    assert workflow["missing_run"] == "RESOURCE_DOES_NOT_EXIST"
    assert workflow["experiments"] == ["mlflow-wf"]
    assert workflow["models"] == ["iris-clf"]
    assert workflow["versions"] == ["1", "2"]
    assert workflow["latest"] == ["2"]
    assert workflow["aliases"] == {"champion": "2"}


def test_what_mlflow_logged_is_driftline_data(
    workflow: dict[str, Any], server: Any, server_workspace: Workspace
) -> None:
    ws = server_workspace
    run = ws.tracking.get_run(workflow["run_id"])
    assert run.name == "r1"
    assert ws.tracking.get_experiment(run.experiment_id).name == "mlflow-wf"
    assert dict(run.params) == {"a": "1", "b": "x", "lr": "0.1"}
    assert dict(run.metrics) == {"acc": 0.9, "curve": 0.2, "f1": 0.8, "loss": 0.5}
    assert run.user_tags["team"] == "a"
    assert "mlflow.runName" not in run.tags  # it is the run's name, not a tag
    history = ws.tracking.get_metric_history(run.id, "curve")
    assert [(p.step, p.value) for p in history] == [
        (0, 1.0),
        (1, 0.5),
        (2, 1 / 3),
        (3, 0.25),
        (4, 0.2),
    ]
    paths = {entry.path for entry in ws.tracking.list_artifacts(run.id)}
    assert {"dir/a.txt", "d2/b.txt", "d2/sub/c.txt", "model/MLmodel"} <= paths
    target = ws.tracking.download_artifacts(run.id, "dir/a.txt", ws.settings.home / "dl")
    assert target[0].read_text() == "hello"
    # The registry holds the MLflow model as an immutable, pinned version.
    version = ws.registry.get_version("iris-clf@champion")
    assert version.version == 2
    assert version.flavor == "mlflow"
    assert version.run_id == run.id
    files = {entry.path for entry in ws.registry.package_files(version)}
    assert {"MLmodel", "requirements.txt", "input_example.json"} <= files
    # And the CLI shows the same files.
    listed = subprocess.run(
        [
            sys.executable, "-m", "driftline.cli", "--uri", server.uri,
            "--artifact-root", str(server.root / "artifacts"),
            "--home", str(ws.settings.home), "artifacts", "list", run.id, "--json",
        ],
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "dir/a.txt" in {entry["path"] for entry in json.loads(listed.stdout)}
    # And a workspace in remote mode, on the server's URL, reads the same.
    remote = Workspace.from_settings(
        Settings.load(uri=server.url, home=ws.settings.home / "remote", async_logging=False)
    )
    try:
        assert remote.tracking.get_run(run.id).params == run.params
        assert {e.path for e in remote.tracking.list_artifacts(run.id)} == paths
        assert remote.registry.get_version("iris-clf@champion").flavor == "mlflow"
    finally:
        remote.close()


REVERSE = """
    import json, sys
    import mlflow
    from mlflow import MlflowClient

    run_id, experiment_id = sys.argv[1], sys.argv[2]
    client = MlflowClient()
    run = client.get_run(run_id)
    out = {
        "name": run.info.run_name,
        "status": run.info.status,
        "params": run.data.params,
        "metrics": run.data.metrics,
        "tags": run.data.tags,
        "history": [[m.step, m.value] for m in client.get_metric_history(run_id, "loss")],
        "experiment": client.get_experiment(experiment_id).name,
        "by_name": mlflow.get_experiment_by_name("driftline-side").experiment_id,
        "artifacts": [f.path for f in client.list_artifacts(run_id)],
    }
    found = client.search_runs([experiment_id], "params.depth = '3' and metrics.loss < 0.5")
    out["search"] = [r.info.run_id for r in found]
    by_name = client.search_runs([experiment_id], "tags.`mlflow.runName` = 'from-driftline'")
    out["search_by_name"] = [r.info.run_id for r in by_name]
    by_status = client.search_runs([experiment_id], "attributes.status = 'FINISHED'")
    out["search_by_status"] = [r.info.run_id for r in by_status]
    ordered = client.search_runs([experiment_id], order_by=["metrics.loss DESC"])
    out["ordered"] = [r.data.metrics.get("loss") for r in ordered]
    oldest_first = ["attributes.start_time ASC"]
    first = client.search_runs([experiment_id], max_results=1, order_by=oldest_first)
    rest = client.search_runs(
        [experiment_id], max_results=1, order_by=oldest_first, page_token=first.token
    )
    out["pages"] = [[r.info.run_name for r in first], [r.info.run_name for r in rest]]
    print(json.dumps(out))
"""


def test_a_run_logged_with_driftline_is_readable_by_mlflow(
    server: Any, client_home: Path, server_workspace: Workspace
) -> None:
    ws = server_workspace
    run = ws.tracking.create_run(
        "driftline-side", name="from-driftline", tags={"driftline.git.commit": "abc123"}
    )
    ws.tracking.log_batch(
        run.id,
        metrics=[("loss", 0.9, 0, None), ("loss", 0.4, 1, None)],
        params={"depth": 3},
        tags={"owner": "dl"},
    )
    ws.tracking.log_artifact_bytes(run.id, b"report", "reports/r.txt")
    ws.tracking.end_run(run.id)
    other = ws.tracking.create_run("driftline-side", name="second")
    ws.tracking.log_batch(other.id, metrics=[("loss", 0.7, 0, None)], params={"depth": 5})
    ws.tracking.end_run(other.id)

    seen = run_mlflow(server, client_home, REVERSE, run.id, run.experiment_id)
    assert seen["name"] == "from-driftline"
    assert seen["status"] == "FINISHED"
    assert seen["params"] == {"depth": "3"}
    assert seen["metrics"] == {"loss": 0.4}
    assert seen["tags"]["owner"] == "dl"
    assert seen["tags"]["mlflow.runName"] == "from-driftline"
    assert seen["tags"]["mlflow.source.git.commit"] == "abc123"
    assert seen["history"] == [[0, 0.9], [1, 0.4]]
    assert seen["experiment"] == "driftline-side"
    assert seen["by_name"] == run.experiment_id
    assert seen["artifacts"] == ["reports"]
    assert seen["search"] == [run.id]
    assert seen["search_by_name"] == [run.id]
    assert sorted(seen["search_by_status"]) == sorted([run.id, other.id])
    assert seen["ordered"] == [0.7, 0.4]
    assert seen["pages"] == [["from-driftline"], ["second"]]


# -- the wire, without the client: errors, bad input, paths -------------------------------


def _post(server: Any, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}{MLFLOW}/{path}", json=body, timeout=30)


@pytest.fixture
def rest_run(server: Any) -> dict[str, Any]:
    """A RUNNING run created over MLflow's REST API (in MLflow's default experiment)."""
    response = _post(
        server, "runs/create", {"experiment_id": "0", "run_name": "rest", "start_time": 1000}
    )
    assert response.status_code == 200, response.text
    return response.json()["run"]["info"]


def test_unknown_mlflow_routes_are_plain_404s(server: Any) -> None:
    for method, path in [
        ("POST", f"{MLFLOW}/no-such-route"),
        ("DELETE", f"{MLFLOW}/registered-models/delete"),
        ("POST", "/api/3.0/mlflow/traces"),
        ("GET", "/api/3.0/mlflow/server-info"),
    ]:
        response = httpx.request(method, f"{server.url}{path}", json={})
        assert response.status_code == 404, path
        assert not response.headers["content-type"].startswith("application/json"), path
    assert httpx.get(f"{server.url}/version").text == "3.0.0"


def test_missing_resources_are_json_404s(server: Any) -> None:
    for path in [
        f"runs/get?run_id={'0' * 32}",
        "experiments/get-by-name?experiment_name=nope",
        f"experiments/get?experiment_id={'1' * 32}",
        "registered-models/get?name=nope",
        "registered-models/alias?name=nope&alias=champion",
        f"metrics/get-history?run_id={'0' * 32}&metric_key=loss",
        "logged-models/m-nope",
    ]:
        response = httpx.get(f"{server.url}{MLFLOW}/{path}")
        assert response.status_code == 404, path
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", path
        assert response.json()["message"]


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("runs/create", [1, 2], "JSON object"),
        ("runs/log-metric", {"run_id": "RUN", "key": "loss", "value": "abc"}, "number"),
        ("runs/log-metric", {"run_id": "RUN", "key": "loss", "value": 1, "step": "x"}, "integer"),
        ("runs/log-metric", {"run_id": "RUN", "key": "../x", "value": 1}, "Invalid metric key"),
        ("runs/log-batch", {"run_id": "RUN", "params": [{"value": "1"}]}, "key"),
        ("runs/log-parameter", {"key": "a", "value": "1"}, "run_id"),
        ("runs/search", {"experiment_ids": ["0"], "filter": "metrics.loss <"}, "filter"),
        ("runs/search", {"experiment_ids": ["0"], "filter": "datasets.name = 'x'"}, "dataset"),
        ("runs/search", {"experiment_ids": ["0"], "filter": "tags.x > 'a'"}, "tags are text"),
        ("runs/search", {"experiment_ids": ["0"], "page_token": "garbage"}, "page token"),
        ("runs/update", {"run_id": "RUN", "status": "SCHEDULED"}, "status"),
        ("runs/update", {"run_id": "RUN", "run_name": "renamed"}, "cannot change the name"),
        ("runs/set-tag", {"run_id": "RUN", "key": "mlflow.runName", "value": "x"}, "name"),
        ("logged-models", {"experiment_id": "0", "name": "m"}, "mlflow.start_run()"),
        ("experiments/create", {"name": "x", "artifact_location": "s3://b/x"}, "artifact"),
        ("model-versions/create", {"name": "nope", "source": "s3://b/m"}, "No registered"),
    ],
)
def test_bad_input_is_a_400_in_mlflow_format(
    server: Any, rest_run: dict[str, Any], path: str, body: Any, needle: str
) -> None:
    if isinstance(body, dict) and body.get("run_id") == "RUN":
        body = {**body, "run_id": rest_run["run_id"]}
    response = _post(server, path, body)
    assert response.status_code in (400, 404), response.text
    error = response.json()
    assert error["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert needle.lower() in error["message"].lower(), error["message"]


def test_malformed_json_is_a_400_in_mlflow_format(server: Any) -> None:
    response = httpx.post(
        f"{server.url}{MLFLOW}/runs/create",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_ended_runs_stay_ended_and_params_are_write_once(
    server: Any, rest_run: dict[str, Any]
) -> None:
    run_id = rest_run["run_id"]
    assert _post(
        server, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"}
    ).is_success
    changed = _post(server, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "2"})
    assert changed.status_code == 409
    assert changed.json()["error_code"] == "RESOURCE_CONFLICT"
    ended = _post(server, "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 5000})
    assert ended.json()["run_info"]["end_time"] == 5000
    again = _post(server, "runs/update", {"run_id": run_id, "status": "FINISHED"})
    assert again.status_code == 200  # the same status again is a no-op, as in MLflow
    reopened = _post(server, "runs/update", {"run_id": run_id, "status": "RUNNING"})
    assert reopened.status_code == 409
    assert "cannot be reopened" in reopened.json()["message"]


def _raw(server: Any, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """A request whose path goes out byte for byte (no client-side normalization)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_artifact_paths_that_could_escape_are_refused(
    server: Any, rest_run: dict[str, Any]
) -> None:
    root = f"{ARTIFACTS}/{rest_run['experiment_id']}/{rest_run['run_id']}/artifacts"
    for path in [
        f"{root}/../../../etc/passwd",
        f"{root}/a/%2e%2e/%2e%2e/x",
        f"{root}/a%00b",
        f"{root}/a%5cb",
        f"{ARTIFACTS}//etc/passwd",
        f"{root}/.mlflow/models/m-x.json",
    ]:
        for method in ("PUT", "GET"):
            if method == "GET" and ".mlflow" in path:
                continue
            status, error = _raw(server, method, path, b"x" if method == "PUT" else b"")
            assert status == 400, (method, path, error)
            assert error["error_code"] == "INVALID_PARAMETER_VALUE", (method, path)
    status, error = _raw(server, "GET", f"{ARTIFACTS}?path=..%2F..%2Fetc")
    assert status == 400
    assert "'..'" in error["message"]


def test_large_artifacts_stream_both_ways(
    server: Any, rest_run: dict[str, Any], server_workspace: Workspace
) -> None:
    import hashlib

    chunk = os.urandom(1 << 20)
    total = 24
    root = f"{ARTIFACTS}/{rest_run['experiment_id']}/{rest_run['run_id']}/artifacts"
    url = f"{server.url}{root}/big/blob.bin"

    def body() -> Iterator[bytes]:
        for _ in range(total):
            yield chunk

    assert httpx.put(url, content=body(), timeout=120).status_code == 200
    digest = hashlib.sha256()
    size = 0
    with httpx.stream("GET", url, timeout=120) as response:
        assert response.status_code == 200
        for part in response.iter_bytes():
            digest.update(part)
            size += len(part)
    assert size == total * len(chunk)
    assert digest.hexdigest() == hashlib.sha256(chunk * total).hexdigest()
    entries = server_workspace.tracking.list_artifacts(rest_run["run_id"], "big")
    assert [(e.path, e.size) for e in entries] == [("big/blob.bin", total * len(chunk))]


_GARBAGE: list[Any] = [
    None, 7, -1, 2**70, 1.5, "x", "", "\x00", "../..", [], {}, [1], [{"key": 1}],
    [{"key": "k", "value": 2**70}], "NaN", True, "a" * 5000, {"nested": {"x": 1}},
]  # fmt: skip
_FIELDS = [
    "run_id", "run_uuid", "experiment_id", "experiment_ids", "name", "key", "value", "step",
    "timestamp", "start_time", "end_time", "status", "run_name", "user_id", "filter",
    "max_results", "page_token", "order_by", "run_view_type", "view_type", "tags", "params",
    "metrics", "datasets", "models", "source", "version", "alias", "model_id", "stages",
    "description", "experiment_name", "metric_key", "path",
]  # fmt: skip
_POSTS = [
    "experiments/create", "experiments/search", "experiments/delete", "experiments/restore",
    "runs/create", "runs/update", "runs/delete", "runs/restore", "runs/search",
    "runs/log-metric", "runs/log-parameter", "runs/set-tag", "runs/log-batch",
    "runs/log-inputs", "runs/outputs", "logged-models", "logged-models/search",
    "logged-models/MODEL/params", "registered-models/create", "registered-models/set-tag",
    "registered-models/get-latest-versions", "model-versions/create", "registered-models/alias",
]  # fmt: skip
_PATCHES = ["logged-models/MODEL", "logged-models/MODEL/tags", "registered-models/update"]
_GETS = [
    "experiments/get-by-name", "experiments/get", "experiments/search", "runs/get",
    "metrics/get-history", "artifacts/list", "logged-models/MODEL", "registered-models/get",
    "registered-models/search", "registered-models/get-latest-versions", "model-versions/get",
    "model-versions/get-download-uri", "model-versions/search", "registered-models/alias",
]  # fmt: skip


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def any_server(request: pytest.FixtureRequest, server_factory: Callable[..., Any]) -> Any:
    """A server on SQLite (this module's), or one of its own on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("server")
    pg = request.getfixturevalue("postgres")
    return server_factory(uri=pg.url(pg.create_database()))


def test_no_malformed_request_gets_a_server_error(any_server: Any) -> None:
    """Valid requests with fields replaced by garbage: always a 4xx in MLflow's format (or
    success), never a 5xx. Every field of every route gets an out-of-range integer and a
    NUL character; then random mixes of one to three bad fields."""
    import random

    server = any_server

    rng = random.Random(5)
    run = _post(server, "runs/create", {"experiment_id": "0", "run_name": "fuzz"}).json()
    run_id, experiment_id = run["run"]["info"]["run_id"], run["run"]["info"]["experiment_id"]
    root = f"{ARTIFACTS}/{experiment_id}/{run_id}/artifacts"
    assert httpx.put(f"{server.url}{root}/d/f.txt", content=b"f").status_code == 200
    model = _post(
        server, "logged-models", {"experiment_id": experiment_id, "source_run_id": run_id}
    ).json()["model"]["info"]["model_id"]
    assert _post(server, "registered-models/create", {"name": "fz"}).status_code == 200
    base = {
        "run_id": run_id, "experiment_id": experiment_id, "experiment_ids": [experiment_id],
        "name": "fz", "key": "k", "value": "v", "source": f"runs:/{run_id}/d", "version": "1",
        "alias": "a1", "model_id": model, "metric_key": "k", "experiment_name": "default",
        "path": f"{experiment_id}/{run_id}/artifacts",
    }  # fmt: skip
    failures = []

    def check(method: str, path: str, response: httpx.Response) -> None:
        if response.status_code >= 500:
            failures.append(f"{method} {path} -> {response.status_code}: {response.text[:200]}")
        elif response.status_code >= 400 and "error_code" not in response.json():
            failures.append(f"{method} {path} -> {response.status_code} without error_code")

    with httpx.Client(base_url=server.url, timeout=30) as http:
        for route in _POSTS:
            for field in _FIELDS:
                for value in (2**70, "a\x00b"):
                    path = f"{MLFLOW}/{route.replace('MODEL', model)}"
                    check("POST", path, http.post(path, json={**base, field: value}))
        for route in _GETS:
            for field in _FIELDS:
                path = f"{MLFLOW}/{route.replace('MODEL', model)}"
                query = {k: str(v) for k, v in base.items() if not isinstance(v, list)}
                check("GET", path, http.get(path, params={**query, field: "a\x00b"}))
        for _ in range(12):
            for route in _POSTS + _PATCHES:
                method = "PATCH" if route in _PATCHES else "POST"
                body: Any = dict(base)
                for field in rng.sample(_FIELDS, rng.randint(1, 3)):
                    body[field] = rng.choice(_GARBAGE)
                if rng.random() < 0.1:
                    body = rng.choice(_GARBAGE)
                path = f"{MLFLOW}/{route.replace('MODEL', model)}"
                check(method, path, http.request(method, path, json=body))
            for route in _GETS:
                query = {k: str(v) for k, v in base.items() if not isinstance(v, list)}
                for field in rng.sample(_FIELDS, rng.randint(1, 3)):
                    query[field] = str(rng.choice(_GARBAGE))
                path = f"{MLFLOW}/{route.replace('MODEL', model)}"
                check("GET", path, http.get(path, params=query))
            garbage = str(rng.choice(_GARBAGE))
            check(
                "GET",
                ARTIFACTS,
                http.get(
                    ARTIFACTS, params={"path": f"{experiment_id}/{run_id}/artifacts/{garbage}"}
                ),
            )
    assert not failures, "\n".join(failures[:20])


AS_USER = """
    import json, sys
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    out = {}
    def attempt(name, action):
        try:
            out[name] = action()
        except MlflowException as exc:
            out[name] = exc.error_code

    attempt("experiment", lambda: mlflow.set_experiment("guarded").experiment_id)
    def log():
        with mlflow.start_run(run_name="mine") as run:
            mlflow.log_metric("loss", 0.1)
        return run.info.run_id
    attempt("run_id", log)
    if len(sys.argv) > 1:
        client = MlflowClient()
        attempt("read", lambda: client.get_run(sys.argv[1]).info.user_id)
        attempt("tag", lambda: client.set_tag(sys.argv[1], "k", "v") or "ok")
    print(json.dumps(out))
"""


def test_the_mlflow_client_authenticates_and_is_authorized(
    server_factory: Callable[..., Any], client_home: Path
) -> None:
    server = server_factory(args=("--auth",))

    def create_user(name: str, role: str) -> str:
        done = subprocess.run(
            [
                sys.executable, "-m", "driftline.cli", "--home", str(server.root / ".driftline"),
                "--uri", server.uri, "users", "create", name, "--role", role, "--with-token",
            ],
            capture_output=True, text=True, timeout=120, cwd=server.root,
            env={k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    create_user("root", "admin")
    editor, viewer = create_user("ed", "editor"), create_user("vi", "viewer")

    def as_user(name: str, token: str, *args: str) -> dict[str, Any]:
        credentials = {"MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": token}
        return run_mlflow(server, client_home, AS_USER, *args, env=credentials)

    wrote = as_user("ed", editor)
    assert len(wrote["run_id"]) == 32
    read = as_user("vi", viewer, wrote["run_id"])
    assert read["experiment"] == wrote["experiment"]  # it exists: reading is allowed
    assert read["run_id"] == "PERMISSION_DENIED"
    assert read["read"] == "ed"  # the run's user is who logged it, not the OS user
    assert read["tag"] == "PERMISSION_DENIED"
    response = httpx.get(f"{server.url}{MLFLOW}/runs/get", params={"run_id": wrote["run_id"]})
    assert response.status_code == 401
