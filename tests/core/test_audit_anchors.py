"""The audit log is anchored outside the database: a cut tail or a rewrite is named.

The probe that found these: deleting the newest entries and pointing the head back,
or emptying both tables, left `driftline audit verify` answering "intact".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftline.core.audit import GENESIS, _digest, audit_head, audit_log
from driftline.core.audit_anchors import PREFIX
from driftline.settings import Settings
from driftline.workspace import Workspace

ENTRIES = 40


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An embedded workspace whose audit log has 40 entries (user administration)."""
    home = tmp_path / ".driftline"
    with Workspace.from_settings(Settings.load(home=home)) as ws:
        for i in range(ENTRIES):
            ws.auth.create_user(f"user{i:02d}", role="viewer")
    return home


def verify(home: Path) -> subprocess.CompletedProcess[str]:
    """`driftline audit verify` in a fresh process, as an operator runs it."""
    env = {**os.environ, "DRIFTLINE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "audit", "verify"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def database(home: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{home / 'driftline.db'}")


def test_every_audited_commit_is_anchored_outside_the_database(home: Path) -> None:
    anchors = sorted((home / "artifacts" / PREFIX).iterdir())
    assert [int(a.name) for a in anchors] == list(range(1, ENTRIES + 1))
    done = verify(home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{ENTRIES} entries verified" in done.stdout
    assert f"anchored up to entry {ENTRIES}" in done.stdout


def test_a_cut_tail_with_the_head_moved_back_is_named(home: Path) -> None:
    engine = database(home)
    with engine.begin() as conn:
        tenth = conn.execute(sa.select(audit_log).where(audit_log.c.seq == 10)).one()
        conn.execute(audit_log.delete().where(audit_log.c.seq > 10))
        conn.execute(audit_head.update().values(seq=10, hash=tenth.hash))
    engine.dispose()
    done = verify(home)
    assert done.returncode == 1
    assert "TAMPERED" in done.stdout
    assert "entries 11-40 were deleted" in " ".join(done.stdout.split())


def test_emptied_tables_are_named(home: Path) -> None:
    engine = database(home)
    with engine.begin() as conn:
        conn.execute(audit_log.delete())
        conn.execute(audit_head.delete())
    engine.dispose()
    done = verify(home)
    assert done.returncode == 1
    assert "entries 1-40 were deleted" in " ".join(done.stdout.split())


def test_a_consistently_rewritten_chain_is_named(home: Path) -> None:
    """Whoever can write the database can recompute every hash; the anchors disagree."""
    engine = database(home)
    with engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(audit_log).order_by("seq"))]
        prev = GENESIS
        for row in rows:
            if row["seq"] == 5:
                row["actor"] = "mallory"
            row["prev_hash"], row["hash"] = prev, _digest(prev, row)
            prev = row["hash"]
            conn.execute(
                audit_log.update()
                .where(audit_log.c.seq == row["seq"])
                .values(actor=row["actor"], prev_hash=row["prev_hash"], hash=row["hash"])
            )
        conn.execute(audit_head.update().values(hash=prev))
    engine.dispose()
    done = verify(home)
    assert done.returncode == 1
    assert "entry 5 differs from its anchor" in done.stdout


def test_a_log_older_than_its_anchors_is_pinned_by_its_first_verification(
    home: Path,
) -> None:
    for anchor in (home / "artifacts" / PREFIX).iterdir():
        anchor.chmod(0o600)
        anchor.unlink()
    with Workspace.from_settings(home=home) as ws:
        report = ws.registry.verify_audit()
        assert (report.ok, report.anchored_seq) == (True, ENTRIES)
        engine = ws.database.engine
        with engine.begin() as conn:
            before = conn.execute(sa.select(audit_log).where(audit_log.c.seq == ENTRIES - 1))
            conn.execute(audit_log.delete().where(audit_log.c.seq == ENTRIES))
            conn.execute(audit_head.update().values(seq=ENTRIES - 1, hash=before.one().hash))
        report = ws.registry.verify_audit()
        assert (report.ok, report.first_bad_seq) == (False, ENTRIES)


def test_a_rolled_back_change_leaves_no_anchor(tmp_path: Path) -> None:
    with Workspace.from_settings(home=tmp_path / ".driftline") as ws:
        from driftline.core.audit import append_audit

        def fail(conn: sa.Connection) -> None:
            append_audit(conn, actor="a", action="test", entity_type="t", entity="e")
            raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            ws.database.write(fail)
        assert not (tmp_path / ".driftline" / "artifacts" / PREFIX).exists()
        assert ws.registry.verify_audit().ok
