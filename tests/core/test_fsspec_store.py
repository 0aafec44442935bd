"""The byte store over fsspec, exercised through the in-memory filesystem."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from driftline.core.artifacts import ContentStore, open_byte_store
from driftline.core.artifacts.remote import FsspecByteStore
from driftline.core.hashing import digest_key, hash_bytes
from driftline.errors import IntegrityError, NotFoundError


@pytest.fixture
def url() -> Iterator[str]:
    # The memory filesystem is global to the process: give every test its own bucket.
    url = f"memory://driftline-test-{secrets.token_hex(6)}/objects"
    yield url
    fs = fsspec.filesystem("memory")
    root = url.removeprefix("memory://").split("/")[0]
    if fs.exists(f"/{root}"):
        fs.rm(f"/{root}", recursive=True)


@pytest.fixture
def store(url: str) -> ContentStore:
    return ContentStore(open_byte_store(url))


def test_memory_urls_open_an_fsspec_store(url: str) -> None:
    backend = open_byte_store(url)
    assert isinstance(backend, FsspecByteStore)
    assert backend.url == url
    assert backend.local_path("x") is None


def test_round_trip_dedup_and_listing(store: ContentStore, tmp_path: Path) -> None:
    # Fixed bytes, not random ones: the prefix listing below must not also find the
    # other object, which a random digest's two-character prefix did one run in 256.
    data = bytes(range(256)) * 782
    assert hash_bytes(data).split(":")[1][:2] != hash_bytes(b"other").split(":")[1][:2]
    source = tmp_path / "data.bin"
    source.write_bytes(data)
    blob = store.put_file(source)
    assert blob.digest == hash_bytes(data)
    assert blob.size == len(data)
    assert store.put_bytes(data) == blob
    assert store.read_bytes(blob.digest) == data
    assert store.get_file(blob.digest, tmp_path / "copy.bin").read_bytes() == data
    other = store.put_bytes(b"other")
    keys = sorted(store.backend.iter_keys())
    assert keys == sorted([digest_key(blob.digest), digest_key(other.digest)])
    assert list(store.backend.iter_keys("blake3/" + blob.digest.split(":")[1][:2])) == [
        digest_key(blob.digest)
    ]


def test_byte_store_primitives(url: str, tmp_path: Path) -> None:
    backend = open_byte_store(url)
    source = tmp_path / "x.txt"
    source.write_bytes(b"12345")
    before = time.time()
    assert backend.put_file("some/key", source) is True
    assert backend.put_file("some/key", source) is False  # never overwritten
    assert backend.exists("some/key")
    assert backend.size("some/key") == 5
    assert backend.modified("some/key") >= before - 5
    with backend.open_read("some/key") as stream:
        assert stream.read() == b"12345"
    backend.delete("some/key")
    backend.delete("some/key")  # deleting twice is fine
    assert not backend.exists("some/key")
    with pytest.raises(NotFoundError):
        backend.size("some/key")
    with pytest.raises(NotFoundError):
        backend.open_read("some/key")
    assert list(open_byte_store(url + "-empty").iter_keys()) == []


def test_corruption_in_a_remote_object_is_detected(
    store: ContentStore, url: str, tmp_path: Path
) -> None:
    blob = store.put_bytes(b"good bytes" * 1000)
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{url.removeprefix('memory://')}/{digest_key(blob.digest)}", b"bad bytes" * 1000)
    with pytest.raises(IntegrityError, match="remote copy"):
        store.read_bytes(blob.digest, name="remote copy")
    dest = tmp_path / "out.bin"
    with pytest.raises(IntegrityError):
        store.get_file(blob.digest, dest)
    assert not dest.exists()


def test_a_missing_remote_object_is_not_found(store: ContentStore) -> None:
    with pytest.raises(NotFoundError, match="missing from the artifact store"):
        store.read_bytes(hash_bytes(b"absent"))
