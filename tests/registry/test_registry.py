"""Registry behaviour: registration, refs, aliases under concurrency, approvals, audit."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from driftline.core.audit import audit_log
from driftline.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from driftline.registry.store import ANY_HOLDER
from driftline.workspace import Workspace


@pytest.fixture
def ws(make_workspace: Callable[..., Workspace]) -> Workspace:
    """A workspace on each backend (SQLite memory and file, PostgreSQL), acting as alice;
    tests marked ``remote_too`` also through a driftline server (the HTTP backend)."""
    return make_workspace(user="alice")


try:  # `python -m pytest` from the repository root, as CI runs it
    from tests.conftest import ALL_BACKENDS
except ImportError:  # pragma: no cover - only tests/ on sys.path
    from conftest import ALL_BACKENDS

# Also against a real server process: the tests that neither reach into the database nor
# need two users (without --auth, a server records its own user as the actor).
remote_too = pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)


def package(folder: Path, flavor: str = "sklearn", payload: bytes = b"weights") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "driftline-model.json").write_text(json.dumps({"flavor": flavor}))
    (folder / "model.bin").write_bytes(payload)
    return folder


def logged_model(ws: Workspace, tmp_path: Path, payload: bytes = b"weights") -> str:
    run = ws.tracking.create_run("train")
    ws.tracking.log_artifacts(run.id, package(tmp_path / payload.hex(), payload=payload), "model")
    return f"runs:/{run.id}/model"


@remote_too
def test_registration_pins_the_package(ws: Workspace, tmp_path: Path) -> None:
    source = logged_model(ws, tmp_path)
    mv = ws.registry.register_model(source, "churn")
    assert (mv.name, mv.version, mv.flavor, mv.uri) == ("churn", 1, "sklearn", "models:/churn/1")
    # Overwriting the run's artifact later does not change the registered version.
    run_id = source.split("/")[1]
    ws.tracking.log_artifacts(run_id, package(tmp_path / "other", payload=b"changed"), "model")
    out = ws.registry.materialize(mv, tmp_path / "materialized")
    assert (out / "model.bin").read_bytes() == b"weights"
    assert ws.registry.register_model(source, "churn").version == 2


@remote_too
def test_bad_sources_change_nothing(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="No run"):
        ws.registry.register_model("runs:/" + "0" * 32 + "/model", "churn")
    with pytest.raises(NotFoundError, match="No model at"):
        ws.registry.register_model(tmp_path / "missing", "churn")
    run = ws.tracking.create_run("e")
    (tmp_path / "notes.txt").write_text("not a model")
    ws.tracking.log_artifact(run.id, tmp_path / "notes.txt", "model")
    with pytest.raises(InvalidArgumentError, match="not a driftline model package"):
        ws.registry.register_model(f"runs:/{run.id}/model", "churn")
    with pytest.raises(InvalidArgumentError, match="Invalid model name"):
        ws.registry.register_model(logged_model(ws, tmp_path), "bad/name")
    assert ws.registry.list_models() == []


@remote_too
def test_refs_and_helpful_not_found(ws: Workspace, tmp_path: Path) -> None:
    ws.registry.register_model(logged_model(ws, tmp_path), "churn")
    ws.registry.register_model(logged_model(ws, tmp_path, b"v2"), "churn")
    ws.registry.set_alias("churn", "champion", 1)
    assert ws.registry.get_version("churn@latest").version == 2
    assert ws.registry.get_version("models:/churn@champion").version == 1
    assert ws.registry.get_version("churn/2").aliases == ()
    assert ws.registry.get_version("churn/1").aliases == ("champion",)
    with pytest.raises(NotFoundError, match="did you mean 'churn'"):
        ws.registry.get_version("chrun/1")
    with pytest.raises(NotFoundError, match=r"no alias 'staging' \(aliases: champion->1\)"):
        ws.registry.get_version("churn@staging")
    with pytest.raises(NotFoundError, match="no version 9; latest is 2"):
        ws.registry.get_version("churn/9")


@remote_too
def test_alias_moves_are_compare_and_set(ws: Workspace, tmp_path: Path) -> None:
    for payload in (b"1", b"2", b"3"):
        ws.registry.register_model(logged_model(ws, tmp_path, payload), "churn")
    ws.registry.set_alias("churn", "champion", 1)
    with pytest.raises(ConflictError, match="moved meanwhile"):
        ws.registry.set_alias("churn", "champion", 3, expected=2)
    assert ws.registry.get_version("churn@champion").version == 1

    errors: list[Exception] = []
    barrier = threading.Barrier(2)

    def move(version: int) -> None:
        barrier.wait()
        try:
            ws.registry.set_alias("churn", "champion", version, expected=1)
        except ConflictError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(v,)) for v in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1  # exactly one of two racing moves wins
    assert ws.registry.get_version("churn@champion").version in (2, 3)


@remote_too
def test_concurrent_registrations_get_distinct_numbers(ws: Workspace, tmp_path: Path) -> None:
    sources = [logged_model(ws, tmp_path, bytes([i])) for i in range(6)]
    threads = [
        threading.Thread(target=ws.registry.register_model, args=(s, "churn")) for s in sources
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(v.version for v in ws.registry.list_versions("churn")) == [1, 2, 3, 4, 5, 6]


@remote_too
def test_rollback_returns_to_the_previous_holder(ws: Workspace, tmp_path: Path) -> None:
    for payload in (b"1", b"2"):
        ws.registry.register_model(logged_model(ws, tmp_path, payload), "churn")
    with pytest.raises(NotFoundError, match="never set"):
        ws.registry.rollback("churn", "champion")
    ws.registry.set_alias("churn", "champion", 1)
    with pytest.raises(ConflictError, match="nothing to roll back to"):
        ws.registry.rollback("churn", "champion")
    ws.registry.set_alias("churn", "champion", 2)
    move = ws.registry.rollback("churn", "champion")
    assert (move.version, move.previous_version, move.reason) == (1, 2, "rollback")
    assert ws.registry.get_version("churn@champion").version == 1
    history = ws.registry.alias_history("churn", "champion")
    assert [(m.version, m.reason) for m in history] == [(1, "rollback"), (2, "set"), (1, "set")]


def test_approval_policy_blocks_until_enough_people_approve(
    ws: Workspace, tmp_path: Path, make_workspace: Callable[..., Workspace], backend: str
) -> None:
    if backend == "sqlite-memory":
        pytest.skip("a second user needs a second connection to the same database")
    ws.registry.register_model(logged_model(ws, tmp_path), "churn")
    ws.registry.set_policy("production", 2)
    with pytest.raises(PermissionDeniedError, match="requires 2 approval"):
        ws.registry.set_alias("churn", "production", 1)
    ws.registry.approve("churn", 1, "production", comment="metrics look good")
    with pytest.raises(PermissionDeniedError, match=r"needs 2 approval\(s\), it has 1 \(alice\)"):
        ws.registry.check_approvals("churn", 1, "production")
    make_workspace(user="bob").registry.approve("churn", 1, "production")
    ws.registry.check_approvals("churn", 1, "production")  # now passes
    assert "production" not in ws.registry.get_model("churn").aliases  # nothing moved


def test_audit_chain_detects_edits_inserts_and_deletes(ws: Workspace, tmp_path: Path) -> None:
    ws.registry.register_model(logged_model(ws, tmp_path), "churn")
    ws.registry.set_alias("churn", "champion", 1)
    ws.registry.approve("churn", 1, "champion")
    report = ws.registry.verify_audit()
    assert report.ok
    assert report.entries == 4
    engine = ws.database.engine

    with engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 2).values(actor="mallory"))
    report = ws.registry.verify_audit()
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "edited" in (report.problem or "")
    with engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 2).values(actor="alice"))
    assert ws.registry.verify_audit().ok

    with engine.begin() as conn:
        row = conn.execute(sa.select(audit_log).where(audit_log.c.seq == 3)).first()
        assert row is not None
        conn.execute(audit_log.delete().where(audit_log.c.seq == 3))
    report = ws.registry.verify_audit()
    assert (report.ok, report.first_bad_seq) == (False, 3)
    with engine.begin() as conn:
        conn.execute(audit_log.insert().values(**row._mapping))

    with engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq == 4))
    report = ws.registry.verify_audit()
    assert not report.ok
    assert "newest entries were deleted" in (report.problem or "")


@remote_too
def test_audit_log_filters_by_model(ws: Workspace, tmp_path: Path) -> None:
    ws.registry.register_model(logged_model(ws, tmp_path), "churn")
    ws.registry.register_model(logged_model(ws, tmp_path, b"x"), "churn-v2")
    entities = [e.entity for e in ws.registry.audit_log(model="churn")]
    assert entities == ["churn/1", "churn"]


def test_models_uris_load_without_importing_the_registry_first(tmp_path: Path) -> None:
    """`dl.models.load("models:/...")` finds the registry's resolver on its own."""
    import subprocess
    import sys

    script = (
        "import driftline.models as m\n"
        "from driftline.errors import NotFoundError\n"
        "try:\n"
        "    m.load('models:/nobody/1')\n"
        "except NotFoundError as exc:\n"
        "    print('NotFoundError:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**__import__("os").environ, "DRIFTLINE_HOME": str(tmp_path / ".driftline")},
    )
    assert done.returncode == 0, done.stderr
    assert "NotFoundError: No registered model 'nobody'" in done.stdout


def test_expecting_no_holder_refuses_when_the_alias_is_set(
    configure_default: Callable[..., Workspace], tmp_path: Path
) -> None:
    """Through the module-level API too: `expected=None` means "only if unset"."""
    import driftline as dl

    ws = configure_default()
    ws.registry.register_model(logged_model(ws, tmp_path), "churn")
    ws.registry.register_model(logged_model(ws, tmp_path, b"v2"), "churn")
    assert dl.registry.set_alias("churn", "champion", 1, expected=None).version == 1
    with pytest.raises(ConflictError, match="moved meanwhile"):
        dl.registry.set_alias("churn", "champion", 2, expected=None)
    assert dl.registry.set_alias("churn", "champion", 2).version == 2  # unconditional


@remote_too
def test_an_unconditional_move_that_loses_a_race_tries_again(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for payload in (b"1", b"2", b"3"):
        ws.registry.register_model(logged_model(ws, tmp_path, payload), "churn")
    store = ws.registry.store
    real_move = store.move_alias
    calls: list[object] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["expected"])
        if len(calls) == 1:  # another move lands first, this once
            real_move("churn", "champion", 1, expected=ANY_HOLDER, actor="other", reason="set")
            raise ConflictError("Alias churn@champion moved while this change was being made")
        return real_move(*args, **kwargs)

    monkeypatch.setattr(store, "move_alias", racing)
    moved = ws.registry.set_alias("churn", "champion", 2)  # did not care what it replaced
    assert (moved.previous_version, moved.version) == (1, 2)
    assert len(calls) == 2
    calls.clear()
    with pytest.raises(ConflictError):  # a conditional move reports the race instead
        ws.registry.set_alias("churn", "champion", 3, expected=2)
    assert len(calls) == 1
    assert ws.registry.get_version("churn@champion").version == 1
