"""Garbage collection marks from every version and run artifact and honours the grace period."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import stored_objects
from driftline.core.hashing import digest_key
from driftline.data import Version
from driftline.errors import NotFoundError
from driftline.gc import collect_garbage
from driftline.settings import Settings
from driftline.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace.from_settings(
        Settings.load(home=tmp_path / ".driftline", capture_environment=False)
    )
    yield workspace
    workspace.close()


def backdate(ws: Workspace, digest: str, seconds: float) -> None:
    stored_objects.backdate(ws.content, digest, seconds)


def test_gc_sweeps_only_old_unreferenced_objects(ws: Workspace, tmp_path: Path) -> None:
    data_file = tmp_path / "data.bin"
    data_file.write_bytes(b"versioned")
    version = ws.data.commit("d", data_file)
    run = ws.tracking.create_run("e")
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(b"artifact")
    logged = ws.tracking.log_artifact(run.id, artifact)
    orphan_old = ws.content.put_bytes(b"nobody refers to me").digest
    orphan_young = ws.content.put_bytes(b"a commit in progress").digest
    for digest in (*ws.data.version_objects(version), logged.digest, orphan_old):
        backdate(ws, digest, 7200)

    dry = collect_garbage(ws, dry_run=True, grace_seconds=3600)
    assert dry.unreferenced == (orphan_old,)
    assert dry.kept_young == 1
    assert ws.content.exists(orphan_old)

    done = collect_garbage(ws, grace_seconds=3600)
    assert done.unreferenced == (orphan_old,)
    assert not ws.content.exists(orphan_old)
    assert ws.content.exists(orphan_young)
    assert ws.content.exists(logged.digest)
    assert ws.data.manifest(version).entries[0].digest in ws.data.version_objects(version)
    assert ws.content.read_bytes(ws.data.manifest(version).entries[0].digest) == b"versioned"


def test_gc_keeps_registered_model_packages(ws: Workspace, tmp_path: Path) -> None:
    """A model registered from a folder is referenced only by the registry: keep it."""
    import json

    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "driftline-model.json").write_text(json.dumps({"flavor": "sklearn"}))
    (folder / "weights.bin").write_bytes(b"registered weights")
    version = ws.registry.register_model(folder, "churn")
    for digest in ws.data.pin_objects(version.package_digest):
        backdate(ws, digest, 7200)
    done = collect_garbage(ws, grace_seconds=3600)
    assert done.unreferenced == ()
    out = ws.registry.materialize(version, tmp_path / "out")
    assert (out / "weights.bin").read_bytes() == b"registered weights"


def test_gc_rewrites_a_pack_without_its_garbage(ws: Workspace, tmp_path: Path) -> None:
    """Packed objects are swept too: the pack's live objects move to a new pack first."""
    folder = tmp_path / "data"
    folder.mkdir()
    files = {name: os.urandom(2048) for name in ("a.bin", "b.bin", "scratch.bin")}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    blobs = ws.content.put_files(sorted(folder.iterdir()))  # one pack, nothing refers to it
    (folder / "scratch.bin").unlink()
    version = ws.data.commit("d", folder)  # a and b again: found in the pack, not rewritten
    packs_before = sorted((ws.content.backend.root / ".packs").iterdir())
    assert len(packs_before) == 2  # one pack: its bytes and its index
    scratch = blobs[2].digest
    for digest in ws.data.version_objects(version) | {scratch}:
        backdate(ws, digest, 7200)

    done = collect_garbage(ws, grace_seconds=3600)
    assert done.unreferenced == (scratch,)
    assert done.bytes == 2048
    assert not ws.content.exists(scratch)
    packs_after = sorted((ws.content.backend.root / ".packs").iterdir())
    assert len(packs_after) == 2
    assert packs_after != packs_before
    out = Version(ws.data, version).checkout(tmp_path / "out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {
        "a.bin": files["a.bin"],
        "b.bin": files["b.bin"],
    }
    assert collect_garbage(ws, grace_seconds=3600).unreferenced == ()


def tear_index(index: Path) -> None:
    """What a power loss can leave of an index: whole lines, half a line, no trailer."""
    lines = index.read_text().splitlines(keepends=True)
    os.chmod(index, 0o644)
    index.write_text("".join(lines[:-1]) + "blake3/ab/half-a-li")


def test_gc_salvages_torn_packs_and_removes_what_crashes_left(tmp_path: Path) -> None:
    home = tmp_path / ".driftline"
    settings = Settings.load(home=home, capture_environment=False)
    folder = tmp_path / "data"
    folder.mkdir()
    files = {name: os.urandom(1000) for name in ("a.bin", "b.bin", "c.bin")}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with Workspace.from_settings(settings) as ws:
        scratch = tmp_path / "scratch.bin"
        scratch.write_bytes(os.urandom(1000))
        ws.content.put_files([*sorted(folder.iterdir()), scratch])  # one pack of four
        version = ws.data.commit("d", folder)
        digests = {e.path: e.digest for e in ws.data.manifest(version).entries}
        root = ws.content.backend.root
    packs = root / ".packs"
    (index,) = packs.glob("*.idx")
    pack = index.with_suffix(".pack")
    stored_c = ws.content.backend.packs.find(digest_key(digests["c.bin"]))
    assert stored_c is not None
    os.chmod(pack, 0o644)
    with open(pack, "r+b") as handle:  # c's bytes rot in the pack as well
        handle.seek(stored_c.offset)
        handle.write(bytes([files["c.bin"][0] ^ 0xFF]))
    tear_index(index)
    unpublished = packs / "crashed-before-its-index.pack"
    unpublished.write_bytes(os.urandom(500))
    stale_temp = root / ".tmp" / "tmp-crashed"
    stale_temp.write_bytes(b"half an object")
    young_temp = root / ".tmp" / "tmp-being-written"
    young_temp.write_bytes(b"a write in progress")
    session = root / ".tmp" / "uploads" / "an-upload-session"
    session.parent.mkdir(parents=True, exist_ok=True)
    session.write_bytes(b"resumable")
    old = time.time() - 7200
    for path in (index, pack, unpublished, stale_temp, session):
        os.utime(path, (old, old))

    with Workspace.from_settings(settings) as ws:
        read = ws.content.read_bytes
        with pytest.raises(NotFoundError):  # the torn index hides the pack
            read(digests["a.bin"])
        leftovers = sorted(
            p.relative_to(root).as_posix() for p in (index, pack, unpublished, stale_temp)
        )
        dry = collect_garbage(ws, dry_run=True, grace_seconds=3600)
        assert dry.salvaged == tuple(sorted([digests["a.bin"], digests["b.bin"]]))
        assert list(dry.leftovers) == leftovers
        assert dry.leftover_bytes == sum((root / name).stat().st_size for name in leftovers)
        assert index.exists()
        assert stale_temp.exists()
        with pytest.raises(NotFoundError):
            read(digests["a.bin"])

        done = collect_garbage(ws, grace_seconds=3600)
        assert done.salvaged == dry.salvaged
        assert list(done.leftovers) == leftovers
        # The referenced objects whose bytes still match are back; the rotten one is not.
        assert read(digests["a.bin"]) == files["a.bin"]
        assert read(digests["b.bin"]) == files["b.bin"]
        with pytest.raises(NotFoundError):
            read(digests["c.bin"])
        assert not any(packs.iterdir())
        assert not stale_temp.exists()
        assert young_temp.exists()
        assert session.exists()
        again = collect_garbage(ws, grace_seconds=3600)
        assert (again.salvaged, again.leftovers) == ((), ())
