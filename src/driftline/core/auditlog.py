"""The audit log as a kernel service: what every stage and adapter reads it through.

The log itself (its tables, the hash chain, :func:`~driftline.core.audit.append_audit`)
is :mod:`driftline.core.audit`. Stores write an entry with ``append_audit`` inside the
transaction of the change it describes, so the log and the data never disagree; every
reader (the registry's model history, ``driftline models audit``, the server's
``/api/v1/audit`` routes) goes through the :class:`AuditLog` the composition root
builds once per workspace (``Workspace.audit``, ``Kernel.audit``): on the database
(:class:`SqlAuditLog`) or, in remote mode, on the server's (:class:`HttpAuditLog`).

This module imports no database driver: the SQL reader imports it on first use.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from driftline.api.client import ApiClient
    from driftline.core.audit import AuditEntries, AuditReport
    from driftline.core.audit_anchors import AuditAnchors
    from driftline.core.metadata import Database

__all__ = ["AuditLog", "HttpAuditLog", "SqlAuditLog", "open_audit_log"]


class AuditLog(Protocol):
    """Reading and verifying the workspace's audit log (stores append to it themselves,
    with :func:`driftline.core.audit.append_audit`, in their own transactions)."""

    def entries(
        self,
        *,
        entity: str | None = None,
        entity_types: Collection[str] | None = None,
        excluding: Collection[str] = (),
        limit: int | None = 100,
    ) -> AuditEntries:
        """Entries, newest first, at most ``limit`` (``None``: all).

        Args:
            entity: Only this entity and its parts: ``churn`` matches ``churn``,
                ``churn/3`` and ``churn@champion``, never ``churn-v2``.
            entity_types: Only entities of these types (``model``, ``alias``, ...).
            excluding: Never entities of these types.
            limit: At most this many entries.

        Returns:
            The entries; their ``omitted`` names the entity types a server left out
            because the caller may not read them (empty on the database).
        """
        ...

    def verify(self) -> AuditReport:
        """Recompute the hash chain (and check the anchors) and report the first entry
        that does not fit."""
        ...


class SqlAuditLog:
    """:class:`AuditLog` on the metadata database, checked against its anchors outside the
    database (when the workspace keeps them)."""

    def __init__(self, db: Database, anchors: AuditAnchors | None = None) -> None:
        self.db = db
        self.anchors = anchors

    def entries(
        self,
        *,
        entity: str | None = None,
        entity_types: Collection[str] | None = None,
        excluding: Collection[str] = (),
        limit: int | None = 100,
    ) -> AuditEntries:
        from driftline.core.audit import AuditEntries, iter_audit

        if entity is None and entity_types is None:
            return AuditEntries(
                self.db.read(lambda conn: iter_audit(conn, excluding=excluding, limit=limit))
            )
        # The prefix narrows in SQL; the pattern then drops other entities sharing the
        # prefix (``churn`` must not match ``churn-v2``).
        found = self.db.read(
            lambda conn: iter_audit(conn, entity_prefix=entity, excluding=excluding)
        )
        own = None if entity is None else re.compile(rf"^{re.escape(entity)}([/@]|$)")
        matching = [
            e
            for e in found
            if (entity_types is None or e.entity_type in entity_types)
            and (own is None or own.match(e.entity))
        ]
        return AuditEntries(matching if limit is None else matching[:limit])

    def verify(self) -> AuditReport:
        from driftline.core.audit import audit_head_of, verify_audit_log

        if self.anchors is None:
            return self.db.read(verify_audit_log)
        anchors = self.anchors.all()

        def verify(conn: object) -> tuple[AuditReport, tuple[int, str] | None]:
            return verify_audit_log(conn, anchors), audit_head_of(conn)  # type: ignore[arg-type]

        report, head = self.db.read(verify)
        if report.ok and head is not None and head[0] > report.anchored_seq:
            # Pin what was just verified: a log that predates anchoring (or whose last
            # anchor write failed) is protected from here on.
            self.anchors.pin(*head)
            report = dataclasses.replace(report, anchored_seq=head[0])
        return report


class HttpAuditLog:
    """:class:`AuditLog` of a driftline server (verified there).

    Args:
        client: The shared client of the server (``Workspace.client``).
    """

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def entries(
        self,
        *,
        entity: str | None = None,
        entity_types: Collection[str] | None = None,
        excluding: Collection[str] = (),
        limit: int | None = 100,
    ) -> AuditEntries:
        from driftline.api.codec import decode
        from driftline.api.registry import restore_non_finite
        from driftline.core.audit import AuditEntries, AuditEntry

        params: dict[str, object] = {}
        if entity is not None:
            params["entity"] = entity
        if entity_types is not None:
            params["entity_type"] = sorted(entity_types)
        if excluding:
            params["exclude_type"] = sorted(excluding)
        if limit is not None:
            params["limit"] = limit
        answer = self.client.get_json("audit", params=params)
        return AuditEntries(
            (
                dataclasses.replace(
                    entry,
                    before=restore_non_finite(entry.before),
                    after=restore_non_finite(entry.after),
                )
                for entry in (decode(AuditEntry, item) for item in answer["entries"])
            ),
            # A server from before the field left nothing out.
            omitted=answer.get("omitted", ()),
        )

    def verify(self) -> AuditReport:
        from driftline.api.codec import decode
        from driftline.core.audit import AuditReport

        return decode(AuditReport, self.client.get_json("audit/verify"))


def open_audit_log(
    *, database: Database | None, client: ApiClient | None, anchors: AuditAnchors | None
) -> AuditLog:
    """The workspace's audit log: the server's in remote mode, else the database's."""
    if client is not None:
        return HttpAuditLog(client)
    if database is None:  # pragma: no cover - a wiring error, not a user error
        raise ValueError("An audit log needs a database or a server client")
    return SqlAuditLog(database, anchors)
