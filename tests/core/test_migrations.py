"""One Alembic history for SQLite and PostgreSQL (the kernel chain plus the stages'
branches), equal to the table declarations; its heads computed, never hand-kept."""

from __future__ import annotations

import importlib
import itertools
import subprocess
import sys
import textwrap
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import driftline
from driftline.core.metadata import (
    BASE_REVISION,
    Database,
    current_revision,
    ensure_schema,
    metadata,
    upgrade,
)
from driftline.core.metadata.schema import VERSION_TABLE
from driftline.errors import SchemaVersionError
from driftline.stages import migration_history

HISTORY = migration_history()
HEAD_REVISION = HISTORY.label


def import_every_table_module() -> list[str]:
    """Import every module that declares tables, so ``metadata`` holds every declaration.

    Stages declare theirs in ``_tables`` modules, the kernel in its own modules (the audit
    log): any module whose source builds a ``Table(`` on the shared registry counts.
    """
    package = Path(driftline.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        source = path.read_text(encoding="utf-8")
        if "Table(" in source and "metadata" in source:
            parts = list(path.relative_to(package.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            importlib.import_module(name)
            found.append(name)
    return found


def scripts() -> ScriptDirectory:
    return ScriptDirectory(
        str(resources.files("driftline.core.metadata") / "migrations"),
        version_locations=[str(folder) for folder in HISTORY.folders],
    )


def differences(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        return list(compare_metadata(context, metadata))


def set_version(db: Database, revision: str) -> None:
    """Make ``revision`` the database's one head (the table holds a row per head)."""

    def write(conn: Any) -> None:
        conn.execute(text(f"DELETE FROM {VERSION_TABLE}"))
        conn.execute(
            text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:r)"), {"r": revision}
        )

    db.write(write)


@pytest.fixture
def fresh(new_database_url: Callable[[], str]) -> Any:
    opened: list[Database] = []

    def make() -> Database:
        db = Database(new_database_url())
        opened.append(db)
        return db

    yield make
    for db in opened:
        db.dispose()


def test_tracking_tables_are_declared() -> None:
    assert "driftline.tracking._tables" in import_every_table_module()
    assert {"experiments", "runs", "params", "tags", "metrics", "latest_metrics"} <= set(
        metadata.tables
    )


def test_the_computed_heads_are_alembics_heads() -> None:
    directory = scripts()
    assert sorted(directory.get_heads()) == sorted(HISTORY.heads)
    assert {rev.revision for rev in directory.walk_revisions()} == HISTORY.revisions


def test_the_kernel_chain_is_linear_from_base_to_its_last_revision() -> None:
    directory = scripts()
    chain = list(directory.walk_revisions("base", BASE_REVISION))
    assert chain[0].revision == BASE_REVISION
    assert chain[-1].down_revision is None
    for newer, older in itertools.pairwise(chain):
        assert newer.down_revision == older.revision


def test_every_stage_branch_starts_from_the_kernel_chain_under_its_own_label() -> None:
    from driftline.stages import load_stages

    directory = scripts()
    kernel = {rev.revision for rev in directory.walk_revisions("base", BASE_REVISION)}
    for stage in load_stages():
        if stage.migrations is None:
            continue
        branch = [r for r in directory.walk_revisions() if stage.name in r.branch_labels]
        assert branch, f"the {stage.name} stage's first revision needs branch_labels"
        first = branch[-1]
        assert set(first._versioned_down_revisions) <= kernel


def test_an_empty_database_is_created_on_open_and_matches_the_declarations(
    fresh: Callable[[], Database],
) -> None:
    import_every_table_module()
    db = fresh()
    assert current_revision(db) is None
    ensure_schema(db, HISTORY)
    assert current_revision(db) == HEAD_REVISION
    tables = set(db.read(lambda conn: inspect(conn).get_table_names()))
    assert set(metadata.tables) <= tables
    assert differences(db) == []
    ensure_schema(db, HISTORY)  # idempotent
    assert current_revision(db) == HEAD_REVISION


def test_a_workspace_creates_its_database_on_first_open(
    make_workspace: Callable[..., Any], backend: str
) -> None:
    ws = make_workspace()
    assert current_revision(ws.database) == HEAD_REVISION
    ws.tracking.create_experiment("first")
    assert ws.tracking.get_experiment("first").name == "first"


def test_a_newer_revision_is_refused(fresh: Callable[[], Database]) -> None:
    db = fresh()
    ensure_schema(db, HISTORY)
    set_version(db, "9999")
    with pytest.raises(SchemaVersionError, match="newer") as info:
        ensure_schema(db, HISTORY)
    assert "Upgrade driftline" in str(info.value)
    assert current_revision(db) == "9999", "a refused database must not be touched"


def test_an_older_revision_is_refused_until_db_upgrade(fresh: Callable[[], Database]) -> None:
    db = fresh()
    ensure_schema(db, HISTORY)
    set_version(db, "0000")
    with pytest.raises(SchemaVersionError, match="driftline db upgrade") as info:
        ensure_schema(db, HISTORY)
    assert "0000" in str(info.value)
    assert HEAD_REVISION in str(info.value)
    assert current_revision(db) == "0000"


def test_schema_version_errors_are_backend_errors() -> None:
    assert issubclass(SchemaVersionError, driftline.BackendError)
    assert SchemaVersionError.http_status == 503


# Rows as the first revision's tracking tables hold them (that schema never changes).
_OLD_ROWS = [
    "INSERT INTO experiments (experiment_id, name, description, lifecycle_stage, created_at,"
    " updated_at) VALUES ('e0000000000000000000000000000001', 'old', NULL, 'active', 1, 1)",
    "INSERT INTO runs (run_id, experiment_id, name, status, lifecycle_stage, user_id,"
    " start_time, end_time, heartbeat_at, parent_run_id) VALUES ("
    "'r0000000000000000000000000000001', 'e0000000000000000000000000000001', 'r', 'FINISHED',"
    " 'active', 'u', 1000, 2000, 1000, NULL)",
    "INSERT INTO params (run_id, key, value, value_num) VALUES"
    " ('r0000000000000000000000000000001', 'C', '1', 1.0)",
    "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES"
    " ('r0000000000000000000000000000001', 'loss', 0.5, 0, 1500)",
    "INSERT INTO latest_metrics (run_id, key, value, step, timestamp) VALUES"
    " ('r0000000000000000000000000000001', 'loss', 0.5, 0, 1500)",
]


def test_a_database_made_by_the_previous_release_keeps_its_data_through_upgrade(
    fresh: Callable[[], Database],
) -> None:
    from driftline.tracking._sql import SqlTrackingStore

    import_every_table_module()
    previous = scripts().get_revision(BASE_REVISION).down_revision
    if previous is None:
        pytest.skip("the chain has a single revision")
    db = fresh()
    upgrade(db, HISTORY, str(previous))
    assert current_revision(db) == previous

    def insert(conn: Any) -> None:
        for statement in _OLD_ROWS:
            conn.execute(text(statement))

    db.write(insert)

    with pytest.raises(SchemaVersionError, match="driftline db upgrade"):
        ensure_schema(db, HISTORY)
    assert upgrade(db, HISTORY) == (previous, HEAD_REVISION)
    ensure_schema(db, HISTORY)
    assert differences(db) == []
    kept = SqlTrackingStore(db).find_run("r0000000000000000000000000000001")
    assert kept is not None
    assert kept.name == "r"
    assert kept.status.value == "FINISHED"
    assert kept.params == {"C": "1"}
    assert kept.metrics == {"loss": 0.5}


# -- first open by several processes at once -------------------------------------------


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait for a child (reading its pipes, so a chatty child cannot block); code, stderr."""
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


_OPEN_AT_ONCE = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import sqlalchemy
    from sqlalchemy import event
    from driftline.settings import Settings
    from driftline.workspace import Workspace

    home, url, meeting = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    paused = []

    # Line both processes up right before their first CREATE TABLE, so that both have
    # looked at the empty database before either creates anything (a barrier through
    # files, given up after 2 s so that a serialized migration still completes).
    def before(conn, cursor, statement, *args):
        if not paused and statement.lstrip().upper().startswith("CREATE TABLE"):
            paused.append(True)
            (meeting / f"arrived-{os.getpid()}").touch()
            deadline = time.monotonic() + 2.0
            while len(list(meeting.glob("arrived-*"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.005)

    event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", before)
    ws = Workspace.from_settings(Settings.load(
        home=home, uri=url, artifact_root=home + "/artifacts",
        async_logging=False, capture_environment=False))
    ws.tracking.create_run("shared")
    ws.close()
    """
)


def test_two_processes_opening_a_fresh_database_at_once_both_succeed(
    backend: str, new_database_url: Callable[[], str], tmp_path: Path
) -> None:
    if backend == "sqlite-memory":
        pytest.skip("an in-memory database cannot be shared between processes")
    url = new_database_url()
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    script = tmp_path / "open_at_once.py"
    script.write_text(_OPEN_AT_ONCE)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / f"home{i}"), url, str(meeting)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [finish(proc) for proc in procs]
    failures = [
        next((line for line in reversed(err.splitlines()) if "Error" in line), err[-300:])
        for code, err in results
        if code != 0
    ]
    assert failures == []
    db = Database(url)
    try:
        assert current_revision(db) == HEAD_REVISION
        count = db.read(lambda conn: conn.exec_driver_sql("SELECT count(*) FROM runs").scalar())
        assert count == 2
    finally:
        db.dispose()


def test_a_database_from_before_the_tracking_branch_upgrades_and_keeps_its_runs(
    fresh: Callable[[], Database],
) -> None:
    """A database the release before the ``tracking`` branch made (heads ``0004`` and
    ``monitoring_0001``) is refused until ``driftline db upgrade``, which adds the
    ``logged_models`` table and keeps every row."""
    from driftline.core.metadata import current_heads
    from driftline.tracking._logged_models import SqlLoggedModelStore
    from driftline.tracking._sql import SqlTrackingStore

    import_every_table_module()
    db = fresh()
    upgrade(db, HISTORY, "monitoring_0001")
    assert current_heads(db) == {"monitoring_0001"}
    assert "logged_models" not in inspect(db.engine).get_table_names()

    def insert(conn: Any) -> None:
        for statement in _OLD_ROWS:
            conn.execute(text(statement))

    db.write(insert)
    with pytest.raises(SchemaVersionError, match="driftline db upgrade"):
        ensure_schema(db, HISTORY)
    upgrade(db, HISTORY)
    ensure_schema(db, HISTORY)
    assert current_heads(db) == HISTORY.heads  # every branch, tracking_0001 among them
    assert "tracking_0001" in HISTORY.heads
    assert differences(db) == []
    run = SqlTrackingStore(db).find_run("r0000000000000000000000000000001")
    assert run is not None
    assert run.params == {"C": "1"}
    models = SqlLoggedModelStore(db)
    model_id = f"m-{run.id}-00000001"
    record: dict[str, Any] = {
        "model_id": model_id,
        "experiment_id": run.experiment_id,
        "source_run_id": run.id,
        "name": "model",
        "status": "LOGGED_MODEL_PENDING",
        "creation_timestamp_ms": 1,
        "last_updated_timestamp_ms": 1,
        "tags": {},
        "params": {},
    }
    assert models.add(record)
    assert models.find(model_id) == record
