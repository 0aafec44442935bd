"""The composition root: builds stores and services from :class:`~driftline.settings.Settings`.

This is the only module that knows which backend implements which protocol. The
metadata URL's scheme picks the database (see ``core.metadata.normalize_url``) and the
artifact root's scheme picks the byte store (``core.artifacts.open_byte_store``); an
unknown scheme fails with the list of known ones.

Remote mode: a ``uri`` of ``http://`` or ``https://`` names a driftline server. The
services are the same; their stores are the HTTP backends (each stage's ``_http``
module), the content store talks to the server's object API, and there is no local
database (``database`` is ``None``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.settings import Settings

if TYPE_CHECKING:
    from driftline.api.client import ApiClient
    from driftline.core.artifacts import ContentStore
    from driftline.core.metadata import Database
    from driftline.data import DataService
    from driftline.data.store import DataStore
    from driftline.registry import RegistryService
    from driftline.registry.store import AuditLog, RegistryStore
    from driftline.tracking import TrackingService
    from driftline.tracking.store import RunArtifactStore, TrackingStore
    from driftline.tracking.writer import BatchWriter

__all__ = ["Workspace"]


def _check_uri(uri: str) -> None:
    """Refuse a workspace URI that names neither a database nor a server, listing both."""
    from driftline.core.metadata import database_schemes
    from driftline.errors import InvalidArgumentError

    scheme, sep, _ = uri.partition("://")
    if not sep or scheme not in database_schemes():
        databases = ", ".join(f"{s}://" for s in database_schemes())
        raise InvalidArgumentError(
            f"Unsupported workspace URI {uri!r}; known: {databases} (a metadata database), "
            "http://, https:// (a driftline server)"
        )


@dataclass(frozen=True, slots=True)
class _Stores:
    """One backend's stores (SQL or HTTP): what the services are built on."""

    tracking: TrackingStore
    artifacts: RunArtifactStore
    data: DataStore
    registry: RegistryStore
    audit: AuditLog


class Workspace:
    """One driftline workspace: a metadata database, an artifact store, and the services.

    Example:
        >>> ws = Workspace.from_settings(Settings.load(uri="sqlite://"))  # doctest: +SKIP
        >>> ws.tracking.create_experiment("churn")                        # doctest: +SKIP
        >>> ws.close()                                                    # doctest: +SKIP
    """

    def __init__(
        self,
        settings: Settings,
        *,
        database: Database | None,
        content: ContentStore,
        tracking: TrackingService,
        data: DataService,
        registry: RegistryService,
        writer: BatchWriter | None,
        client: ApiClient | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.content = content
        self.tracking = tracking
        self.data = data
        self.registry = registry
        self._writer = writer
        self.client = client
        self._live_runs: set[str] = set()
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> Workspace:
        """Open (and on first use create) the workspace the settings describe."""
        from driftline.core.artifacts import ContentStore, open_byte_store
        from driftline.core.audit_anchors import anchor_audit_log
        from driftline.core.metadata import Database, ensure_schema
        from driftline.data._sql import SqlDataStore
        from driftline.registry._sql import SqlAuditLog, SqlRegistryStore
        from driftline.tracking._sql import SqlTrackingStore

        settings = settings or Settings.load(**overrides)
        if settings.is_remote:
            return cls._remote(settings)
        _check_uri(settings.uri)
        # The byte store first: a wrong artifact root must not leave a new database behind.
        byte_store = open_byte_store(settings.artifact_root)
        database = Database(settings.uri)
        try:
            ensure_schema(database)
        except BaseException:
            database.dispose()
            raise
        runs = SqlTrackingStore(database)
        content = ContentStore(byte_store, settings.hash_algorithm)
        return cls._assemble(
            settings,
            _Stores(
                tracking=runs,
                artifacts=runs,
                data=SqlDataStore(database),
                registry=SqlRegistryStore(database),
                audit=SqlAuditLog(database, anchor_audit_log(database, content.backend)),
            ),
            content,
            database=database,
        )

    @classmethod
    def _remote(cls, settings: Settings) -> Workspace:
        """The workspace of a driftline server: the same services on HTTP stores."""
        import dataclasses

        from driftline.api.client import ApiClient
        from driftline.core.artifacts import ContentStore
        from driftline.core.artifacts.http import HttpByteStore
        from driftline.data._http import HttpDataStore
        from driftline.registry._http import HttpAuditLog, HttpRegistryStore
        from driftline.tracking._http import HttpTrackingStore

        client = ApiClient(settings.uri, token=settings.token)
        try:
            info = client.get_json("info")
        except BaseException:
            client.close()
            raise
        # Content addresses must be computed the way the server names its objects.
        settings = dataclasses.replace(settings, hash_algorithm=str(info["hash_algorithm"]))
        runs = HttpTrackingStore(client)
        return cls._assemble(
            settings,
            _Stores(
                tracking=runs,
                artifacts=runs,
                data=HttpDataStore(client),
                registry=HttpRegistryStore(client),
                audit=HttpAuditLog(client),
            ),
            ContentStore(HttpByteStore(client), settings.hash_algorithm),
            client=client,
        )

    @classmethod
    def _assemble(
        cls,
        settings: Settings,
        stores: _Stores,
        content: ContentStore,
        *,
        database: Database | None = None,
        client: ApiClient | None = None,
    ) -> Workspace:
        """Build the services on one backend's stores (the same wiring for every backend)."""
        from driftline.data import DataService
        from driftline.registry import RegistryService
        from driftline.tracking import TrackingService
        from driftline.tracking.writer import BatchWriter

        store = stores.tracking
        workspace: Workspace
        writer = (
            BatchWriter(
                store.write_batch,
                interval=settings.flush_interval,
                heartbeat=lambda: workspace.live_runs(),
            )
            if settings.async_logging
            else None
        )
        tracking = TrackingService(
            store, stores.artifacts, content, writer=writer, user=settings.user
        )
        data = DataService(
            stores.data,
            content,
            stat_cache=settings.home / "cache" / "stat.db",
            user=settings.user,
            run_exists=lambda run_id: store.find_run(run_id) is not None,
        )
        registry = RegistryService(
            stores.registry,
            audit=stores.audit,
            content=content,
            tracking=tracking,
            data=data,
            user=settings.user,
        )
        workspace = cls(
            settings,
            database=database,
            content=content,
            tracking=tracking,
            data=data,
            registry=registry,
            writer=writer,
            client=client,
        )
        return workspace

    @property
    def is_remote(self) -> bool:
        """Whether this workspace is a driftline server's (its stores speak HTTP)."""
        return self.client is not None

    def live_runs(self) -> list[str]:
        """Ids of runs this process has started and not ended (they get heartbeats)."""
        with self._lock:
            return sorted(self._live_runs)

    def mark_live(self, run_id: str, live: bool) -> None:
        """Record that this process started (``True``) or ended (``False``) a run."""
        with self._lock:
            (self._live_runs.add if live else self._live_runs.discard)(run_id)

    def close(self, timeout: float | None = 60.0) -> None:
        """Flush queued logging and release connections (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._writer is not None:
                self._writer.close(timeout)
        finally:
            self.data.close()
            if self.database is not None:
                self.database.dispose()
            if self.client is not None:
                self.client.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
