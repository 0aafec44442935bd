"""The deployment store on every metadata backend (SQLite memory/file, PostgreSQL):
compare-and-set on the generation, audit entries in the same transaction."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from driftline.core.audit import iter_audit, verify_audit_log
from driftline.core.metadata import Database, ensure_schema
from driftline.errors import AlreadyExistsError, ConflictError
from driftline.serving._sql import SqlDeploymentStore
from driftline.serving.models import (
    BatchingPolicy,
    CanaryPolicy,
    Deployment,
    DeploymentSpec,
    Rollout,
    RolloutState,
    ShadowPolicy,
)
from driftline.stages import migration_history

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlDeploymentStore]:
    database = Database(db_url)
    ensure_schema(database, migration_history())
    yield SqlDeploymentStore(database)
    database.dispose()


def record(name: str = "churn", **rollout: object) -> Deployment:
    spec = DeploymentSpec(
        name=name, model="churn", stable="champion",
        canary=CanaryPolicy(version="challenger", steps=(5, 50), interval=0.5),
        shadow=ShadowPolicy(version="7", sample=0.5),
        batching=BatchingPolicy(max_batch_size=8), routing_key="customer_id",
        gates={"gates": [{"signature": "compatible"}]},
    )  # fmt: skip
    state = Rollout(
        state=RolloutState.PROGRESSING, canary_version=2, shadow_version=7,
        window_start=NOW, next_check_at=NOW, last_check={"verdict": "wait"},
    )  # fmt: skip

    return Deployment(
        spec=spec, rollout=dataclasses.replace(state, **rollout), generation=0,  # type: ignore[arg-type]
        created_at=NOW, updated_at=NOW, updated_by="me",
    )  # fmt: skip


def test_records_round_trip_and_changes_are_compare_and_set(store: SqlDeploymentStore) -> None:
    saved = store.save_deployment(record(), expected=None, actor="ann", action="deploy_apply")
    assert saved.generation == 1
    assert store.find_deployment("churn") == saved  # what save returns is what reads back
    with pytest.raises(AlreadyExistsError):
        store.save_deployment(record(), expected=None, actor="ann", action="deploy_apply")
    stepped = store.save_deployment(
        record(step=1), expected=saved.generation, actor="bob", action="deploy_step"
    )
    assert stepped.generation == 2
    assert stepped.canary_weight == 50
    with pytest.raises(ConflictError, match="changed meanwhile"):
        store.save_deployment(record(step=0), expected=saved.generation, actor="c", action="x")
    # Bookkeeping without an audit entry.
    store.save_deployment(record(step=1), expected=2, actor="bob", action=None)
    assert [(e.actor, e.action) for e in store.history("churn")] == [
        ("bob", "deploy_step"), ("ann", "deploy_apply"),
    ]  # fmt: skip
    assert store.history("chur") == []  # exact names only
    assert [d.name for d in store.list_deployments()] == ["churn"]
    assert store.find_deployment("nope") is None
    assert store.db.read(verify_audit_log).ok


def test_concurrent_writers_one_wins(store: SqlDeploymentStore) -> None:
    saved = store.save_deployment(record(), expected=None, actor="ann", action="deploy_apply")
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def write(n: int) -> None:
        barrier.wait()
        try:
            store.save_deployment(
                record(step=1), expected=saved.generation, actor=f"w{n}", action="deploy_step"
            )
            outcomes.append("won")
        except ConflictError:
            outcomes.append("lost")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    steps = store.db.read(lambda c: [e for e in iter_audit(c) if e.action == "deploy_step"])
    assert len(steps) == 1  # the losers' audit entries were never written
