"""MLflow records kept as run artifacts: updates are compare-and-set, so none is lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from driftline.server.mlflow._records import RunRecords
from driftline.tracking.models import ArtifactEntry
from driftline.workspace import Workspace

MLFLOW = "/api/2.0/mlflow"


def test_replace_artifact_is_a_compare_and_set(workspace: Workspace) -> None:
    store = workspace.tracking.artifacts
    run = workspace.tracking.create_run("e")

    def entry(data: bytes) -> ArtifactEntry:
        blob = workspace.content.put_bytes(data)
        return ArtifactEntry(
            path="r.json", digest=blob.digest, size=blob.size, created_at=datetime.now(UTC)
        )

    first, second, third = entry(b"1"), entry(b"2"), entry(b"3")
    assert store.replace_artifact(run.id, first, expected=None)  # type: ignore[attr-defined]
    assert not store.replace_artifact(run.id, second, expected=None)  # type: ignore[attr-defined]
    assert not store.replace_artifact(  # type: ignore[attr-defined]
        run.id, second, expected=third.digest
    )
    assert store.replace_artifact(run.id, second, expected=first.digest)  # type: ignore[attr-defined]
    assert [e.digest for e in store.list_artifacts(run.id)] == [second.digest]


def test_an_update_that_loses_a_race_applies_its_change_on_top(workspace: Workspace) -> None:
    records = RunRecords(workspace)
    run = workspace.tracking.create_run("e")
    run = records.put(run, "models", "m-1", {"tags": {}})
    calls = 0

    def add_a(record: dict[str, Any] | None) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        assert record is not None
        if calls == 1:  # another request changes the record in between
            records.update(run, "models", "m-1", lambda r: {"tags": {**r["tags"], "b": "2"}})  # type: ignore[index]
        return {"tags": {**record["tags"], "a": "1"}}

    written = records.update(run, "models", "m-1", add_a)
    assert calls == 2  # the first try lost the compare-and-set and ran again
    assert written == {"tags": {"a": "1", "b": "2"}}
    assert records.get(run, "models", "m-1") == written


@pytest.mark.server
def test_concurrent_tag_updates_of_one_logged_model_all_land(
    server_factory: Callable[..., Any],
) -> None:
    server = server_factory(workers=2)
    api = f"{server.url}{MLFLOW}"
    experiment = httpx.post(f"{api}/experiments/create", json={"name": "race"}).json()
    run = httpx.post(
        f"{api}/runs/create", json={"experiment_id": experiment["experiment_id"]}
    ).json()["run"]["info"]
    model = httpx.post(
        f"{api}/logged-models",
        json={"experiment_id": experiment["experiment_id"], "source_run_id": run["run_id"]},
    ).json()["model"]["info"]
    barrier = threading.Barrier(12)
    failures: list[str] = []

    def tag(i: int) -> None:
        barrier.wait()
        answer = httpx.patch(
            f"{api}/logged-models/{model['model_id']}/tags",
            json={"tags": [{"key": f"t{i}", "value": str(i)}]},
            timeout=60,
        )
        if answer.status_code != 200:
            failures.append(answer.text)

    threads = [threading.Thread(target=tag, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    got = httpx.get(f"{api}/logged-models/{model['model_id']}").json()["model"]["info"]
    assert {t["key"]: t["value"] for t in got["tags"]} == {f"t{i}": str(i) for i in range(12)}
