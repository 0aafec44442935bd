"""Small objects stored in bulk go into pack files; every store operation sees them."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from driftline.core.artifacts import ContentStore, open_byte_store
from driftline.core.artifacts.content import PACKED_OBJECT
from driftline.core.artifacts.local import LocalByteStore
from driftline.core.hashing import digest_key
from driftline.errors import BackendError, IntegrityError, NotFoundError
from stored_objects import tamper


def write_files(folder: Path, sizes: dict[str, int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, size in sizes.items():
        path = folder / name
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def open_store(root: Path) -> ContentStore:
    return ContentStore(open_byte_store(root))


def backend_of(store: ContentStore) -> LocalByteStore:
    assert isinstance(store.backend, LocalByteStore)
    return store.backend


def pack_files(store: ContentStore) -> list[str]:
    folder = backend_of(store).root / ".packs"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return open_store(tmp_path / "objects")


def test_small_files_are_packed_and_large_ones_stay_loose(
    store: ContentStore, tmp_path: Path
) -> None:
    paths = write_files(
        tmp_path / "src",
        {"a": 100, "b": 5000, "edge": PACKED_OBJECT, "big": PACKED_OBJECT + 1, "empty": 0},
    )
    seen: list[int] = []
    blobs = store.put_files(paths, workers=2, on_stored=seen.append)
    assert sorted(seen) == sorted(p.stat().st_size for p in paths)
    backend = backend_of(store)
    for path, blob in zip(paths, blobs, strict=True):
        key = digest_key(blob.digest)
        assert store.read_bytes(blob.digest) == path.read_bytes()
        assert store.exists(blob.digest)
        assert backend.size(key) == path.stat().st_size
        assert backend.modified(key) > 0
        loose = backend.local_path(key)
        assert (loose is not None) == (path.name == "big")
    assert len(pack_files(store)) == 2  # one pack: bytes and index
    assert sorted(backend.iter_keys()) == sorted(digest_key(b.digest) for b in blobs)
    assert store.stored(b.digest for b in blobs) == {b.digest for b in blobs}
    assert not any((backend.root / ".tmp").iterdir())  # nothing left half-written


def test_storing_the_same_bytes_again_writes_no_new_pack(
    store: ContentStore, tmp_path: Path
) -> None:
    paths = write_files(tmp_path / "src", {"a": 300, "b": 400})
    twin = tmp_path / "src" / "twin"
    twin.write_bytes(paths[0].read_bytes())
    first = store.put_files([*paths, twin])
    assert first[0] == first[2]
    index = next((backend_of(store).root / ".packs").glob("*.idx")).read_text()
    assert index.count(first[0].digest.split(":")[1][2:]) == 1  # stored once
    packs = pack_files(store)
    # A fresh store object (another process, say) finds them in the pack too.
    again = open_store(backend_of(store).root).put_files(paths)
    assert again == first[:2]
    assert pack_files(store) == packs


def test_a_pack_published_by_another_process_is_seen_on_the_next_lookup(
    tmp_path: Path,
) -> None:
    reader = open_store(tmp_path / "objects")
    paths = write_files(tmp_path / "src", {"a": 10, "b": 20})
    assert not reader.exists("blake3:" + "0" * 64)  # the reader has scanned: no packs yet
    blobs = open_store(tmp_path / "objects").put_files(paths)
    assert reader.read_bytes(blobs[1].digest) == paths[1].read_bytes()
    assert reader.stored(b.digest for b in blobs) == {b.digest for b in blobs}


def test_a_corrupt_packed_object_fails_its_read_and_storing_it_again_repairs_it(
    store: ContentStore, tmp_path: Path
) -> None:
    paths = write_files(tmp_path / "src", {"a": 1000, "b": 1000})
    blobs = store.put_files(paths)
    tamper(store, blobs[0].digest)
    with pytest.raises(IntegrityError, match="corrupt"):
        store.read_bytes(blobs[0].digest)
    assert store.read_bytes(blobs[1].digest) == paths[1].read_bytes()  # its neighbour is fine
    store.put_files(paths)
    assert store.read_bytes(blobs[0].digest) == paths[0].read_bytes()
    assert backend_of(store).local_path(digest_key(blobs[0].digest)) is not None  # loose wins


def test_deleting_packed_objects_rewrites_the_pack_and_keeps_the_rest(
    store: ContentStore, tmp_path: Path
) -> None:
    paths = write_files(tmp_path / "src", {f"f{i}": 100 + i for i in range(6)})
    blobs = store.put_files(paths)
    other_view = open_store(backend_of(store).root)
    assert other_view.read_bytes(blobs[5].digest) == paths[5].read_bytes()  # loads the pack

    backend_of(store).delete_many([digest_key(b.digest) for b in blobs[:3]])

    for blob in blobs[:3]:
        assert not store.exists(blob.digest)
    # The other view still points into the removed pack: its read finds the new one.
    for path, blob in zip(paths[3:], blobs[3:], strict=True):
        assert other_view.read_bytes(blob.digest) == path.read_bytes()
    assert len(pack_files(store)) == 2
    backend_of(store).delete_many([digest_key(b.digest) for b in blobs[3:]])
    assert pack_files(store) == []
    with pytest.raises(NotFoundError, match="missing from the artifact store"):
        other_view.read_bytes(blobs[4].digest)


def test_a_torn_index_hides_its_pack_instead_of_serving_wrong_bytes(
    store: ContentStore, tmp_path: Path
) -> None:
    paths = write_files(tmp_path / "src", {"a": 64, "b": 64})
    blobs = store.put_files(paths)
    index = next((backend_of(store).root / ".packs").glob("*.idx"))
    os.chmod(index, 0o644)
    index.write_text(index.read_text().rsplit("end", 1)[0])  # lost its trailer
    fresh = open_store(backend_of(store).root)
    assert not fresh.exists(blobs[0].digest)
    with pytest.raises(NotFoundError):
        fresh.read_bytes(blobs[0].digest)
    fresh.put_files(paths)  # storing again heals it
    assert fresh.read_bytes(blobs[0].digest) == paths[0].read_bytes()


def test_a_failed_bulk_store_publishes_no_pack(
    store: ContentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.core.artifacts import packs

    paths = write_files(tmp_path / "src", {"a": 64, "b": 64, "c": 64})
    writes = 0
    real_pwrite = os.pwrite

    def disk_fills_up(fd: int, data: bytes, offset: int) -> int:
        nonlocal writes
        writes += 1
        if writes == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(packs.os, "pwrite", disk_fills_up)
    with pytest.raises(BackendError, match="No space left"):
        store.put_files(paths)
    monkeypatch.undo()
    assert pack_files(store) == []
    assert not any((backend_of(store).root / ".tmp").iterdir())
    blobs = store.put_files(paths)  # storing works again
    assert len(pack_files(store)) == 2
    assert [store.read_bytes(b.digest) for b in blobs] == [p.read_bytes() for p in paths]


def test_a_full_pack_is_published_and_the_next_one_started(
    store: ContentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.core.artifacts import packs

    monkeypatch.setattr(packs, "PACK_LIMIT", 1000)
    paths = write_files(tmp_path / "src", {f"f{i}": 400 for i in range(7)})
    blobs = store.put_files(paths)
    assert len(pack_files(store)) == 6  # 3 packs of at most 3 objects (>= 1,000 bytes closes)
    for path, blob in zip(paths, blobs, strict=True):
        assert store.read_bytes(blob.digest) == path.read_bytes()


def test_a_pack_that_cannot_be_published_leaves_nothing_behind(
    store: ContentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.core.artifacts import packs

    paths = write_files(tmp_path / "src", {"a": 64, "b": 64})
    real_replace = os.replace

    def index_rename_fails(source: str | Path, target: str | Path) -> None:
        if str(target).endswith(".idx"):
            raise OSError(errno.EROFS, "Read-only file system")
        real_replace(source, target)

    monkeypatch.setattr(packs.os, "replace", index_rename_fails)
    with pytest.raises(BackendError, match="Read-only file system"):
        store.put_files(paths)
    monkeypatch.undo()
    assert pack_files(store) == []  # the pack itself had been moved in: removed again
    assert not any((backend_of(store).root / ".tmp").iterdir())
