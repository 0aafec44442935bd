"""Remotes: push/pull through a local folder and a real S3 endpoint (moto on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.core.artifacts import ByteStore
from driftline.data import Version
from driftline.data.remote import pull, push
from driftline.errors import ConflictError
from driftline.settings import Settings
from driftline.workspace import Workspace


def open_ws(home: Path) -> Workspace:
    return Workspace.from_settings(Settings.load(home=home, capture_environment=False))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Workspace, Workspace]]:
    """Two workspaces, as on two machines."""
    a, b = open_ws(tmp_path / "a"), open_ws(tmp_path / "b")
    yield a, b
    a.close()
    b.close()


def seed(ws: Workspace, root: Path) -> list[str]:
    refs = []
    for i in range(3):
        folder = root / "src"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"part-{i}.bin").write_bytes(bytes([i]) * (1000 + i))
        refs.append(ws.data.commit("logs", folder, message=f"day {i}", tags=[f"d{i}"]).ref)
    return refs


def roundtrip(a: Workspace, b: Workspace, remote: str, tmp_path: Path) -> None:
    refs = seed(a, tmp_path)
    first = push(a.data, None, remote=remote)
    assert first.versions == tuple(refs)
    assert first.objects > 0
    assert push(a.data, None, remote=remote).objects == 0  # only missing objects move
    pulled = pull(b.data, "logs", remote=remote)
    assert pulled.versions == tuple(refs)
    for ref in refs:
        mine, theirs = a.data.get(ref), b.data.get(ref)
        assert (theirs.id, theirs.number, theirs.message, theirs.tags) == (
            mine.id,
            mine.number,
            mine.message,
            mine.tags,
        )
    out = Version(b.data, b.data.get("logs@d2")).checkout(tmp_path / "out")
    assert (out / "part-2.bin").read_bytes() == bytes([2]) * 1002
    assert pull(b.data, None, remote=remote).objects == 0


def test_push_pull_through_a_folder(pair: tuple[Workspace, Workspace], tmp_path: Path) -> None:
    roundtrip(*pair, str(tmp_path / "remote"), tmp_path)


def test_an_interrupted_push_hides_the_version_until_complete(
    pair: tuple[Workspace, Workspace], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.core.artifacts.local import LocalByteStore

    a, b = pair
    seed(a, tmp_path)
    remote = str(tmp_path / "remote")
    real_put = LocalByteStore.put_file
    calls = {"n": 0}

    def flaky(self: ByteStore, key: str, source: Path) -> bool:
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("connection reset")
        return real_put(self, key, source)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalByteStore, "put_file", flaky)
    with pytest.raises(OSError, match="connection reset"):
        push(a.data, None, remote=remote)
    monkeypatch.undo()
    assert not list((tmp_path / "remote").glob("versions/**/*.json"))
    assert pull(b.data, None, remote=remote).versions == ()
    done = push(a.data, None, remote=remote)
    assert len(done.versions) == 3
    assert done.skipped_objects >= 3  # what the first attempt uploaded is not sent again
    assert len(pull(b.data, None, remote=remote).versions) == 3


def test_diverged_histories_are_a_conflict(
    pair: tuple[Workspace, Workspace], tmp_path: Path
) -> None:
    a, b = pair
    remote = str(tmp_path / "remote")
    a.data.commit("d", _file(tmp_path / "x", b"mine"))
    push(a.data, None, remote=remote)
    b.data.commit("d", _file(tmp_path / "y", b"theirs"))
    with pytest.raises(ConflictError, match="diverged"):
        pull(b.data, None, remote=remote)
    with pytest.raises(ConflictError, match="different content"):
        push(b.data, None, remote=remote)


def _file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_push_pull_through_s3(
    pair: tuple[Workspace, Workspace], tmp_path: Path, s3_bucket: str
) -> None:
    roundtrip(*pair, s3_bucket, tmp_path)
