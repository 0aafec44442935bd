"""The narrow store protocol the monitoring stage's backends implement."""

from __future__ import annotations

from typing import Protocol

from driftline.monitoring.models import StoredReference

__all__ = ["ReferenceStore"]


class ReferenceStore(Protocol):
    """Records of fitted references; their bytes live in the content store."""

    def add_reference(self, record: StoredReference) -> StoredReference:
        """Store a new record (ids are unique; names may repeat: the newest wins)."""
        ...

    def find_reference(self, name: str) -> StoredReference | None:
        """The newest record of a name, or None."""
        ...

    def find_by_source(self, source_key: str, settings_key: str) -> StoredReference | None:
        """The newest record fitted on this data with these settings, or None."""
        ...

    def list_references(self) -> list[StoredReference]:
        """Every record, newest first."""
        ...

    def referenced_digests(self) -> set[str]:
        """Every stored object a record points to (gc roots)."""
        ...
