"""MLflow's artifact proxy: ``/api/2.0/mlflow-artifacts/artifacts/<path>``.

A run's MLflow ``artifact_uri`` is ``mlflow-artifacts:/<experiment>/<run>/artifacts``, so
the client sends every file through these routes: ``PUT`` uploads (the body streams to a
temporary file, is hashed on the way and moved into the content store, then recorded
in the run's artifact index, the same index ``dl.log_artifact`` writes), ``GET``
downloads (verified against the digest, see :mod:`driftline.server.downloads`), and ``GET``
on the collection with ``?path=`` lists one folder level.

A second, read-only namespace serves registered model versions from the files the
registry pinned: ``_registry/<model>/<version>/...`` (the ``get-download-uri`` of a
version points there), so a loaded version is exactly what was registered even if the
run's artifacts change later.

Paths with ``..``, absolute paths, backslashes and control characters (NUL) are
refused with 400 before anything is looked up; ``.mlflow/`` inside a run is where the
adapter keeps its records (``_records``) and cannot be written through MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from driftline.core.artifacts import validate_artifact_path
from driftline.core.clock import utcnow
from driftline.core.hashing import new_hasher
from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.server import deps
from driftline.server.downloads import object_response
from driftline.server.mlflow._access import allow, run_by_id
from driftline.server.mlflow._records import RECORDS_FOLDER
from driftline.server.mlflow._views import run_artifact_uri
from driftline.server.mlflow._wire import MlflowRoute, field_str, query_of
from driftline.server.routes.artifacts import receive_body, upload_area
from driftline.tracking import ArtifactEntry, Run
from driftline.workspace import Workspace

__all__ = ["REGISTRY_ROOT", "router", "tracking_router"]

router = APIRouter(route_class=MlflowRoute)
tracking_router = APIRouter(route_class=MlflowRoute)

REGISTRY_ROOT = "_registry"


@dataclass(frozen=True, slots=True)
class File:
    """A file as listed: its path below the listed folder, digest and size."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Location:
    """Where an artifact path points: a run's artifacts, or a registered version's files."""

    run: Run | None
    version_ref: str | None
    path: str  # below the run's artifact root or the version's package ("" = the root)


def _locate(ws: Workspace, path: str) -> Location:
    clean = validate_artifact_path(path)
    parts = clean.split("/")
    if parts[0] == REGISTRY_ROOT:
        if len(parts) < 3 or not parts[2].isdigit():
            raise InvalidArgumentError(
                f"Artifact path {path!r}: use {REGISTRY_ROOT}/<model>/<version>/<file>"
            )
        return Location(None, f"{parts[1]}/{parts[2]}", "/".join(parts[3:]))
    if len(parts) < 3 or parts[2] != "artifacts":
        raise InvalidArgumentError(
            f"Artifact path {path!r}: use <experiment id>/<run id>/artifacts/<file>"
        )
    run = run_by_id(ws, parts[1])
    if run.experiment_id != parts[0]:
        raise NotFoundError(f"Run {run.id} is not in experiment {parts[0]!r}")
    return Location(run, None, "/".join(parts[3:]))


def _files(ws: Workspace, location: Location) -> list[File]:
    """The files at or below ``location.path``, with paths relative to the root."""
    if location.run is not None:
        entries = ws.tracking.list_artifacts(location.run.id, location.path)
        return [File(e.path, e.digest, e.size) for e in entries]
    assert location.version_ref is not None
    version = ws.registry.get_version(location.version_ref)
    prefix = location.path
    return [
        File(e.path, e.digest, e.size)
        for e in ws.registry.package_files(version)
        if not prefix or e.path == prefix or e.path.startswith(prefix + "/")
    ]


# -- upload -----------------------------------------------------------------------------


def _upload_target(request: Request, path: str) -> tuple[Workspace, Run, str]:
    ws = deps.workspace(request)
    location = _locate(ws, path)
    if location.run is None:
        raise InvalidArgumentError("Registered model versions are read-only")
    allow(request, "edit", experiment_id=location.run.experiment_id)
    if not location.path:
        raise InvalidArgumentError(f"Artifact path {path!r} names no file")
    if location.path.split("/")[0] == RECORDS_FOLDER:
        raise InvalidArgumentError(
            f"Artifact path {location.path!r}: {RECORDS_FOLDER}/ is reserved for driftline"
        )
    return ws, location.run, location.path


@router.put("/artifacts/{path:path}")
async def upload_artifact(request: Request, path: str) -> Response:
    """Store the request body as the run artifact ``path`` (streamed, never held whole)."""
    # async so the body can be read as it arrives; the blocking steps run in threads.
    ws, run, logical = await run_in_threadpool(_upload_target, request, path)
    # The same swept upload area and thread-pool writes as driftline's own object API.
    temp = await run_in_threadpool(upload_area(request).new_temp)
    hasher = new_hasher(ws.content.algorithm)
    size = 0

    def write(out: BinaryIO, data: bytes) -> None:
        nonlocal size
        hasher.update(data)
        out.write(data)
        size += len(data)

    try:
        out = await run_in_threadpool(open, temp, "wb")
        try:
            await receive_body(request, partial(write, out))
        except ClientDisconnect:
            raise InvalidArgumentError(
                f"The upload of {logical!r} was cut off after {size} bytes; nothing stored"
            ) from None
        finally:
            await run_in_threadpool(out.close)
        digest = f"{ws.content.algorithm}:{hasher.hexdigest()}"
        blob = await run_in_threadpool(ws.content.adopt_file, temp, digest)
    finally:
        temp.unlink(missing_ok=True)
    entry = ArtifactEntry(path=logical, digest=blob.digest, size=blob.size, created_at=utcnow())
    await run_in_threadpool(ws.tracking.add_artifacts, run.id, [entry])
    return JSONResponse({})


# -- download and listing -----------------------------------------------------------------


@router.get("/artifacts/{path:path}")
def download_artifact(request: Request, path: str) -> Response:
    """The bytes of one artifact file, streamed."""
    deps.authorize(request, "read")
    ws = deps.workspace(request)
    location = _locate(ws, path)
    matches = [f for f in _files(ws, location) if f.path == location.path]
    if not location.path or not matches:
        raise NotFoundError(f"No artifact file at {path!r}")
    file = matches[0]
    # Verified: a corrupt small file is a 500 before any byte is sent, a corrupt large
    # one a dropped connection (see driftline.server.downloads).
    return object_response(ws.content, file.digest, size=file.size, name=path)


def _children(files: list[File], folder: str, *, hide_records: bool) -> list[dict[str, Any]]:
    """One level of a listing: files directly in ``folder`` and its sub-folders."""
    prefix = f"{folder}/" if folder else ""
    found: dict[str, dict[str, Any]] = {}
    for file in files:
        if not file.path.startswith(prefix):
            continue  # the folder itself is a file: a file has no children
        name, sep, _ = file.path[len(prefix) :].partition("/")
        if hide_records and not folder and name == RECORDS_FOLDER:
            continue
        if sep:
            found.setdefault(name, {"path": name, "is_dir": True})
        else:
            found[name] = {"path": name, "is_dir": False, "file_size": file.size}
    return [found[name] for name in sorted(found)]


@router.get("/artifacts")
def list_artifacts(request: Request) -> dict[str, Any]:
    """``{"files"}`` directly under ``?path=`` (``{}`` when there are none)."""
    deps.authorize(request, "read")
    ws = deps.workspace(request)
    path = field_str(query_of(request), "path", required=True)
    location = _locate(ws, path)
    files = _children(_files(ws, location), location.path, hide_records=location.run is not None)
    return {"files": files} if files else {}


@tracking_router.get("/artifacts/list")
def list_run_artifacts(request: Request) -> dict[str, Any]:
    """The older listing by ``run_id`` and ``path``: paths relative to the run's root."""
    deps.authorize(request, "read")
    fields = query_of(request)
    ws = deps.workspace(request)
    run = run_by_id(ws, field_str(fields, "run_id") or field_str(fields, "run_uuid", required=True))
    folder = field_str(fields, "path")
    folder = validate_artifact_path(folder) if folder else ""
    entries = ws.tracking.list_artifacts(run.id, folder)
    files = [File(e.path, e.digest, e.size) for e in entries]
    children = _children(files, folder, hide_records=True)
    for child in children:
        child["path"] = f"{folder}/{child['path']}" if folder else child["path"]
    result: dict[str, Any] = {"root_uri": run_artifact_uri(run)}
    if children:
        result["files"] = children
    return result
