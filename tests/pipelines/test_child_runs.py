"""Nested runs started and finished in one call each (what a pipeline step or a tuning
trial costs in the metadata store), on every backend, the HTTP client included (which
falls back to the general calls)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.conftest import ALL_BACKENDS

from driftline.errors import ConflictError, InvalidArgumentError, NotFoundError
from driftline.tracking import ArtifactEntry, RunStatus
from driftline.workspace import Workspace


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_a_child_run_starts_and_finishes_in_one_call_each(workspace: Workspace) -> None:
    tracking = workspace.tracking
    parent = tracking.create_run("steps", name="pipeline")
    child = tracking.start_child_run(
        parent.experiment_id,
        parent_id=parent.id,
        name="train",
        tags={"driftline.pipeline.step": "train"},
        params={"C": "0.5", "depth": 3},
    )
    stored = tracking.get_run(child.id)
    # What start_child_run returns is what a read gives back.
    assert (stored.status, stored.parent_id, stored.name) == (RunStatus.RUNNING, parent.id, "train")
    assert stored.params == child.params == {"C": "0.5", "depth": "3"}
    assert stored.tags == child.tags
    assert stored.start_time == child.start_time
    tracking.log_batch(child.id, metrics=[("loss", 0.25, 0, None)])
    tracking.flush()
    blob = workspace.content.put_bytes(b"output")
    entry = ArtifactEntry(
        path="outputs/output.json", digest=blob.digest, size=blob.size, created_at=datetime.now(UTC)
    )
    tracking.finish_child_run(child.id, RunStatus.FINISHED, [entry])
    ended = tracking.get_run(child.id)
    assert ended.status is RunStatus.FINISHED
    assert ended.end_time is not None
    assert ended.metrics == {"loss": 0.25}
    assert [a.path for a in tracking.list_artifacts(child.id)] == ["outputs/output.json"]
    # A run ends once.
    with pytest.raises(ConflictError, match="FINISHED"):
        tracking.finish_child_run(child.id, RunStatus.FAILED)


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_child_runs_refuse_bad_input(workspace: Workspace) -> None:
    tracking = workspace.tracking
    parent = tracking.create_run("steps", name="pipeline")
    with pytest.raises(InvalidArgumentError, match="param key"):
        tracking.start_child_run(
            parent.experiment_id, parent_id=parent.id, name="x", params={"": 1}
        )
    child = tracking.start_child_run(parent.experiment_id, parent_id=parent.id, name="x")
    with pytest.raises(InvalidArgumentError, match="FINISHED, FAILED or KILLED"):
        tracking.finish_child_run(child.id, RunStatus.RUNNING)
    with pytest.raises(NotFoundError):
        tracking.finish_child_run("0" * 32, RunStatus.FINISHED)
