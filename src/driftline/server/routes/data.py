"""REST routes: data versions (``/api/v1/data/...``), the DataStore protocol over HTTP.

Datasets, versions and tags are addressed by dataset name (what users see); records go
out encoded by :mod:`driftline.api.codec`. The server re-checks every input with the
rules the data service applies, because a client may not be the SDK:

- names and tags follow the service's rules (``latest`` and numbers are no tags);
- a version's manifest and profile must already be in the server's artifact store
  (clients upload objects first, then record the version), and a producing run must exist;
- the manifest must be one (:func:`~driftline.data.manifest.check_manifest`): no path
  that would be written outside a checkout folder or over another file of it, and the
  file count and size the version states must be the manifest's;
- a new version's author is the caller (``deps.actor``) and its time is the server's,
  so time travel (``as_of``) reads one clock; a version copied from a remote keeps its
  original author and time.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.requests import Request

from driftline.api.codec import encode
from driftline.api.data import PutVersionBody, RunInputBody, TagBody, VersionBody
from driftline.api.text import INT32_MAX, has_nul
from driftline.core.clock import now_ms
from driftline.core.hashing import parse_digest
from driftline.core.values import MAX_MS, MIN_MS
from driftline.data.manifest import check_manifest
from driftline.data.service import check_dataset_name, check_tag
from driftline.data.store import DataStore, NewVersion
from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.server.deps import actor, authorize, workspace

if TYPE_CHECKING:
    from driftline.workspace import Workspace

router = APIRouter(prefix="/data", tags=["data"])

# The service's rule for version-id prefixes (at least 6 hex digits): a shorter one
# would match most versions.
_ID_PREFIX = re.compile(r"^[0-9a-f]{6,64}$")

NumberPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="Version number")]
RunIdPath = Annotated[str, Path(min_length=1, max_length=32, description="Run id")]


def _store(request: Request) -> DataStore:
    return workspace(request).data.store


def _unknown_dataset(store: DataStore, name: str) -> NotFoundError:
    names = [d.name for d in store.list_datasets()]
    near = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
    return NotFoundError(f"No dataset named {name!r}{hint}")


def _existing_version(store: DataStore, name: str, number: int) -> Any:
    found = store.find_version(name, number=number)
    if found is not None:
        return found
    latest = store.find_version(name)
    if latest is None:
        if any(d.name == name for d in store.list_datasets()):
            raise NotFoundError(f"Dataset {name} has no versions yet")
        raise _unknown_dataset(store, name)
    raise NotFoundError(
        f"No version {number} of dataset {name}; it has versions 1..{latest.number}"
    )


def _run_id(run_id: str) -> str:
    if has_nul(run_id):
        raise InvalidArgumentError("A run id must not contain NUL characters")
    return run_id


def _check_objects(ws: Workspace, body: VersionBody) -> None:
    """The manifest (and profile) a version names must be stored on this server, and the
    manifest must be a safe one that the version describes truly."""
    for digest, what in ((body.version_id, "manifest"), (body.profile_digest, "profile")):
        if digest is None:
            continue
        parse_digest(digest)  # InvalidArgumentError for a malformed digest
        if not ws.content.exists(digest):
            raise NotFoundError(
                f"The {what} {digest} is not in the server's artifact store: upload the "
                "version's objects before recording it"
            )
    manifest = check_manifest(body.version_id, ws.content)  # InvalidArgumentError if unsafe
    if (body.file_count, body.size) != (len(manifest), manifest.size):
        raise InvalidArgumentError(
            f"The version states {body.file_count} files and {body.size} bytes, but its "
            f"manifest lists {len(manifest)} files and {manifest.size} bytes"
        )
    if body.run_id is not None:
        ws.tracking.get_run(_run_id(body.run_id))  # NotFoundError for an unknown run


# -- datasets -----------------------------------------------------------------------


@router.get("/datasets", summary="Every dataset with its latest version number")
def list_datasets(request: Request) -> dict[str, Any]:
    authorize(request, "read")
    return {"datasets": encode(_store(request).list_datasets())}


@router.get("/datasets/{name}", summary="One dataset")
def get_dataset(request: Request, name: str) -> Any:
    authorize(request, "read")
    check_dataset_name(name)
    store = _store(request)
    for dataset in store.list_datasets():
        if dataset.name == name:
            return encode(dataset)
    raise _unknown_dataset(store, name)


@router.put("/datasets/{name}", summary="The dataset, created if missing")
def ensure_dataset(request: Request, name: str) -> Any:
    """Creating needs ``edit``; an existing dataset is only read (the SDK ensures the
    dataset before recording what a run read, which a run's own grant allows)."""
    check_dataset_name(name)
    store = _store(request)
    for dataset in store.list_datasets():
        if dataset.name == name:
            authorize(request, "read")
            return encode(dataset)
    authorize(request, "edit")
    return encode(store.ensure_dataset(name))


# -- versions -----------------------------------------------------------------------


@router.get("/datasets/{name}/versions", summary="Every version of a dataset, newest first")
def list_versions(request: Request, name: str) -> dict[str, Any]:
    authorize(request, "read")
    store = _store(request)
    versions = store.list_versions(check_dataset_name(name))
    if not versions and all(d.name != name for d in store.list_datasets()):
        raise _unknown_dataset(store, name)
    return {"versions": encode(versions)}


@router.post("/datasets/{name}/versions", summary="Record the next version (latest + 1)")
def add_version(request: Request, name: str, body: VersionBody) -> dict[str, Any]:
    """Identical content to the latest version returns that version (``created`` false),
    so a retried request records nothing twice."""
    authorize(request, "edit")
    check_dataset_name(name)
    ws = workspace(request)
    _check_objects(ws, body)
    store = ws.data.store
    dataset = store.ensure_dataset(name)
    version, created = store.add_version(
        dataset.id,
        NewVersion(
            version_id=body.version_id,
            author=actor(request),
            message=body.message,
            created_at=now_ms(),
            run_id=body.run_id,
            file_count=body.file_count,
            size=body.size,
            tabular=body.tabular,
            profile_digest=body.profile_digest,
        ),
    )
    return {"version": encode(version), "created": created}


@router.get(
    "/datasets/{name}/versions/find",
    summary="A version by number, tag, id prefix or time (else the latest), or null",
)
def find_version(
    request: Request,
    name: str,
    number: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    tag: Annotated[str | None, Query(max_length=256)] = None,
    id_prefix: Annotated[str | None, Query(max_length=64)] = None,
    as_of: Annotated[int | None, Query(ge=MIN_MS, le=MAX_MS, description="Epoch ms")] = None,
) -> dict[str, Any]:
    authorize(request, "read")
    check_dataset_name(name)
    if tag is not None and has_nul(tag):
        return {"version": None}  # no tag holds a NUL character
    if id_prefix is not None and not _ID_PREFIX.match(id_prefix):
        raise InvalidArgumentError(
            f"Invalid version-id prefix {id_prefix!r}: give 6 to 64 lowercase hex digits"
        )
    found = _store(request).find_version(
        name, number=number, tag=tag, id_prefix=id_prefix, as_of=as_of
    )
    return {"version": None if found is None else encode(found)}


@router.get("/datasets/{name}/versions/{number}", summary="One version by number")
def get_version(request: Request, name: str, number: NumberPath) -> Any:
    authorize(request, "read")
    return encode(_existing_version(_store(request), check_dataset_name(name), number))


@router.put(
    "/datasets/{name}/versions/{number}",
    summary="Record a version under a given number (copied from a remote)",
)
def put_version(request: Request, name: str, number: NumberPath, body: PutVersionBody) -> Any:
    """Idempotent; 409 if that number holds different content.

    Admins only: the version keeps the author, time and number it had where it was
    copied from, all of which the request states (an editor could otherwise record
    versions in another person's name, or back-date what time travel returns).
    """
    authorize(request, "manage", admin=True)
    check_dataset_name(name)
    ws = workspace(request)
    _check_objects(ws, body)
    store = ws.data.store
    dataset = store.ensure_dataset(name)
    version = store.put_version(
        dataset.id,
        number,
        NewVersion(
            version_id=body.version_id,
            author=body.author,
            message=body.message,
            created_at=body.created_at,
            run_id=body.run_id,
            file_count=body.file_count,
            size=body.size,
            tabular=body.tabular,
            profile_digest=body.profile_digest,
        ),
    )
    return encode(version)


@router.get("/datasets/{name}/versions/{number}/readers", summary="Ids of runs that read a version")
def readers(request: Request, name: str, number: NumberPath) -> dict[str, Any]:
    authorize(request, "read")
    return {"run_ids": _store(request).readers(check_dataset_name(name), number)}


@router.get("/versions", summary="Every version of every dataset (garbage collection, remotes)")
def all_versions(request: Request) -> dict[str, Any]:
    authorize(request, "read")
    return {"versions": encode(_store(request).all_versions())}


# -- tags -------------------------------------------------------------------------------


@router.put("/datasets/{name}/tags/{tag}", summary="Tag a version (tags are immutable)")
def add_tag(request: Request, name: str, tag: str, body: TagBody) -> Any:
    """Re-tagging the same version is a no-op; 409 if the tag marks another version."""
    authorize(request, "edit")
    check_dataset_name(name)
    check_tag(tag)
    store = _store(request)
    version = _existing_version(store, name, body.number)
    dataset = store.ensure_dataset(name)  # exists: it holds the version
    store.add_tag(dataset.id, tag, version.number, now_ms(), actor=actor(request))
    return encode(_existing_version(store, name, body.number))


# -- lineage ----------------------------------------------------------------------------


@router.get("/runs/{run_id}/inputs", summary="The dataset versions a run read")
def run_inputs(request: Request, run_id: RunIdPath) -> dict[str, Any]:
    authorize(request, "read")
    return {"versions": encode(_store(request).run_inputs(_run_id(run_id)))}


@router.post("/runs/{run_id}/inputs", summary="Record that a run read a version (idempotent)")
def add_run_input(request: Request, run_id: RunIdPath, body: RunInputBody) -> Any:
    """Part of the run's record: needs ``edit`` on the run's experiment."""
    ws = workspace(request)
    run = ws.tracking.get_run(_run_id(run_id))  # NotFoundError for an unknown run
    experiment = ws.tracking.store.find_experiment(id=run.experiment_id)
    authorize(request, "edit", experiment=None if experiment is None else experiment.name)
    store = ws.data.store
    version = _existing_version(store, check_dataset_name(body.dataset), body.number)
    dataset = store.ensure_dataset(body.dataset)
    store.add_run_input(run_id, dataset.id, version.number, now_ms())
    return encode(version)


@router.get("/runs/{run_id}/outputs", summary="The dataset versions a run produced")
def run_outputs(request: Request, run_id: RunIdPath) -> dict[str, Any]:
    authorize(request, "read")
    return {"versions": encode(_store(request).versions_by_run(_run_id(run_id)))}
