"""Byte stores declare what they can do in one typed place, and the content store and
checkouts follow the declaration rather than the backend's class."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from driftline.core.artifacts import ContentStore
from driftline.core.artifacts.bytestore import (
    BASIC,
    Capabilities,
    batch_upload,
    bulk_existence,
    local_objects,
    open_byte_store,
)
from driftline.core.artifacts.http import HttpByteStore
from driftline.core.artifacts.local import LocalByteStore
from driftline.core.artifacts.packs import PACK_DIR
from driftline.core.artifacts.remote import FsspecByteStore


def test_every_backend_declares_its_capabilities(tmp_path: Path) -> None:
    local = open_byte_store(tmp_path / "store")
    assert local.capabilities == Capabilities(
        local_paths=True, packing=True, hard_links=True, ranged_reads=True
    )
    assert local_objects(local) is local
    assert bulk_existence(local) is None
    assert batch_upload(local) is None
    memory = open_byte_store("memory://capabilities")
    assert isinstance(memory, FsspecByteStore)
    assert memory.capabilities == Capabilities(ranged_reads=True)
    assert local_objects(memory) is None
    assert HttpByteStore.capabilities == Capabilities(bulk_existence=True, batch_upload=True)
    assert Capabilities() == BASIC


def test_packing_is_only_declared_with_local_paths() -> None:
    with pytest.raises(ValueError, match="packing needs local_paths"):
        Capabilities(packing=True)


class LooseLocalStore(LocalByteStore):
    """A local folder that declares no packing and no hard links."""

    capabilities = Capabilities(local_paths=True)


def small_files(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"{i}.txt"
        path.write_bytes(f"object {i}".encode())
        paths.append(path)
    return paths


def test_small_objects_go_to_packs_only_where_packing_is_declared(tmp_path: Path) -> None:
    packed = ContentStore(LocalByteStore(tmp_path / "packed"))
    loose = ContentStore(LooseLocalStore(tmp_path / "loose"))
    files = small_files(tmp_path / "files", 5)
    for store in (packed, loose):
        blobs = store.put_files(files)
        assert store.stored(b.digest for b in blobs) == {b.digest for b in blobs}
        assert [store.read_bytes(b.digest) for b in blobs] == [f.read_bytes() for f in files]
    assert any((tmp_path / "packed" / PACK_DIR).glob("*"))
    assert not any((tmp_path / "loose" / PACK_DIR).glob("*"))


def test_a_checkout_links_only_from_a_store_that_declares_hard_links(tmp_path: Path) -> None:
    from driftline.data.version import Version
    from driftline.settings import Settings
    from driftline.workspace import Workspace

    big = tmp_path / "data"
    big.mkdir()
    (big / "big.bin").write_bytes(os.urandom(2 << 20))  # above PACKED_OBJECT: loose
    ws = Workspace.from_settings(
        Settings.load(home=tmp_path / "home", capture_environment=False, async_logging=False)
    )
    try:
        version = Version(ws.data, ws.data.commit("d", big))
        linked = version.checkout(tmp_path / "linked", link="hardlink")
        assert (linked / "big.bin").stat().st_nlink > 1
        # The same store, declaring no hard links: the checkout copies.
        ws.content.backend.capabilities = Capabilities(local_paths=True, packing=True)
        copied = version.checkout(tmp_path / "copied", link="hardlink")
        assert (copied / "big.bin").stat().st_nlink == 1
        assert (copied / "big.bin").read_bytes() == (big / "big.bin").read_bytes()
    finally:
        ws.close()
