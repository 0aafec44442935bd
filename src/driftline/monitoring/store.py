"""The narrow store protocols the monitoring stage's backends implement."""

from __future__ import annotations

from typing import Any, Protocol

from driftline.monitoring.labels import LabelBatch
from driftline.monitoring.models import StoredReference

__all__ = ["LabelStore", "ReferenceStore"]


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


class LabelStore(Protocol):
    """Labels of served requests, one per ``(deployment, request_id, row)``."""

    def upsert_labels(
        self, deployment: str, batch: LabelBatch, ingested_at: int
    ) -> tuple[int, int]:
        """Store a batch, replacing earlier labels of the same keys: ``(inserted, replaced)``."""
        ...

    def read_labels(
        self, deployment: str, *, since_ms: int | None = None, until_ms: int | None = None
    ) -> Any:
        """Labels of a deployment as an Arrow table (``request_id``, ``row``, ``value_num``,
        ``value_text``, ``label_time``), optionally only those with
        ``since_ms <= label_time < until_ms``."""
        ...
