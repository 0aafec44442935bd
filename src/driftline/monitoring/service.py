"""The monitoring rules: fit references once and reuse them, compare data with them.

A fitted reference is a JSON object in the content-addressed store, with a record in the
metadata database naming it and the data it was fitted on (a dataset version id or a file
digest, and the fitting settings). Asking again for the same data with the same settings
reuses the stored object instead of refitting; two names may share one object.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.monitoring._frames import Source, open_source
from driftline.monitoring.drift import compare
from driftline.monitoring.models import DriftReport, DriftThresholds, Reference, StoredReference
from driftline.monitoring.reference import fit, settings_key

if TYPE_CHECKING:
    from driftline.core.artifacts import ContentStore
    from driftline.monitoring._http import HttpMonitorService
    from driftline.monitoring.monitor_store import MonitorStore
    from driftline.monitoring.monitors import MonitorService
    from driftline.monitoring.store import ReferenceStore

__all__ = ["MonitoringService"]


class MonitoringService:
    """Drift references and reports on one workspace's stores.

    ``store`` and ``content`` may be None (no workspace): references are then fitted in
    memory and nothing is stored.

    Example:
        >>> svc = MonitoringService(store, content)                     # doctest: +SKIP
        >>> record, ref = svc.fit_reference("customers@7", name="churn")  # doctest: +SKIP
        >>> svc.drift(ref, batch_df).drifted                            # doctest: +SKIP
    """

    def __init__(
        self,
        store: ReferenceStore | None,
        content: ContentStore | None,
        *,
        monitor_store: MonitorStore | None = None,
        registry: Any = None,
        prediction_root: str | None = None,
        remote_monitors: HttpMonitorService | None = None,
    ) -> None:
        self.store = store
        self.content = content
        self.registry = registry  # the registry stage's service: model lineage
        self._monitors: MonitorService | HttpMonitorService | None = remote_monitors
        if monitor_store is not None and prediction_root is not None:
            from driftline.monitoring.monitors import MonitorService

            self._monitors = MonitorService(self, monitor_store, prediction_root)

    @property
    def monitors(self) -> MonitorService | HttpMonitorService:
        """The workspace's monitors and alerts (see :mod:`driftline.monitoring.monitors`)."""
        if self._monitors is None:
            raise InvalidArgumentError(
                "Monitors need a workspace (a metadata database or a driftline server); "
                "open one with dl.configure(...)"
            )
        return self._monitors

    def training_data(self, model: str, version: int) -> str | None:
        """The dataset version a registered model version was trained on (lineage: the
        first version its run read), or None when none was recorded."""
        if self.registry is None:
            return None
        found = self.registry.get_version(f"{model}/{version}")
        if not found.run_id:
            return None
        inputs = self.registry.data.store.run_inputs(found.run_id)
        return str(inputs[0].ref) if inputs else None

    # -- references -------------------------------------------------------------------

    def fit_reference(
        self, source: Any, *, name: str | None = None, refit: bool = False
    ) -> tuple[StoredReference, Reference]:
        """Fit (or find) the reference of ``source`` and store it under ``name``.

        ``name`` defaults to the dataset version (``customers@7``) or file path.
        """
        store, content = self._stores()
        src = open_source(source)
        if name is None:
            if src.key is None:
                raise InvalidArgumentError(
                    "Name the reference of an in-memory table: fit_reference(df, name='churn')"
                )
            name = src.label
        _check_name(name)
        settings = settings_key()
        if src.key is not None and not refit:
            found = store.find_reference(name)
            if found is not None and (found.source_key, found.settings_key) == (
                src.key,
                settings,
            ):
                return found, self.load(found)
            same = store.find_by_source(src.key, settings)
            if same is not None:
                return self._record(name, same.digest, src, same.rows), self.load(same)
        reference = fit(src)
        data = json.dumps(reference.to_dict(), sort_keys=True, allow_nan=False).encode()
        blob = content.put_bytes(data)
        return self._record(name, blob.digest, src, reference.rows), reference

    def get_reference(self, name: str) -> Reference:
        """The newest reference stored under ``name``.

        Raises:
            NotFoundError: No reference has that name; the message says how to fit one.
        """
        store, _ = self._stores()
        record = store.find_reference(name)
        if record is None:
            raise NotFoundError(
                f"No drift reference named {name!r}; fit one with "
                f"dl.monitoring.fit_reference('customers@7', name={name!r})"
            )
        return self.load(record)

    def list_references(self) -> list[StoredReference]:
        """Every stored reference record, newest first."""
        store, _ = self._stores()
        return store.list_references()

    def load(self, record: StoredReference) -> Reference:
        """Read a stored reference's JSON (verified against its digest)."""
        _, content = self._stores()
        raw = content.read_bytes(record.digest, name=f"drift reference {record.name}")
        return Reference.from_dict(json.loads(raw))

    def referenced_digests(self) -> set[str]:
        """Every stored object the reference records point to (gc roots)."""
        return set() if self.store is None else self.store.referenced_digests()

    # -- drift ------------------------------------------------------------------------

    def drift(
        self,
        reference: Any,
        current: Any,
        *,
        columns: list[str] | None = None,
        thresholds: DriftThresholds | None = None,
    ) -> DriftReport:
        """Compare ``current`` with ``reference`` (see :func:`driftline.monitoring.drift`)."""
        if isinstance(reference, Reference):
            ref, label = reference, reference.source
        else:
            src = open_source(reference)
            if src.key is not None and self.store is not None and _is_version(reference):
                record, ref = self.fit_reference(reference)
                label = record.source
            else:
                ref, label = fit(src, columns=columns), src.label
        cur = open_source(current, columns=columns or list(ref.columns))
        return compare(ref, cur, columns=columns, thresholds=thresholds, reference_label=label)

    # -- internals --------------------------------------------------------------------

    def _stores(self) -> tuple[ReferenceStore, ContentStore]:
        if self.store is None or self.content is None:
            raise InvalidArgumentError(
                "Stored drift references need a local workspace (a metadata database); "
                "pass the reference data itself to drift() instead"
            )
        return self.store, self.content

    def _record(self, name: str, digest: str, src: Source, rows: int) -> StoredReference:
        from driftline.core.clock import now_ms
        from driftline.core.ids import new_id

        store, _ = self._stores()
        record = StoredReference(
            id=new_id(),
            name=name,
            digest=digest,
            source=src.label,
            source_key=src.key,
            settings_key=settings_key(),
            rows=rows,
            created_at=now_ms(),
        )
        return store.add_reference(record)


def _check_name(name: str) -> None:
    if not name or len(name) > 256 or not name.isprintable():
        raise InvalidArgumentError(
            f"A reference name must be 1-256 printable characters, got {name!r}"
        )


def _is_version(data: Any) -> bool:
    from pathlib import Path

    return isinstance(data, str) and not Path(data).exists()
