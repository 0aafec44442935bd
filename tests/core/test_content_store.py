"""The content-addressed store on a local folder: dedup, verified reads, corruption."""

from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

import pytest

from driftline.core.artifacts import ContentStore, open_byte_store
from driftline.core.artifacts.local import LocalByteStore
from driftline.core.hashing import digest_key, hash_bytes
from driftline.errors import IntegrityError, InvalidArgumentError, NotFoundError

BIG = 9 * (1 << 20) + 5  # above the small-object and the mmap-hashing thresholds


@pytest.fixture(params=["blake3", "sha256"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ContentStore:
    return ContentStore(open_byte_store(tmp_path / "objects"), request.param)


def objects(store: ContentStore) -> list[str]:
    return sorted(store.backend.iter_keys())


def object_path(store: ContentStore, digest: str) -> Path:
    path = store.backend.local_path(digest_key(digest))
    assert path is not None
    return path


def corrupt(store: ContentStore, digest: str, data: bytes | None = None) -> Path:
    """Overwrite a stored object's bytes (objects are read-only files: chmod first)."""
    path = object_path(store, digest)
    original = path.read_bytes()
    os.chmod(path, 0o644)
    path.write_bytes(data if data is not None else bytes([original[0] ^ 0xFF]) + original[1:])
    return path


def test_local_paths_and_file_urls_open_a_local_store(tmp_path: Path) -> None:
    assert isinstance(open_byte_store(tmp_path / "a"), LocalByteStore)
    assert isinstance(open_byte_store(str(tmp_path / "b")), LocalByteStore)
    local = open_byte_store(f"file://{tmp_path / 'c'}")
    assert isinstance(local, LocalByteStore)
    assert local.url == str(tmp_path / "c")


def test_an_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        open_byte_store("ftp://example.com/objects")
    message = str(info.value)
    assert message.startswith("Unsupported artifact root 'ftp://example.com/objects'")
    for known in ("s3://", "gs://", "memory://", "file://"):
        assert known in message
    assert "http://" not in message  # a server is a workspace URI, not a byte store


@pytest.mark.parametrize("size", [0, 10, BIG])
def test_put_and_read_back_round_trip(store: ContentStore, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    blob = store.put_file(source)
    assert blob.digest == hash_bytes(data, store.algorithm)
    assert blob.size == size
    assert store.exists(blob.digest)
    assert store.read_bytes(blob.digest) == data
    copy = store.get_file(blob.digest, tmp_path / "out" / "copy.bin")
    assert copy == tmp_path / "out" / "copy.bin"
    assert copy.read_bytes() == data
    store.verify(blob.digest)
    assert objects(store) == [digest_key(blob.digest)]


def test_identical_content_is_stored_once(store: ContentStore, tmp_path: Path) -> None:
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_bytes(b"same bytes")
    second.write_bytes(b"same bytes")
    a = store.put_file(first)
    b = store.put_file(second)
    c = store.put_bytes(b"same bytes")
    assert a == b == c
    store.put_bytes(b"other bytes")
    assert len(objects(store)) == 2


def test_identical_large_content_is_stored_once(store: ContentStore, tmp_path: Path) -> None:
    data = os.urandom(BIG)
    for name in ("one.bin", "two.bin"):
        (tmp_path / name).write_bytes(data)
    assert store.put_file(tmp_path / "one.bin") == store.put_file(tmp_path / "two.bin")
    assert len(objects(store)) == 1
    assert not list((tmp_path / "objects" / ".tmp").glob("*")), "temporary files left behind"


def test_stored_objects_are_read_only_files(store: ContentStore) -> None:
    blob = store.put_bytes(b"immutable")
    mode = object_path(store, blob.digest).stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_streaming_reads_in_small_pieces(store: ContentStore) -> None:
    data = os.urandom(100_000)
    blob = store.put_bytes(data)
    pieces = []
    with store.open(blob.digest) as reader:
        while piece := reader.read(777):
            pieces.append(piece)
    assert b"".join(pieces) == data


def test_buffered_readers_over_a_verified_stream(store: ContentStore) -> None:
    data = os.urandom(300_000)
    good = store.put_bytes(data)
    with io.BufferedReader(store.open(good.digest), buffer_size=4096) as reader:
        assert reader.read() == data
    bad = store.put_bytes(b"will be damaged" * 100)
    corrupt(store, bad.digest)
    with pytest.raises(IntegrityError), io.BufferedReader(store.open(bad.digest)) as reader:
        reader.read()


def test_putting_a_folder_or_a_missing_file_is_an_invalid_argument(
    store: ContentStore, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgumentError, match="folder"):
        store.put_file(tmp_path)
    with pytest.raises(InvalidArgumentError, match="no such file"):
        store.put_file(tmp_path / "missing.bin")


def test_a_missing_object_is_not_found_naming_it(store: ContentStore, tmp_path: Path) -> None:
    digest = hash_bytes(b"never stored", store.algorithm)
    assert not store.exists(digest)
    with pytest.raises(NotFoundError, match=re.escape("run 42/model.pkl")):
        store.read_bytes(digest, name="run 42/model.pkl")
    with pytest.raises(NotFoundError, match=re.escape(digest)):
        store.get_file(digest, tmp_path / "never.bin")
    assert not (tmp_path / "never.bin").exists()


def test_a_malformed_digest_is_an_invalid_argument(store: ContentStore) -> None:
    with pytest.raises(InvalidArgumentError):
        store.read_bytes("blake3:../../etc/passwd")


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend"])
def test_corruption_is_detected_on_every_read_naming_the_object(
    store: ContentStore, tmp_path: Path, damage: str
) -> None:
    data = os.urandom(50_000)
    blob = store.put_bytes(data)
    replacement = {"flip": None, "truncate": data[:-1], "extend": data + b"!"}[damage]
    corrupt(store, blob.digest, replacement)

    with pytest.raises(IntegrityError, match=re.escape("run abc/weights.bin")) as info:
        store.read_bytes(blob.digest, name="run abc/weights.bin")
    assert blob.digest in str(info.value)
    with pytest.raises(IntegrityError):
        store.verify(blob.digest)
    with store.open(blob.digest) as reader, pytest.raises(IntegrityError):  # noqa: PT012
        while reader.read(4096):  # reading to the end in pieces
            pass

    dest = tmp_path / "restore" / "weights.bin"
    with pytest.raises(IntegrityError, match=re.escape(blob.digest)):
        store.get_file(blob.digest, dest)
    assert not dest.exists(), "unverified bytes were left at the destination"
    assert list(dest.parent.iterdir()) == [], "a temporary file was left next to it"


def test_get_file_keeps_an_existing_destination_when_the_object_is_corrupt(
    store: ContentStore, tmp_path: Path
) -> None:
    blob = store.put_bytes(b"the real content")
    corrupt(store, blob.digest)
    dest = tmp_path / "keep.txt"
    dest.write_bytes(b"previous content")
    with pytest.raises(IntegrityError):
        store.get_file(blob.digest, dest)
    assert dest.read_bytes() == b"previous content"


def test_storing_the_same_bytes_again_repairs_a_corrupt_object(
    store: ContentStore, tmp_path: Path
) -> None:
    data = b"precious model weights" * 100
    blob = store.put_bytes(data)
    corrupt(store, blob.digest)
    with pytest.raises(IntegrityError, match="re-log it"):
        store.read_bytes(blob.digest)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    assert store.put_file(source) == blob
    assert store.read_bytes(blob.digest) == data
