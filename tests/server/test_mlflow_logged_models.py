"""MLflow logged models live in a table: created, searched, updated and deleted through
the MLflow client, and records an older server kept with their runs are still read."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from driftline.workspace import Workspace

pytestmark = pytest.mark.server
pytest.importorskip("mlflow", reason="the MLflow client is a dev extra")


@pytest.fixture
def client(server: Any) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=server.url)


def test_a_logged_model_is_created_searched_updated_and_deleted(
    client: Any, on_server: Callable[[], Workspace]
) -> None:
    from mlflow.exceptions import MlflowException

    experiment_id = client.create_experiment("logged")
    run = client.create_run(experiment_id)
    model = client.create_logged_model(
        experiment_id,
        name="model",
        source_run_id=run.info.run_id,
        params={"C": "1"},
        tags={"stage": "dev"},
    )
    assert str(model.status) == "PENDING"
    client.set_logged_model_tags(model.model_id, {"owner": "ana"})
    client.log_model_params(model.model_id, {"depth": "3"})
    ready = client.finalize_logged_model(model.model_id, "READY")
    assert str(ready.status) == "READY"
    got = client.get_logged_model(model.model_id)
    assert got.tags == {"stage": "dev", "owner": "ana"}
    assert got.params == {"C": "1", "depth": "3"}
    found = client.search_logged_models([experiment_id], filter_string="tags.owner = 'ana'")
    assert [m.model_id for m in found] == [model.model_id]
    # A row of the tracking stage's table, as the server reads it.
    ws = on_server()
    assert ws.tracking.logged_models is not None
    record = ws.tracking.logged_models.find(model.model_id)
    assert record is not None
    assert record["status"] == "LOGGED_MODEL_READY"

    client.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException) as gone:
        client.get_logged_model(model.model_id)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert list(client.search_logged_models([experiment_id])) == []
    with pytest.raises(MlflowException) as again:
        client.delete_logged_model(model.model_id)
    assert again.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # The model's files stay with its run.
    assert client.get_run(run.info.run_id).info.run_id == run.info.run_id


def test_concurrent_updates_of_one_logged_model_all_land(client: Any) -> None:
    experiment_id = client.create_experiment("race")
    run = client.create_run(experiment_id)
    model = client.create_logged_model(experiment_id, source_run_id=run.info.run_id)
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def tag(i: int) -> None:
        barrier.wait()
        try:
            client.set_logged_model_tags(model.model_id, {f"t{i}": str(i)})
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)

    threads = [threading.Thread(target=tag, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert client.get_logged_model(model.model_id).tags == {f"t{i}": str(i) for i in range(8)}


def test_a_record_an_older_server_kept_with_its_run_is_read_and_deletable(
    client: Any, on_server: Callable[[], Workspace]
) -> None:
    from mlflow.exceptions import MlflowException

    from driftline.server.mlflow._records import RunRecords

    experiment_id = client.create_experiment("legacy")
    run_id = client.create_run(experiment_id).info.run_id
    ws = on_server()
    run = ws.tracking.get_run(run_id)
    model_id = f"m-{run_id}-0badcafe"
    legacy = {
        "model_id": model_id,
        "experiment_id": experiment_id,
        "name": "old",
        "source_run_id": run_id,
        "folder": "old",
        "status": "LOGGED_MODEL_READY",
        "model_type": "",
        "creation_timestamp_ms": 1_000,
        "last_updated_timestamp_ms": 1_000,
        "tags": {"kept": "yes"},
        "params": {},
    }
    RunRecords(ws).put(run, "models", model_id, legacy)  # as an older server kept it
    assert ws.tracking.logged_models is not None
    assert ws.tracking.logged_models.find(model_id) is None

    found = list(client.search_logged_models([experiment_id]))
    assert [(m.model_id, m.tags) for m in found] == [(model_id, {"kept": "yes"})]
    assert client.get_logged_model(model_id).name == "old"
    assert ws.tracking.logged_models.find(model_id) is not None  # read into the table
    client.delete_logged_model(model_id)
    # Deleted for good: the copy still kept with the run is not read in again.
    with pytest.raises(MlflowException):
        client.get_logged_model(model_id)
    assert list(client.search_logged_models([experiment_id])) == []
