"""Low-level file operations of the local store: kernel copies and their fallback."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from driftline.core.artifacts import ContentStore, open_byte_store
from driftline.core.artifacts import files as local_files


def test_a_copy_falls_back_to_plain_reads_where_the_kernel_cannot_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(5 << 20)  # above the size read whole: copied by copy_in
    source = tmp_path / "big.bin"
    source.write_bytes(data)

    def unsupported(*_args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(local_files.os, "copy_file_range", unsupported)
    store = ContentStore(open_byte_store(tmp_path / "objects"))
    blob = store.put_file(source)
    assert store.read_bytes(blob.digest) == data


def test_malformed_digests_are_never_looked_up_outside_the_store(tmp_path: Path) -> None:
    store = ContentStore(open_byte_store(tmp_path / "store" / "objects"))
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "name").write_text("x")
    assert store.stored({"x:../../../secret/name", ":/tmp", "blake3:"}) == set()
