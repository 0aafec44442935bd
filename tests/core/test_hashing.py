"""Content digests carry their algorithm and match the reference implementations."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import blake3
import pytest

from driftline.core.hashing import (
    ALGORITHMS,
    CHUNK_SIZE,
    digest_key,
    hash_bytes,
    hash_file,
    hash_files,
    hash_stream,
    new_hasher,
    parse_digest,
)
from driftline.errors import InvalidArgumentError


def reference(algorithm: str, data: bytes) -> str:
    if algorithm == "blake3":
        return blake3.blake3(data).hexdigest()
    return hashlib.sha256(data).hexdigest()


SAMPLES = [b"", b"a", b"hello world\n", os.urandom(3 * (1 << 20) + 17)]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("data", SAMPLES, ids=["empty", "one", "line", "3MiB"])
def test_hash_bytes_and_stream_match_the_reference(algorithm: str, data: bytes) -> None:
    expected = f"{algorithm}:{reference(algorithm, data)}"
    assert hash_bytes(data, algorithm) == expected
    assert hash_stream(io.BytesIO(data), algorithm) == (expected, len(data))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", [0, 1000, 9 * (1 << 20) + 3])  # the last takes the mmap path
def test_hash_file_matches_the_reference(tmp_path: Path, algorithm: str, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert hash_file(path, algorithm) == (f"{algorithm}:{reference(algorithm, data)}", size)
    assert hash_file(str(path), algorithm)[0] == hash_bytes(data, algorithm)


def test_blake3_is_the_default() -> None:
    assert hash_bytes(b"x").startswith("blake3:")


def test_new_hasher_is_incremental() -> None:
    hasher = new_hasher("sha256")
    hasher.update(b"hello ")
    hasher.update(memoryview(b"world"))
    assert hasher.hexdigest() == hashlib.sha256(b"hello world").hexdigest()


def test_an_unknown_algorithm_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidArgumentError, match="blake3, sha256"):
        new_hasher("md5")
    with pytest.raises(InvalidArgumentError):
        hash_bytes(b"x", "md5")


def test_parse_digest_and_digest_key() -> None:
    digest = hash_bytes(b"abc")
    algorithm, hexpart = parse_digest(digest)
    assert algorithm == "blake3"
    assert hexpart == blake3.blake3(b"abc").hexdigest()
    assert digest_key(digest) == f"blake3/{hexpart[:2]}/{hexpart[2:]}"
    sha = hash_bytes(b"abc", "sha256")
    assert digest_key(sha).startswith("sha256/" + sha.split(":")[1][:2] + "/")


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "blake3",
        "blake3:",
        "blake3:" + "a" * 63,
        "blake3:" + "a" * 65,
        "blake3:" + "A" * 64,  # upper case is not the canonical form
        "blake3:" + "g" * 64,
        "md5:" + "a" * 64,
        "a" * 64,
        "blake3:../../" + "a" * 58,
    ],
)
def test_malformed_digests_are_refused(digest: str) -> None:
    with pytest.raises(InvalidArgumentError, match="Malformed content digest"):
        parse_digest(digest)
    with pytest.raises(InvalidArgumentError):
        digest_key(digest)


@pytest.mark.parametrize("algorithm", ["blake3", "sha256"])
def test_hash_files_answers_in_order_what_hash_file_does(tmp_path: Path, algorithm: str) -> None:
    sizes = [0, 10, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 100, 9 << 20, 5]
    paths = []
    for i, size in enumerate(sizes):  # small and large interleaved: two ways, one order
        path = tmp_path / f"f{i}"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    expected = [hash_file(path, algorithm) for path in paths]
    assert hash_files(paths, algorithm, workers=3) == expected
    assert hash_files(paths, algorithm, workers=1) == expected
    assert hash_files([], algorithm) == []
    with pytest.raises(FileNotFoundError):
        hash_files([*paths, tmp_path / "missing"], algorithm)
