"""REST routes: data versions (``/api/v1/data/...``), the DataStore protocol over HTTP.

Datasets, versions and tags are addressed by dataset name (what users see); records go
out encoded by :mod:`driftline.api.codec`. Handlers translate the wire format to calls
of the server's data service, which checks every input (a client may not be the SDK):

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

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.requests import Request

from driftline.api.codec import encode
from driftline.api.data import PutVersionBody, RunInputBody, TagBody, VersionBody
from driftline.api.text import INT32_MAX, has_nul
from driftline.core.clock import now_ms
from driftline.core.values import MAX_MS, MIN_MS
from driftline.data.models import DatasetVersion
from driftline.data.service import DataService, check_dataset_name
from driftline.data.store import NewVersion
from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.server.deps import actor, authorize, workspace

router = APIRouter(prefix="/data", tags=["data"])

NumberPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="Version number")]
RunIdPath = Annotated[str, Path(min_length=1, max_length=32, description="Run id")]


def _data(request: Request) -> DataService:
    return workspace(request).data


def _version(request: Request, name: str, number: int) -> DatasetVersion:
    """The version ``number`` of dataset ``name``; ``NotFoundError`` says what exists."""
    return _data(request).get(f"{check_dataset_name(name)}@{number}")


def _run_id(run_id: str) -> str:
    if has_nul(run_id):
        raise InvalidArgumentError("A run id must not contain NUL characters")
    return run_id


def _new_version(body: VersionBody, *, author: str, created_at: int) -> NewVersion:
    if body.run_id is not None:
        _run_id(body.run_id)
    return NewVersion(
        version_id=body.version_id,
        author=author,
        message=body.message,
        created_at=created_at,
        run_id=body.run_id,
        file_count=body.file_count,
        size=body.size,
        tabular=body.tabular,
        profile_digest=body.profile_digest,
    )


# -- datasets -----------------------------------------------------------------------


@router.get("/datasets", summary="Every dataset with its latest version number")
def list_datasets(request: Request) -> dict[str, Any]:
    authorize(request, "read")
    return {"datasets": encode(_data(request).list_datasets())}


@router.get("/datasets/{name}", summary="One dataset")
def get_dataset(request: Request, name: str) -> Any:
    authorize(request, "read")
    return encode(_data(request).dataset(name))


@router.put("/datasets/{name}", summary="The dataset, created if missing")
def ensure_dataset(request: Request, name: str) -> Any:
    """Creating needs ``edit``; an existing dataset is only read (the SDK ensures the
    dataset before recording what a run read, which a run's own grant allows)."""
    data = _data(request)
    try:
        found = data.dataset(name)
    except NotFoundError:
        authorize(request, "edit")
        return encode(data.ensure_dataset(name))
    authorize(request, "read")
    return encode(found)


# -- versions -----------------------------------------------------------------------


@router.get("/datasets/{name}/versions", summary="Every version of a dataset, newest first")
def list_versions(request: Request, name: str) -> dict[str, Any]:
    authorize(request, "read")
    return {"versions": encode(_data(request).versions(name))}


@router.post("/datasets/{name}/versions", summary="Record the next version (latest + 1)")
def add_version(request: Request, name: str, body: VersionBody) -> dict[str, Any]:
    """Identical content to the latest version returns that version (``created`` false),
    so a retried request records nothing twice."""
    authorize(request, "edit")
    new = _new_version(body, author=actor(request), created_at=now_ms())
    version, created = _data(request).record_version(name, new)
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
    found = _data(request).find_version(
        name, number=number, tag=tag, id_prefix=id_prefix, as_of=as_of
    )
    return {"version": None if found is None else encode(found)}


@router.get("/datasets/{name}/versions/{number}", summary="One version by number")
def get_version(request: Request, name: str, number: NumberPath) -> Any:
    authorize(request, "read")
    return encode(_version(request, name, number))


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
    new = _new_version(body, author=body.author, created_at=body.created_at)
    version, _ = _data(request).record_version(name, new, number=number)
    return encode(version)


@router.get("/datasets/{name}/versions/{number}/readers", summary="Ids of runs that read a version")
def readers(request: Request, name: str, number: NumberPath) -> dict[str, Any]:
    authorize(request, "read")
    return {"run_ids": _data(request).readers(name, number)}


@router.get("/versions", summary="Every version of every dataset (garbage collection, remotes)")
def all_versions(request: Request) -> dict[str, Any]:
    authorize(request, "read")
    return {"versions": encode(_data(request).all_versions())}


# -- tags -------------------------------------------------------------------------------


@router.put("/datasets/{name}/tags/{tag}", summary="Tag a version (tags are immutable)")
def add_tag(request: Request, name: str, tag: str, body: TagBody) -> Any:
    """Re-tagging the same version is a no-op; 409 if the tag marks another version."""
    authorize(request, "edit")
    check_dataset_name(name)
    return encode(_data(request).tag(f"{name}@{body.number}", tag, actor=actor(request)))


# -- lineage ----------------------------------------------------------------------------


@router.get("/runs/{run_id}/inputs", summary="The dataset versions a run read")
def run_inputs(request: Request, run_id: RunIdPath) -> dict[str, Any]:
    authorize(request, "read")
    return {"versions": encode(_data(request).run_inputs(_run_id(run_id)))}


@router.post("/runs/{run_id}/inputs", summary="Record that a run read a version (idempotent)")
def add_run_input(request: Request, run_id: RunIdPath, body: RunInputBody) -> Any:
    """Part of the run's record: needs ``edit`` on the run's experiment."""
    ws = workspace(request)
    run = ws.tracking.get_run(_run_id(run_id))  # NotFoundError for an unknown run
    experiment = ws.tracking.experiment_by_id(run.experiment_id)
    authorize(request, "edit", experiment=experiment.name)
    version = _version(request, body.dataset, body.number)
    return encode(ws.data.log_input(run_id, version))


@router.get("/runs/{run_id}/outputs", summary="The dataset versions a run produced")
def run_outputs(request: Request, run_id: RunIdPath) -> dict[str, Any]:
    authorize(request, "read")
    return {"versions": encode(_data(request).run_outputs(_run_id(run_id)))}
