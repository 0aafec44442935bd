"""The composition root: builds the kernel and every declared stage from :class:`Settings`.

This is the only module that knows which backend implements which protocol. The
metadata URL's scheme picks the database (see ``core.metadata.normalize_url``) and the
artifact root's scheme picks the byte store (``core.artifacts.open_byte_store``); an
unknown scheme fails with the list of known ones. The stages come from the stage list
(:mod:`driftline.stages`): each builds its service from the :class:`Kernel` and the
services of the stages it uses, on first use (a command opens the workspace and pays
only for the stages it touches). The composition root also installs
what is process- or database-wide: the audit log's anchors (a commit hook, once per
database) and the stages' model URI resolvers.

Remote mode: a ``uri`` of ``http://`` or ``https://`` names a driftline server. The
services are the same; their stores are the HTTP backends (each stage's ``_http``
module), the content store talks to the server's object API, and there is no local
database (``database`` is ``None``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from driftline.settings import Settings

if TYPE_CHECKING:
    from driftline.api.client import ApiClient
    from driftline.auth import UserAdmin
    from driftline.core.artifacts import ContentStore
    from driftline.core.audit_anchors import AuditAnchors
    from driftline.core.metadata import Database
    from driftline.core.stage import Stage
    from driftline.data import DataService
    from driftline.models import ModelCache
    from driftline.registry import RegistryService
    from driftline.tracking import TrackingService

__all__ = ["Workspace"]

T = TypeVar("T")


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


class Workspace:
    """One driftline workspace: a metadata database, an artifact store, and the services
    of every declared stage.

    A stage's service is built the first time something asks for it (and the services
    of the stages it uses when its ``build`` asks for them), so a command pays only for
    the stages it touches; ``gc`` asks for every stage's service, and :meth:`close`
    closes those that were built.

    Example:
        >>> ws = Workspace.from_settings(Settings.load(uri="sqlite://"))  # doctest: +SKIP
        >>> ws.tracking.create_experiment("churn")                        # doctest: +SKIP
        >>> ws.close()                                                    # doctest: +SKIP
    """

    def __init__(
        self,
        settings: Settings,
        *,
        stages: tuple[Stage[Any], ...],
        database: Database | None,
        content: ContentStore,
        anchors: AuditAnchors | None = None,
        client: ApiClient | None = None,
    ) -> None:
        """Hold the kernel; each stage's service is built on first use (use
        :meth:`from_settings`)."""
        from driftline.core.auditlog import open_audit_log
        from driftline.core.stage import Kernel

        self.settings = settings
        self.stages = stages
        self.database = database
        self.content = content
        self.client = client
        #: The audit log (kernel service): read and verified here by every stage and adapter.
        self.audit = open_audit_log(database=database, client=client, anchors=anchors)
        self._live_runs: set[str] = set()
        self._closed = False
        self._lock = threading.Lock()
        # Re-entrant: building a stage builds the stages it uses first.
        self._build_lock = threading.RLock()
        self._declared = {stage.name: stage for stage in stages}
        # Built services by stage name, in build order (a stage may build to ``None``).
        self._services: dict[str, object] = {}
        # What the stages contribute to each extension point, built on the first ask.
        self._contributions: dict[str, list[Any]] = {}
        self._kernel = Kernel(
            settings=settings,
            content=content,
            database=database,
            client=client,
            anchors=anchors,
            audit=self.audit,
            live_runs=self.live_runs,
            contributions=self.contributions,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        stages: Sequence[str] | None = None,
        **overrides: Any,
    ) -> Workspace:
        """Open (and on first use create) the workspace the settings describe.

        Args:
            settings: The settings; by default loaded with ``overrides``.
            stages: Import paths of the stage descriptors (default: the stage list,
                :data:`driftline.stages.STAGES`).
        """
        from driftline.core.artifacts import ContentStore, open_byte_store
        from driftline.core.audit_anchors import anchor_audit_log
        from driftline.core.metadata import Database, ensure_schema
        from driftline.stages import STAGES, install_resolvers, load_stages, migration_history

        settings = settings or Settings.load(**overrides)
        declared = load_stages(STAGES if stages is None else stages)
        install_resolvers(declared)
        if settings.is_remote:
            return cls._remote(settings, declared)
        _check_uri(settings.uri)
        # The byte store first: a wrong artifact root must not leave a new database behind.
        byte_store = open_byte_store(settings.artifact_root)
        database = Database(settings.uri)
        try:
            ensure_schema(database, migration_history(declared))
            content = ContentStore(byte_store, settings.hash_algorithm)
            return cls(
                settings,
                stages=declared,
                database=database,
                content=content,
                anchors=anchor_audit_log(database, content.backend),
            )
        except BaseException:
            database.dispose()
            raise

    @classmethod
    def _remote(cls, settings: Settings, stages: tuple[Stage[Any], ...]) -> Workspace:
        """The workspace of a driftline server: the same services on HTTP stores."""
        import dataclasses

        from driftline.api.client import ApiClient
        from driftline.core.artifacts import ContentStore
        from driftline.core.artifacts.http import HttpByteStore

        client = ApiClient(settings.uri, token=settings.token)
        try:
            info = client.get_json("info")
            # Content addresses must be computed the way the server names its objects.
            settings = dataclasses.replace(settings, hash_algorithm=str(info["hash_algorithm"]))
            content = ContentStore(HttpByteStore(client), settings.hash_algorithm)
            return cls(settings, stages=stages, database=None, content=content, client=client)
        except BaseException:
            client.close()
            raise

    def service(self, name: str, kind: type[T]) -> T:
        """The service of the stage ``name`` (built on first use); ``kind`` is its type
        (checked).

        Raises:
            NotFoundError: no declared stage has that name.
        """
        from driftline.errors import InvalidArgumentError

        found = self._service(name)
        if not isinstance(found, kind):
            raise InvalidArgumentError(
                f"The {name!r} service is a {type(found).__name__}, not a {kind.__name__}"
            )
        return found

    def _service(self, name: str) -> object:
        """The service of the stage ``name``, building it (and what it uses) if needed."""
        try:
            return self._services[name]
        except KeyError:
            pass
        with self._build_lock:
            if name not in self._services:
                self._build(name)
            return self._services[name]

    def _build(self, name: str) -> None:
        """Build the stage ``name`` (caller holds the build lock); the stages it uses are
        built when its ``build`` asks for them (``Services.get`` comes back here)."""
        from driftline.core.stage import Services
        from driftline.errors import NotFoundError

        stage = self._declared.get(name)
        if stage is None:
            known = ", ".join(self._declared)
            raise NotFoundError(f"No stage {name!r} in this workspace; stages: {known}")
        # `load_stages` checked that a stage uses only stages listed before it: no cycles.
        service = stage.build(self._kernel, Services(self._service, stage.uses))
        self._services[name] = service
        if self._closed and stage.close is not None:
            # Used after close: it gets the state every service got from close (its
            # queues flushed and stopped), rather than a writer thread nothing stops.
            stage.close(service, 10.0)

    def contributions(self, point: str) -> list[Any]:
        """What the declared stages contribute to the extension point ``point`` (their
        ``Stage.extends`` factories, called once with this workspace, in stage order;
        factories returning ``None`` contribute nothing)."""
        from driftline.core.stage import load_object

        found = self._contributions.get(point)
        if found is not None:
            return found
        with self._build_lock:
            found = self._contributions.get(point)
            if found is None:
                made = (
                    load_object(stage.extends[point])(self)
                    for stage in self.stages
                    if point in stage.extends
                )
                found = self._contributions[point] = [c for c in made if c is not None]
        return found

    # The services of the built-in stages, typed (``service(name, kind)`` is the general way).

    @property
    def tracking(self) -> TrackingService:
        """Experiments, runs and run artifacts."""
        return cast("TrackingService", self._service("tracking"))

    @property
    def data(self) -> DataService:
        """Dataset versions."""
        return cast("DataService", self._service("data"))

    @property
    def models(self) -> ModelCache:
        """The model cache (model packages themselves are run artifacts)."""
        return cast("ModelCache", self._service("models"))

    @property
    def registry(self) -> RegistryService:
        """Registered models, versions, aliases, approvals and the audit log."""
        return cast("RegistryService", self._service("registry"))

    @property
    def auth(self) -> UserAdmin:
        """Users, tokens and grants (on the database, or the server's in remote mode)."""
        return cast("UserAdmin", self._service("auth"))

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
            self._close_services(timeout)
        finally:
            if self.database is not None:
                self.database.dispose()
            if self.client is not None:
                self.client.close()

    def _close_services(self, timeout: float | None) -> None:
        """Close the built services in reverse build order (a stage never built holds
        nothing); the first failure is raised after every service had its turn."""
        failure: BaseException | None = None
        with self._build_lock:
            built = list(self._services.items())
        for name, service in reversed(built):
            stage = self._declared[name]
            if stage.close is None:
                continue
            try:
                stage.close(service, timeout)
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
