"""Data versions, profiles and validation.

Example:
    >>> import driftline as dl
    >>> v = dl.data.commit("customers", "data/customers.parquet", message="october")
    ... # doctest: +SKIP
    >>> dl.data.get("customers@latest").to_pandas()  # doctest: +SKIP
    >>> schema = dl.data.infer_schema("customers@1")  # doctest: +SKIP
    >>> dl.data.validate(new_df, schema=schema, reference="customers@1").ok  # doctest: +SKIP

The functions here work on the default workspace; ``Workspace.data`` is the same
service for an explicit one.
"""

from __future__ import annotations

from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.core.lazy import lazy_exports

if TYPE_CHECKING:
    from driftline.data.models import (
        Dataset,
        DatasetDiff,
        DatasetVersion,
        FileChange,
        LineageEdge,
        LineageGraph,
        ManifestEntry,
        RowDiff,
    )
    from driftline.data.profile import TableProfile
    from driftline.data.scan import Progress
    from driftline.data.schema import Schema
    from driftline.data.service import DataService
    from driftline.data.validation import ValidationReport
    from driftline.data.version import Version

__all__ = [
    "DataService",
    "Dataset",
    "DatasetDiff",
    "DatasetVersion",
    "FileChange",
    "LineageEdge",
    "LineageGraph",
    "ManifestEntry",
    "RowDiff",
    "Version",
    "commit",
    "diff",
    "get",
    "infer_schema",
    "lineage",
    "list_datasets",
    "log",
    "pull",
    "push",
    "resolve_source",
    "tag",
    "validate",
]


# Imported on first use (see driftline.core.lazy): declaring the stage stays cheap.
__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            ("Dataset", "DatasetDiff", "DatasetVersion", "FileChange", "LineageEdge"),
            "driftline.data.models",
        ),
        **dict.fromkeys(("LineageGraph", "ManifestEntry", "RowDiff"), "driftline.data.models"),
        "DataService": "driftline.data.service",
        "Version": "driftline.data.version",
    },
)


def _service() -> DataService:
    from driftline.core.session import default_workspace
    from driftline.data.service import DataService

    return default_workspace().service("data", DataService)


def _active_run_id() -> str | None:
    from driftline.tracking import current_run

    run = current_run()
    return None if run is None else run.id


def commit(
    name: str,
    source: Any,
    *,
    message: str | None = None,
    tags: tuple[str, ...] | list[str] = (),
    progress: Progress | None = None,
) -> Version:
    """Commit a file, a folder, a DataFrame or an Arrow table as the next version of ``name``.

    Inside a run, the run is recorded as the version's producer.
    """
    from driftline.data.version import Version

    service = _service()
    record = service.commit(
        name, source, message=message, tags=tags, run_id=_active_run_id(), progress=progress
    )
    return Version(service, record)


def get(ref: str, *, as_of: datetime | None = None) -> Version:
    """A version: ``customers``, ``customers@3``, ``customers@latest``, ``customers@<tag>``,
    ``customers@<version-id prefix>``; ``as_of`` picks the latest committed by then (UTC)."""
    from driftline.data.version import Version

    service = _service()
    return Version(service, service.get(ref, as_of=as_of))


def list_datasets() -> list[Dataset]:
    """Every dataset with its latest version number."""
    return _service().list_datasets()


def log(name: str) -> list[Version]:
    """The versions of a dataset, newest first."""
    from driftline.data.version import Version

    service = _service()
    return [Version(service, record) for record in service.log(name)]


# The function keeps its name when ``driftline.data.diff`` is imported (core.lazy).
def diff(a: str, b: str, *, key: list[str] | str | None = None) -> DatasetDiff:
    """Files added, removed, modified, renamed; for tables also schema, statistics and rows."""
    from driftline.data.diff import diff_versions

    keys = [key] if isinstance(key, str) else key
    return diff_versions(get(a), get(b), key=keys)


def tag(ref: str, name: str) -> Version:
    """Give a version an immutable tag."""
    from driftline.data.version import Version

    service = _service()
    return Version(service, service.tag(ref, name))


def lineage(ref: str, *, depth: int = 3) -> LineageGraph:
    """Runs and versions upstream and downstream of a version."""
    return _service().lineage(ref, depth=depth)


def resolve_source(source: Any, service: DataService | None = None) -> Any:
    """A table source with a dataset reference resolved to its :class:`Version`.

    A string names a file or folder when one exists at that path, and otherwise a
    version (``customers@3``) of ``service`` (default: the default workspace's). Other
    sources (a ``Path``, a DataFrame, an Arrow table, a ``Version``) are returned as is.

    Raises:
        NotFoundError, InvalidArgumentError: The string is neither an existing path nor
            a version; the message says why each reading failed.

    Example:
        >>> dl.data.resolve_source("customers@2")  # doctest: +SKIP
        Version(customers@2 ...)
    """
    from driftline.data.version import Version
    from driftline.errors import InvalidArgumentError, NotFoundError

    if not isinstance(source, str) or Path(source).exists():
        return source
    service = service or _service()
    try:
        return Version(service, service.get(source))
    except (NotFoundError, InvalidArgumentError) as exc:
        # Same class as the dataset's error (a missing version is NotFound, a string that
        # cannot be a reference is InvalidArgument), saying both readings were tried.
        raise type(exc)(
            f"Cannot read {source!r}: it is no file or folder here, nor a dataset version ({exc})"
        ) from None


def _profile_of(source: Any) -> TableProfile:
    from driftline.data.profile import profile_table
    from driftline.data.version import Version

    source = resolve_source(source)
    if isinstance(source, Version):
        return source.profile
    return profile_table(_table_source(source))


def _table_source(data: Any) -> Any:
    """A DataFrame/Table as is; a version (or a reference to one) as its Arrow table; a
    path as the list of its tabular files."""
    from driftline.data.tabular import is_table_object, supported_formats, table_format
    from driftline.data.version import Version
    from driftline.errors import InvalidArgumentError

    if is_table_object(data):
        return data
    data = resolve_source(data)
    if isinstance(data, Version):
        return data.to_arrow()
    if not isinstance(data, str | PathLike):
        raise InvalidArgumentError(
            f"Cannot read a {type(data).__name__} as a table: give a DataFrame, an Arrow "
            "table, a Parquet/CSV path or a dataset version such as customers@1"
        )
    path = Path(data)
    if not path.exists():
        raise InvalidArgumentError(f"Cannot read {path}: no such file or folder")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    bad = [f for f in files if table_format(f.name) is None]
    if bad or not files:
        raise InvalidArgumentError(
            f"{bad[0] if bad else path} is not a table; tabular formats are {supported_formats()}"
        )
    return [str(f) for f in files]


def infer_schema(source: Any) -> Schema:
    """A conservative schema from a version (or its reference, e.g. ``customers@3``), a
    DataFrame/Table, or a Parquet/CSV file or folder."""
    from driftline.data.schema import infer_schema as infer

    return infer(_profile_of(source))


def validate(
    data: Any, *, schema: Schema | str | Path, reference: str | Version | None = None
) -> ValidationReport:
    """Check a batch against a schema and, with ``reference``, for drift from its profile.

    ``data`` is a DataFrame, an Arrow table, a Parquet/CSV file or folder, or a dataset
    version (a ``Version`` or a reference such as ``customers@3`` that is not a path).
    """
    from driftline.data.schema import Schema
    from driftline.data.validation import validate as run
    from driftline.data.version import Version

    loaded = schema if isinstance(schema, Schema) else Schema.load(schema)
    ref_profile = None
    if reference is not None:
        ref_profile = (reference if isinstance(reference, Version) else get(reference)).profile
    return run(_table_source(data), schema=loaded, reference=ref_profile)


def push(ref: str | None = None, *, remote: str | None = None) -> Any:
    """Copy versions (one ref, one dataset's, or all) and their objects to a remote."""
    from driftline.data.remote import push as run

    service = _service()
    return run(service, ref, remote=remote or _default_remote())


def pull(ref: str | None = None, *, remote: str | None = None) -> Any:
    """Fetch versions (one ref, one dataset's, or all) and their objects from a remote."""
    from driftline.data.remote import pull as run

    service = _service()
    return run(service, ref, remote=remote or _default_remote())


def _default_remote() -> str:
    from driftline.core.session import default_workspace
    from driftline.errors import InvalidArgumentError

    remote = default_workspace().settings.data_remote
    if not remote:
        raise InvalidArgumentError(
            "No remote: pass remote=URL (any fsspec URL, e.g. s3://bucket/prefix or a folder) "
            "or set DRIFTLINE_DATA_REMOTE"
        )
    return str(remote)
