"""What reading a version writes, and where: never outside its folder, never into the store.

A manifest stored past every check (written straight into the content store, as an
attacker with write access to the store or an older server could have left one) is
refused when read, before anything is written; a symbolic link found in a destination
folder is never followed; and a default checkout is a copy of its own, so writing a
checked-out file leaves the stored object intact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from driftline.core.artifacts import Destination
from driftline.core.artifacts.files import place_file
from driftline.core.artifacts.paths import validate_path_set
from driftline.core.hashing import digest_key
from driftline.data import Version
from driftline.data.manifest import FORMAT, read_manifest, write_manifest
from driftline.data.models import ManifestEntry
from driftline.data.store import NewVersion
from driftline.errors import IntegrityError, InvalidArgumentError
from driftline.workspace import Workspace

BIG = 2 << 20  # stored loose (not packed), so a checkout can link or clone it


@pytest.fixture
def ws(open_workspace: Callable[..., Workspace], tmp_path: Path) -> Workspace:
    return open_workspace(f"sqlite:///{tmp_path / 'meta.db'}")


def _stored_version(ws: Workspace, paths: list[str]) -> Version:
    """A version whose manifest lists ``paths``, stored past every check."""
    payload = ws.content.put_bytes(b"the attacker's bytes\n")
    rows = sorted([path, payload.digest, payload.size] for path in paths)
    document = {"format": FORMAT, "files": len(rows), "size": payload.size * len(rows)}
    data = json.dumps({**document, "entries": rows}, sort_keys=True).encode()
    manifest = ws.content.put_bytes(data).digest
    dataset = ws.data.store.ensure_dataset("evil")
    record, _ = ws.data.store.add_version(
        dataset.id,
        NewVersion(
            version_id=manifest,
            author="mallory",
            message=None,
            created_at=1,
            run_id=None,
            file_count=len(rows),
            size=payload.size * len(rows),
            tabular=all(p.endswith(".csv") for p in paths),
            profile_digest=None,
        ),
    )
    return Version(ws.data, record)


@pytest.mark.parametrize(
    "paths",
    [
        ["../../../../outside.txt", "fine.txt"],
        ["fine.txt", "{tmp}/outside.txt"],
        ["sub/../../outside.txt"],
        ["C:/outside.txt"],
        ["..\\outside.txt"],
        ["a", "a/b"],
        ["x.csv", "x.csv"],
    ],
    ids=["dot-dot", "absolute", "inner-dot-dot", "drive", "backslash", "file-folder", "twice"],
)
def test_a_stored_unsafe_manifest_is_refused_before_anything_is_written(
    ws: Workspace, tmp_path: Path, paths: list[str]
) -> None:
    version = _stored_version(ws, [path.format(tmp=tmp_path) for path in paths])
    dest = tmp_path / "deep" / "er" / "still" / "checkout"
    with pytest.raises(IntegrityError, match=r"Manifest .* is refused"):
        version.checkout(dest)
    with pytest.raises(IntegrityError, match="refused"):
        version.files  # noqa: B018 - the property reads the manifest
    with pytest.raises(IntegrityError, match="refused"):
        ws.data.pinned(version.id)  # what a model version's files are read by
    assert not dest.exists()
    assert not (tmp_path / "outside.txt").exists()


def test_the_same_manifest_cannot_be_written_by_driftline(ws: Workspace) -> None:
    entry = ws.content.put_bytes(b"x")
    bad = [ManifestEntry(path="../x", digest=entry.digest, size=1)]
    with pytest.raises(InvalidArgumentError, match=r"'\.\.'"):
        write_manifest(bad, ws.content)
    twins = [ManifestEntry(path=name, digest=entry.digest, size=1) for name in ("README", "readme")]
    with pytest.raises(InvalidArgumentError, match="case-insensitive"):
        write_manifest(twins, ws.content)
    with pytest.raises(InvalidArgumentError, match="case-insensitive"):
        ws.data.pin(twins)


def test_a_malformed_manifest_object_is_an_integrity_error(ws: Workspace) -> None:
    for document in (
        {"format": FORMAT},
        {"format": FORMAT, "files": 1, "entries": [["a", "not a digest", 1]]},
        {"format": FORMAT, "files": 1, "entries": [["a", 5, 1]]},
        {"format": FORMAT, "files": 1, "entries": [["a"]]},
        [1, 2],
    ):
        digest = ws.content.put_bytes(json.dumps(document).encode()).digest
        with pytest.raises(IntegrityError):
            read_manifest(digest, ws.content)


def test_a_link_in_the_destination_is_never_followed(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "sub" / "file.txt").write_text("logged")
    (model / "victim.txt").write_text("logged")
    run = ws.tracking.create_run(None)
    ws.tracking.log_artifacts(run.id, model, "model")

    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)
    ws.tracking.download_artifacts(run.id, "model/sub", dest / "x")  # fine: no link there
    with pytest.raises(InvalidArgumentError, match="symbolic link"):
        ws.tracking.download_artifacts(run.id, "model", dest)
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]

    dest2 = tmp_path / "dest2"
    dest2.mkdir()
    (dest2 / "victim.txt").symlink_to(outside / "victim.txt")
    with pytest.raises(InvalidArgumentError, match="symbolic link"):
        ws.tracking.download_artifacts(run.id, "model", dest2)
    assert (outside / "victim.txt").read_text() == "precious"


def test_destination_refuses_links_escapes_and_files_written_twice(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "up").symlink_to(outside, target_is_directory=True)
    (root / "file").write_text("a file")
    dest = Destination(root)

    def write(target: Path) -> None:
        target.write_text("new")

    for path, reason in [
        ("up/x.txt", "symbolic link"),
        ("up", "symbolic link"),
        ("file/x.txt", "not a folder"),
        ("../x.txt", "'..'"),
        ("/abs.txt", "absolute"),
    ]:
        with pytest.raises(InvalidArgumentError, match=reason):
            dest.put(path, write)
    assert list(outside.iterdir()) == []
    dest.put("new/x.txt", write)
    # A second path landing on a file written here (case-insensitive filesystems do
    # that to 'X.txt' and 'x.txt') is refused, never an overwrite.
    with pytest.raises(InvalidArgumentError, match="already"):
        dest.put("new/x.txt", write)
    with pytest.raises(InvalidArgumentError, match="already"):
        Destination(root, exclusive=True).put("file", write)


def test_path_sets_are_checked_whole() -> None:
    validate_path_set(["a/b", "a/c", "b", ".hidden/x", "..dots/y"])
    validate_path_set(["README", "readme"], portable=False)
    for paths, reason in [
        (["a/b", "a"], "folder"),
        (["A/b", "a"], "case-insensitive"),
        (["x", "y", "x"], "twice"),
        (["ok", "a//b"], "normal form"),
        (["ok", "a/"], "normal form"),
        (["ok", "a\nb"], "control character"),
    ]:
        with pytest.raises(InvalidArgumentError, match=reason):
            validate_path_set(paths)


# -- link modes ---------------------------------------------------------------------------


def _big_version(ws: Workspace, tmp_path: Path) -> tuple[Version, Path]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(BIG))
    version = Version(ws.data, ws.data.commit("big", src))
    stored = ws.content.backend.local_path(digest_key(version.files[0].digest))
    assert stored is not None  # loose in the local store
    return version, stored


def test_writing_a_default_checkout_leaves_the_stored_object_intact(
    ws: Workspace, tmp_path: Path
) -> None:
    version, stored = _big_version(ws, tmp_path)
    out = version.checkout(tmp_path / "out")
    checked_out = out / "big.bin"
    assert checked_out.stat().st_mode & 0o222 == 0  # read-only, as before
    assert checked_out.stat().st_ino != stored.stat().st_ino
    checked_out.chmod(0o644)
    checked_out.write_bytes(b"scribbled over")
    for entry in version.files:  # a fresh read still verifies
        ws.content.verify(entry.digest, name=entry.path)
    again = version.checkout(tmp_path / "again", link="copy")
    assert (again / "big.bin").stat().st_size == BIG
    assert (again / "big.bin").stat().st_ino != stored.stat().st_ino


def test_hard_links_are_opt_in_and_share_the_stored_inode(ws: Workspace, tmp_path: Path) -> None:
    version, stored = _big_version(ws, tmp_path)
    out = version.checkout(tmp_path / "out", link="hardlink")
    assert (out / "big.bin").stat().st_ino == stored.stat().st_ino
    with pytest.raises(InvalidArgumentError, match="reflink, copy, hardlink"):
        version.checkout(tmp_path / "other", link="symlink")  # type: ignore[arg-type]


def test_place_file_makes_independent_files_and_never_writes_through_a_link(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"stored")
    for mode in ("reflink", "copy"):
        target = tmp_path / mode
        place_file(source, target, mode)
        target.write_bytes(b"changed")
        assert source.read_bytes() == b"stored"
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(FileExistsError):
        place_file(source, tmp_path / "link")
    assert victim.read_bytes() == b"precious"
