"""The protocol data-version backends implement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from driftline.data.models import Dataset, DatasetVersion

__all__ = ["DataStore", "NewVersion"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewVersion:
    """What the service hands the store to record a version (the store assigns the number)."""

    version_id: str
    author: str
    message: str | None
    created_at: int
    run_id: str | None
    file_count: int
    size: int
    tabular: bool
    profile_digest: str | None


class DataStore(Protocol):
    """Datasets, versions, tags and the run inputs that make lineage."""

    def ensure_dataset(self, name: str) -> Dataset:
        """The dataset called ``name``, created if missing (race-safe)."""
        ...

    def list_datasets(self) -> list[Dataset]:
        """Every dataset with its latest version number, by name."""
        ...

    def add_version(self, dataset_id: str, new: NewVersion) -> tuple[DatasetVersion, bool]:
        """Record a version as ``latest + 1`` atomically; if the latest version has the same
        ``version_id``, return it instead. The flag says whether a version was created."""
        ...

    def put_version(self, dataset_id: str, number: int, new: NewVersion) -> DatasetVersion:
        """Record a version under a given number (pulled from a remote); ``ConflictError``
        if that number holds different content."""
        ...

    def find_version(
        self,
        dataset: str,
        *,
        number: int | None = None,
        tag: str | None = None,
        id_prefix: str | None = None,
        as_of: int | None = None,
    ) -> DatasetVersion | None:
        """A version by number, tag, version-id prefix, or the latest at a time (or latest)."""
        ...

    def list_versions(self, dataset: str) -> list[DatasetVersion]:
        """Every version of a dataset, newest first."""
        ...

    def add_tag(
        self, dataset_id: str, tag: str, number: int, created_at: int, *, actor: str
    ) -> None:
        """Tag a version; tags are immutable (``ConflictError`` if the tag points elsewhere).
        The tag is appended to the audit log in the same transaction."""
        ...

    def add_run_input(self, run_id: str, dataset_id: str, number: int, created_at: int) -> None:
        """Record that a run read a version (idempotent)."""
        ...

    def run_inputs(self, run_id: str) -> list[DatasetVersion]:
        """The versions a run read."""
        ...

    def readers(self, dataset: str, number: int) -> list[str]:
        """Ids of runs that read a version."""
        ...

    def versions_by_run(self, run_id: str) -> list[DatasetVersion]:
        """Versions a run produced."""
        ...

    def all_versions(self) -> list[DatasetVersion]:
        """Every version of every dataset (for garbage collection and remotes)."""
        ...
