"""Remotes: copy versions and only their missing objects to and from any fsspec URL.

Layout of a remote::

    <remote>/objects/blake3/ab/cdef...          content-addressed objects (as locally)
    <remote>/versions/<dataset>/00000003.json   one record per version, written LAST

A version record is written only after every object of the version is uploaded, so an
interrupted push leaves the remote consistent: the version is not visible there, and
the next push uploads just what is still missing. Pulled objects are verified against
their digests before they enter the local store.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftline.core.artifacts import ByteStore, open_byte_store
from driftline.core.clock import to_ms
from driftline.core.hashing import digest_key
from driftline.data.models import DatasetVersion
from driftline.data.service import DataService, parse_ref
from driftline.data.store import NewVersion
from driftline.errors import ConflictError, IntegrityError, NotFoundError

__all__ = ["SyncResult", "pull", "push"]

_WORKERS = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    """What a push or pull moved."""

    remote: str
    versions: tuple[str, ...]
    objects: int
    bytes: int
    skipped_objects: int


def _record_key(dataset: str, number: int) -> str:
    return f"versions/{dataset}/{number:08d}.json"


def _encode(version: DatasetVersion) -> bytes:
    return json.dumps(
        {
            "dataset": version.dataset,
            "number": version.number,
            "id": version.id,
            "author": version.author,
            "message": version.message,
            "created_at": to_ms(version.created_at),
            "file_count": version.file_count,
            "size": version.size,
            "tabular": version.tabular,
            "profile_digest": version.profile_digest,
            "tags": list(version.tags),
        },
        sort_keys=True,
        indent=1,
    ).encode()


def _select(
    versions: Iterable[DatasetVersion], ref: str | None, resolve: Callable[[str], DatasetVersion]
) -> list[DatasetVersion]:
    if ref is None:
        return list(versions)
    name, selector = parse_ref(ref)
    if selector is None:
        chosen = [v for v in versions if v.dataset == name]
        if not chosen:
            raise NotFoundError(f"No versions of dataset {name!r} to sync")
        return chosen
    return [resolve(ref)]


def push(service: DataService, ref: str | None, *, remote: str) -> SyncResult:
    """Upload versions (all, one dataset's, or one) with the objects the remote lacks."""
    target = open_byte_store(remote, setting="data remote")
    versions = _select(service.store.all_versions(), ref, service.get)
    needed: dict[str, DatasetVersion] = {}
    for version in versions:
        for digest in service.version_objects(version):
            needed.setdefault(digest, version)
    present = set(target.iter_keys("objects"))
    missing = [d for d in needed if f"objects/{digest_key(d)}" not in present]
    content = service.content

    def upload(digest: str) -> int:
        name = f"object of {needed[digest].ref}"
        content.verify(digest, name=name)  # never spread a corrupted object
        local = None
        if content.backend.capabilities.local_paths:
            local = content.backend.local_path(digest_key(digest))
        if local is not None:
            target.put_file(f"objects/{digest_key(digest)}", local)
            return local.stat().st_size
        with tempfile.TemporaryDirectory(prefix="driftline-push-") as scratch:
            copy = content.get_file(digest, Path(scratch) / "object", name=name)
            target.put_file(f"objects/{digest_key(digest)}", copy)
            return copy.stat().st_size

    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="driftline-push") as pool:
        sizes = list(pool.map(upload, missing))
    # Only now, with every object in place, do the versions become visible.
    for version in versions:
        key = _record_key(version.dataset, version.number)
        if target.exists(key):
            theirs = json.loads(target.open_read(key).read())
            if theirs["id"] != version.id:
                raise ConflictError(
                    f"The remote's {version.ref} holds different content; pull and commit "
                    "again, or push under another dataset name"
                )
            continue
        _put_bytes(target, key, _encode(version))
    return SyncResult(
        remote=remote,
        versions=tuple(v.ref for v in versions),
        objects=len(missing),
        bytes=sum(sizes),
        skipped_objects=len(needed) - len(missing),
    )


def pull(service: DataService, ref: str | None, *, remote: str) -> SyncResult:
    """Download versions (all, one dataset's, or one) with the objects missing here."""
    source = open_byte_store(remote, setting="data remote")
    records = [
        json.loads(source.open_read(key).read()) for key in sorted(source.iter_keys("versions"))
    ]
    wanted = _select_records(records, ref)
    content = service.content
    moved = [0, 0]
    lock = threading.Lock()

    def fetch(digest: str, what: str) -> None:
        if content.exists(digest):
            return
        with tempfile.TemporaryDirectory(prefix="driftline-pull-") as scratch:
            local = Path(scratch) / "object"
            with (
                source.open_read(f"objects/{digest_key(digest)}") as stream,
                open(local, "wb") as out,
            ):
                while chunk := stream.read(1 << 20):
                    out.write(chunk)
            blob = content.put_file(local)
        if blob.digest != digest:
            raise IntegrityError(
                f"The remote's {what} is corrupt: got {blob.digest}, expected {digest}"
            )
        with lock:
            moved[0] += 1
            moved[1] += blob.size

    pulled = []
    for record in wanted:
        what = f"{record['dataset']}@{record['number']}"
        # The manifest first (it lists the rest), then everything it names, in parallel.
        fetch(record["id"], f"manifest of {what}")
        from driftline.data.manifest import read_manifest, shard_digests

        for shard in shard_digests(record["id"], content):
            fetch(shard, f"manifest shard of {what}")
        digests = read_manifest(record["id"], content).digests()
        if record.get("profile_digest"):
            digests.add(record["profile_digest"])
        with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="driftline-pull") as pool:
            list(pool.map(lambda d, w=what: fetch(d, f"object of {w}"), sorted(digests)))
        dataset = service.store.ensure_dataset(record["dataset"])
        service.store.put_version(
            dataset.id,
            record["number"],
            NewVersion(
                version_id=record["id"],
                author=record["author"],
                message=record["message"],
                created_at=record["created_at"],
                run_id=None,
                file_count=record["file_count"],
                size=record["size"],
                tabular=record["tabular"],
                profile_digest=record.get("profile_digest"),
            ),
        )
        for tag in record.get("tags", []):
            service.tag(what, tag)
        pulled.append(what)
    return SyncResult(
        remote=remote, versions=tuple(pulled), objects=moved[0], bytes=moved[1], skipped_objects=0
    )


def _select_records(records: list[dict[str, Any]], ref: str | None) -> list[dict[str, Any]]:
    if ref is None:
        return records
    name, selector = parse_ref(ref)
    chosen = [r for r in records if r["dataset"] == name]
    if selector is not None and selector != "latest":
        chosen = [
            r
            for r in chosen
            if str(r["number"]) == selector
            or selector in r.get("tags", [])
            or str(r["id"]).partition(":")[2].startswith(selector)
        ]
    elif selector == "latest" and chosen:
        chosen = [max(chosen, key=lambda r: int(r["number"]))]
    if not chosen:
        raise NotFoundError(f"The remote has no version {ref!r}")
    return chosen


def _put_bytes(target: ByteStore, key: str, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(prefix="driftline-", delete=False) as handle:
        handle.write(data)
    try:
        target.put_file(key, Path(handle.name))
    finally:
        Path(handle.name).unlink(missing_ok=True)
