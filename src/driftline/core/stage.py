"""The stage contract: what a stage declares so the workspace can assemble it.

A stage (tracking, data, registry, ...) is a package plus one line in the stage list
(:mod:`driftline.stages`). The package declares one :class:`Stage` in its ``stage``
module; the workspace, ``gc``, the migration runner, the server app and the CLI
iterate over the declared stages instead of naming them:

- ``tables`` and ``migrations``: the modules declaring its tables on the shared
  :data:`~driftline.core.metadata.metadata`, and the package holding its Alembic
  revisions (a branch labelled with the stage's name, see
  :mod:`driftline.core.metadata.migrate`);
- ``build``: its service, from the :class:`Kernel` and the services of the stages it
  ``uses``;
- ``gc_roots``: every stored object digest its records refer to (``gc`` deletes
  whatever no stage names, so a missing root is data loss);
- ``routes`` and ``cli``: import paths of its REST routers and of the function adding
  its commands to the ``driftline`` command, resolved only when the server or the CLI
  is built (the web and CLI frameworks stay out of the stage);
- ``resolvers``: model URI schemes it resolves (``models:/...``), registered by the
  composition root rather than as an import side effect;
- ``api``: the module holding its module-level API (``dl.data.commit``);
- ``close``: releases what its service holds (``close(service, timeout)``);
- ``extends``: what it contributes to another stage's extension points, by point name:
  the import path of a factory ``factory(host) -> contribution | None``. A stage owning
  an extension point names it (a constant in its own package) and asks
  :attr:`Kernel.contributions` for what the stages contribute there, when it needs
  them; so an earlier stage (serving) uses what a later one (monitoring) adds without
  importing it. A factory returning ``None`` contributes nothing (say, a remote
  workspace where the contribution cannot work);
- ``example``: a test hook that stores something through the public API and returns
  the digests it stored; the contract test checks they survive ``gc``.

This module is kernel: it names no stage, and stages see the workspace only through
the :class:`Host` protocol.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from driftline.api.client import ApiClient
    from driftline.core.artifacts import ContentStore
    from driftline.core.audit_anchors import AuditAnchors
    from driftline.core.auditlog import AuditLog
    from driftline.core.metadata import Database
    from driftline.settings import Settings

__all__ = ["Host", "Kernel", "Resolver", "Services", "Stage", "load_object", "no_roots"]

S = TypeVar("S")
T = TypeVar("T")

#: ``resolver(uri, scratch_dir) -> local package folder`` (see ``driftline.models.uri``).
Resolver = Callable[[str, Path], Path]


class Host(Protocol):
    """What a stage sees of the workspace it belongs to (``driftline.workspace.Workspace``)."""

    @property
    def settings(self) -> Settings:
        """The workspace's settings."""
        ...

    @property
    def content(self) -> ContentStore:
        """The content-addressed artifact store."""
        ...

    @property
    def audit(self) -> AuditLog:
        """The audit log (read and verified; stores append in their transactions)."""
        ...

    def service(self, name: str, kind: type[T]) -> T:
        """The service the stage ``name`` built; ``kind`` is its type (checked)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Kernel:
    """What every stage's service is built from.

    Attributes:
        settings: The workspace's settings.
        content: The content-addressed artifact store.
        database: The metadata database; ``None`` in remote mode.
        client: The driftline server's API client in remote mode; else ``None``.
        anchors: Where the audit log's anchors go (local workspaces; see
            :mod:`driftline.core.audit_anchors`), installed once by the composition root.
        audit: The audit log, read and verified through this one service (see
            :mod:`driftline.core.auditlog`); stores append in their own transactions.
        live_runs: Ids of the runs this process keeps alive (they get heartbeats).
        contributions: ``contributions(point)``: what the declared stages contribute to
            the extension point ``point`` (see :attr:`Stage.extends`), built on the first
            ask; a kernel without stages (tests) has none.
    """

    settings: Settings
    content: ContentStore
    database: Database | None
    client: ApiClient | None
    anchors: AuditAnchors | None
    audit: AuditLog
    live_runs: Callable[[], list[str]]
    contributions: Callable[[str], list[Any]] = field(default=lambda _point: [])

    @property
    def is_remote(self) -> bool:
        """Whether the stores are a server's (HTTP) rather than the database's (SQL)."""
        return self.client is not None

    def require_database(self, stage: str) -> Database:
        """The database, for a stage's SQL stores (callers check ``is_remote`` first)."""
        if self.database is None:  # pragma: no cover - a wiring error, not a user error
            raise InvalidArgumentError(f"The {stage} stage needs a metadata database")
        return self.database

    def require_client(self, stage: str) -> ApiClient:
        """The API client, for a stage's HTTP stores."""
        if self.client is None:  # pragma: no cover - a wiring error, not a user error
            raise InvalidArgumentError(f"The {stage} stage needs a server client")
        return self.client


class Services:
    """The services of the stages a stage declared in ``uses``, handed to its ``build``.

    ``lookup(name)`` returns a stage's service, building it if needed (the workspace
    builds on first use), so a stage that needs another's service only in some calls can
    call :meth:`get` then, and a command that never makes those calls never builds it.
    """

    def __init__(self, lookup: Callable[[str], object], allowed: Iterable[str]) -> None:
        self._lookup = lookup
        self._allowed = frozenset(allowed)

    def get(self, name: str, kind: type[T]) -> T:
        """The service of stage ``name`` (which the caller must list in ``uses``)."""
        if name not in self._allowed:
            raise InvalidArgumentError(
                f"A stage asked for the {name!r} service without declaring it in `uses`"
            )
        service = self._lookup(name)
        if not isinstance(service, kind):
            raise InvalidArgumentError(
                f"The {name!r} service is a {type(service).__name__}, not a {kind.__name__}"
            )
        return service


def no_roots(_service: object) -> Iterable[str]:
    """The ``gc_roots`` of a stage that stores no objects."""
    return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage(Generic[S]):
    """One stage's declaration (see the module docstring for each field).

    Example:
        >>> STAGE = Stage(                                                # doctest: +SKIP
        ...     name="data",
        ...     tables=("driftline.data._tables",),
        ...     build=lambda kernel, uses: DataService(...),
        ...     gc_roots=DataService.referenced_digests,
        ...     routes=("driftline.server.routes.data:router",),
        ...     cli="driftline.cli.data:install_commands",
        ...     api="driftline.data",
        ... )
    """

    name: str
    build: Callable[[Kernel, Services], S]
    #: Every stage states its roots, even when it stores no objects (``lambda _: ()``):
    #: forgetting them must be a decision, not an omission.
    gc_roots: Callable[[S], Iterable[str]]
    uses: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    migrations: str | None = None
    routes: tuple[str, ...] = ()
    cli: str | None = None
    resolvers: Mapping[str, Resolver] = field(default_factory=dict)
    api: str | None = None
    close: Callable[[S, float | None], None] | None = None
    example: Callable[[Host, Path], Iterable[str]] | None = None
    extends: Mapping[str, str] = field(default_factory=dict)

    def roots(self, service: object) -> set[str]:
        """The digests this stage's records refer to (``service`` is what it built)."""
        return set(self.gc_roots(service))  # type: ignore[arg-type]


def load_object(path: str) -> Any:
    """The object an import path ``package.module:attribute`` names."""
    module, _, attribute = path.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded
