"""Data-version records: datasets, versions, manifest entries, diffs, lineage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "Dataset",
    "DatasetDiff",
    "DatasetVersion",
    "FileChange",
    "LineageEdge",
    "LineageGraph",
    "ManifestEntry",
    "RowDiff",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestEntry:
    """One file of a version: its path inside the version, content digest and size."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    """A named line of versions (``customers``)."""

    id: str
    name: str
    description: str | None
    created_at: datetime
    latest: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetVersion:
    """An immutable version: ``id`` is the content hash of its manifest; ``number`` counts up.

    ``tabular`` versions hold only Parquet or CSV files and carry a column ``profile``
    (its digest in the artifact store) computed at commit.
    """

    dataset: str
    number: int
    id: str
    parent: int | None
    author: str
    message: str | None
    created_at: datetime
    run_id: str | None
    file_count: int
    size: int
    tabular: bool
    profile_digest: str | None
    tags: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The human reference, ``customers@3``."""
        return f"{self.dataset}@{self.number}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileChange:
    """A file-level difference between two versions."""

    kind: str  # "added", "removed", "modified", "renamed"
    path: str
    old_path: str | None = None
    old_digest: str | None = None
    new_digest: str | None = None
    size_delta: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RowDiff:
    """Row-level differences matched on key columns, with a sample of each kind."""

    key: tuple[str, ...]
    added: int
    removed: int
    changed: int
    unchanged: int
    samples: Mapping[str, list[dict[str, object]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetDiff:
    """What changed from version ``a`` to version ``b``."""

    a: str
    b: str
    files: tuple[FileChange, ...]
    rows: tuple[int | None, int | None] = (None, None)
    schema_changes: tuple[str, ...] = ()
    column_changes: Mapping[str, Mapping[str, tuple[object, object]]] = field(default_factory=dict)
    row_diff: RowDiff | None = None

    @property
    def unchanged(self) -> bool:
        """Whether the two versions hold identical files."""
        return not self.files


@dataclass(frozen=True, slots=True, kw_only=True)
class LineageEdge:
    """``source`` fed ``target``: a version read by a run, or a run that produced a version.

    Nodes are ``run:<id>`` or ``data:<name>@<number>``.
    """

    source: str
    target: str
    kind: str  # "input" (version -> run) or "output" (run -> version)


@dataclass(frozen=True, slots=True, kw_only=True)
class LineageGraph:
    """The upstream and downstream neighbourhood of a version."""

    root: str
    upstream: tuple[LineageEdge, ...]
    downstream: tuple[LineageEdge, ...]
