"""Data versions as a user meets them: commit, refs, tags, diff, checkout, integrity."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftline.data import Version
from driftline.data.diff import diff_files
from driftline.errors import ConflictError, IntegrityError, InvalidArgumentError, NotFoundError
from driftline.workspace import Workspace
from stored_objects import tamper


@pytest.fixture
def ws(make_workspace: Callable[..., Workspace]) -> Workspace:
    """A workspace on each backend: SQLite in memory and on file, PostgreSQL; tests marked
    ``remote_too`` also through a driftline server (the HTTP backend)."""
    return make_workspace()


try:  # `python -m pytest` from the repository root, as CI runs it
    from tests.conftest import ALL_BACKENDS
except ImportError:  # pragma: no cover - only tests/ on sys.path
    from conftest import ALL_BACKENDS

# Also against a real server process: the tests that do not reach into local files.
remote_too = pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def age(path: Path, seconds: float = 10.0) -> None:
    """Backdate files so the stat cache may trust them (it ignores just-written files)."""
    stamp = time.time() - seconds
    for file in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(file, (stamp, stamp))


@remote_too
def test_commit_folder_then_identical_content_returns_the_same_version(
    ws: Workspace, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"a", "sub/b.bin": b"\x00" * 100})
    v1 = ws.data.commit("docs", src, message="first")
    assert (v1.number, v1.file_count, v1.size, v1.message) == (1, 2, 101, "first")
    assert v1.id.startswith("blake3:")
    again = ws.data.commit("docs", src)
    assert again == v1
    assert [v.number for v in ws.data.log("docs")] == [1]


@remote_too
def test_reverting_to_older_content_is_a_new_version(ws: Workspace, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"one"})
    v1 = ws.data.commit("d", src)
    (src / "a.txt").write_bytes(b"two")
    v2 = ws.data.commit("d", src)
    (src / "a.txt").write_bytes(b"one")
    v3 = ws.data.commit("d", src)
    assert (v1.number, v2.number, v3.number) == (1, 2, 3)
    assert v3.id == v1.id
    assert v3.parent == 2
    assert ws.data.get("d@latest").number == 3


@remote_too
def test_refs_by_number_tag_prefix_and_time(ws: Workspace, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"one"})
    v1 = ws.data.commit("d", src, tags=["first"])
    (src / "a.txt").write_bytes(b"two")
    v2 = ws.data.commit("d", src)
    assert ws.data.get("d").number == 2
    assert ws.data.get("d@1") == v1
    assert ws.data.get("d@first") == v1
    assert ws.data.get("d@" + v1.id.split(":")[1][:10]) == v1
    assert ws.data.get("d", as_of=v1.created_at).number == 1
    assert ws.data.get("d", as_of=v2.created_at).number == 2
    with pytest.raises(NotFoundError, match="no version committed at or before"):
        ws.data.get("d", as_of=datetime(2000, 1, 1, tzinfo=UTC))


@remote_too
def test_naive_as_of_is_utc_whatever_tz_says(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        v1 = ws.data.commit("d", make_tree(tmp_path / "src", {"a": b"1"}))
        naive_utc = v1.created_at.astimezone(UTC).replace(tzinfo=None)
        assert ws.data.get("d", as_of=naive_utc).number == 1
        # Read as New York time, one second before the commit would be hours after it.
        with pytest.raises(NotFoundError):
            ws.data.get("d", as_of=naive_utc - timedelta(seconds=1))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@remote_too
def test_unknown_refs_name_what_exists(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("customers", make_tree(tmp_path / "src", {"a": b"1"}), tags=["oct"])
    with pytest.raises(NotFoundError, match="did you mean 'customers'"):
        ws.data.get("custmers@1")
    with pytest.raises(NotFoundError, match=r"versions 1\.\.1 and tags oct"):
        ws.data.get("customers@7")
    with pytest.raises(InvalidArgumentError, match="Invalid dataset name"):
        ws.data.get("bad name@1")


@remote_too
def test_missing_source_is_a_clear_error(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"nope.*no such file or folder"):
        ws.data.commit("d", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match="holds no files"):
        ws.data.commit("d", tmp_path / "empty")
    with pytest.raises(InvalidArgumentError, match="Cannot commit a dict"):
        ws.data.commit("d", {"not": "data"})


@remote_too
def test_tags_are_immutable(ws: Workspace, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a": b"1"})
    ws.data.commit("d", src, tags=["gold"])
    (src / "a").write_bytes(b"2")
    ws.data.commit("d", src)
    assert ws.data.tag("d@1", "gold").tags == ("gold",)  # same version: a no-op
    with pytest.raises(ConflictError, match="immutable"):
        ws.data.tag("d@2", "gold")
    with pytest.raises(InvalidArgumentError):
        ws.data.tag("d@2", "latest")


@remote_too
def test_file_diff_finds_added_removed_modified_renamed(ws: Workspace, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"keep": b"k", "edit": b"old", "gone": b"g", "move": b"m"})
    ws.data.commit("d", src)
    (src / "edit").write_bytes(b"new!")
    (src / "gone").unlink()
    (src / "move").rename(src / "moved")
    (src / "fresh").write_bytes(b"f")
    ws.data.commit("d", src)
    changes = diff_files(ws.data.manifest(ws.data.get("d@1")), ws.data.manifest(ws.data.get("d@2")))
    summary = {(c.kind, c.path, c.old_path) for c in changes}
    assert summary == {
        ("modified", "edit", None),
        ("removed", "gone", None),
        ("renamed", "moved", "move"),
        ("added", "fresh", None),
    }
    assert next(c for c in changes if c.kind == "modified").size_delta == 1


@remote_too
def test_checkout_is_read_only_and_refuses_a_non_empty_folder(
    ws: Workspace, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"alpha", "deep/b.txt": b"beta"})
    version = Version(ws.data, ws.data.commit("d", src))
    out = version.checkout(tmp_path / "out")
    assert (out / "deep" / "b.txt").read_bytes() == b"beta"
    assert not os.access(out / "a.txt", os.W_OK) or os.geteuid() == 0
    assert (out / "a.txt").stat().st_mode & 0o222 == 0
    with pytest.raises(InvalidArgumentError, match="not empty"):
        version.checkout(out)
    with version.open("deep/b.txt") as stream:
        assert stream.read() == b"beta"
    with pytest.raises(NotFoundError, match="no file 'missing'"):
        version.open("missing")


def test_corrupted_objects_are_never_read_silently(ws: Workspace, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"the real bytes", "b.txt": b"fine"})
    version = Version(ws.data, ws.data.commit("d", src))
    entry = next(e for e in version.files if e.path == "a.txt")
    tamper(ws.content, entry.digest)
    with pytest.raises(IntegrityError, match=r"a\.txt of d@1"), version.open("a.txt") as stream:
        stream.read()
    with pytest.raises(IntegrityError, match=r"a\.txt of d@1"):
        version.checkout(tmp_path / "out")


@remote_too
def test_stat_cache_makes_unchanged_recommit_read_nothing(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.data import service

    src = make_tree(tmp_path / "src", {f"f{i}.bin": os.urandom(64) for i in range(50)})
    age(src)
    first = ws.data.commit("d", src)

    def no_reads(sources: list[object], **_kwargs: object) -> list[object]:
        if sources:
            raise AssertionError(f"unchanged files were read again: {sources}")
        return []

    def no_manifest(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the unchanged listing's manifest was built again")

    monkeypatch.setattr(ws.content, "put_files", no_reads)
    monkeypatch.setattr(service, "write_manifest", no_manifest)
    assert ws.data.commit("d", src) == first
    monkeypatch.undo()
    (src / "f3.bin").write_bytes(b"changed")
    second = ws.data.commit("d", src)
    assert second.number == 2


def test_an_unchanged_listing_needs_neither_the_file_rows_nor_the_manifest(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh process re-committing unchanged data pays for the listing, not for loading
    10,000s of stat-cache rows, reading the manifest or checking the store."""
    from driftline.data.scan import StatCache

    src = make_tree(tmp_path / "src", {f"f{i}.bin": os.urandom(64) for i in range(20)})
    age(src)
    first = ws.data.commit("d", src, tags=["one"])

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an unchanged listing was looked at file by file")

    monkeypatch.setattr(StatCache, "load", refuse)
    monkeypatch.setattr(ws.data, "manifest", refuse)
    monkeypatch.setattr(ws.content, "stored", refuse)
    monkeypatch.setattr(ws.content, "put_files", refuse)
    again = ws.data.commit("d", src, tags=["two"])
    assert (again.id, again.number, again.tags) == (first.id, first.number, ("one", "two"))
    monkeypatch.undo()
    (src / "f3.bin").write_bytes(b"changed")
    age(src)
    second = ws.data.commit("d", src)
    assert second.number == 2
    ws.data.commit("d", tmp_path / "src" / "f3.bin")  # another listing, another dataset@3
    assert ws.data.commit("d", src).number == 4  # the recorded listing is not d's latest


def test_a_cached_digest_whose_object_is_gone_is_stored_again(
    ws: Workspace, tmp_path: Path
) -> None:
    """The stat cache is trusted without a look at the store only for objects a version
    refers to (gc never sweeps those); any other hit is checked, and stored again if gone."""
    from driftline.core.hashing import digest_key

    files = {f"f{i}.bin": os.urandom(64) for i in range(5)}
    src = make_tree(tmp_path / "src", files)
    age(src)
    first = ws.data.commit("d", src)
    digest = next(e.digest for e in ws.data.manifest(first).entries if e.path == "f3.bin")
    ws.content.backend.delete_many([digest_key(digest)])  # as gc does to an orphan
    assert not ws.content.exists(digest)
    other = ws.data.commit("e", src)  # the same files as a new dataset: hits, unvouched
    assert ws.content.read_bytes(digest) == files["f3.bin"]
    assert other.id == first.id


@remote_too
def test_large_listings_are_sharded_and_a_one_file_change_writes_one_shard(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.data import manifest
    from driftline.data.manifest import shard_digests

    # Small shards (16 entries) so that 1,500 files make many of them.
    monkeypatch.setattr(manifest, "SHARD_TARGET", 16)
    src = make_tree(tmp_path / "src", {f"part-{i:05d}": str(i).encode() for i in range(1500)})
    age(src)
    v1 = ws.data.commit("big", src)
    shards1 = set(shard_digests(v1.id, ws.content))
    assert len(shards1) == 128
    (src / "part-00042").write_bytes(b"changed")
    v2 = ws.data.commit("big", src)
    shards2 = set(shard_digests(v2.id, ws.content))
    assert len(shards2 - shards1) == 1
    assert len(ws.data.manifest(v2)) == 1500


def test_shards_hold_about_4096_entries_and_are_at_most_256() -> None:
    from driftline.data.manifest import _shard_count

    assert [_shard_count(n) for n in (1001, 4096, 4097, 10_000, 1_000_000, 10**8)] == [
        1, 1, 2, 4, 256, 256,
    ]  # fmt: skip


@remote_too
def test_lineage_links_runs_and_versions_both_ways(ws: Workspace, tmp_path: Path) -> None:
    raw = ws.data.commit("raw", make_tree(tmp_path / "raw", {"r": b"r"}))
    run = ws.tracking.create_run("etl")
    ws.data.log_input(run.id, raw)
    clean = ws.data.commit("clean", make_tree(tmp_path / "clean", {"c": b"c"}), run_id=run.id)
    assert clean.run_id == run.id
    up = ws.data.lineage("clean@1")
    assert {(e.source, e.target) for e in up.upstream} == {
        (f"run:{run.id}", "data:clean@1"),
        ("data:raw@1", f"run:{run.id}"),
    }
    down = ws.data.lineage("raw@1")
    assert {(e.source, e.target) for e in down.downstream} == {
        ("data:raw@1", f"run:{run.id}"),
        (f"run:{run.id}", "data:clean@1"),
    }
    with pytest.raises(NotFoundError):
        ws.data.log_input("0" * 32, raw)


@remote_too
def test_two_processes_committing_at_once_get_distinct_numbers(
    ws: Workspace, tmp_path: Path, backend: str
) -> None:
    if backend == "sqlite-memory":
        pytest.skip("an in-memory database cannot be shared between processes")
    script = (
        "import sys; from pathlib import Path\n"
        "from driftline.settings import Settings\n"
        "from driftline.workspace import Workspace\n"
        "ws = Workspace.from_settings(Settings.load(home=sys.argv[1], uri=sys.argv[3],\n"
        "    artifact_root=sys.argv[4], capture_environment=False))\n"
        "for i in range(5):\n"
        "    p = Path(sys.argv[2]) / f'{i}.txt'; p.parent.mkdir(exist_ok=True)\n"
        "    p.write_text(sys.argv[2] + str(i))\n"
        "    ws.data.commit('shared', p)\n"
        "ws.close()\n"
    )
    home = str(ws.settings.home)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                script,
                home,
                str(tmp_path / f"w{k}"),
                ws.settings.uri,
                ws.settings.artifact_root,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    numbers = [v.number for v in ws.data.log("shared")]
    assert sorted(numbers) == list(range(1, 11))
