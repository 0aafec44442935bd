"""Anchors of the audit log outside the database it protects.

The hash chain (:mod:`driftline.core.audit`) shows an entry that was edited, inserted
or deleted in the middle, but whoever can write the database can also cut the newest
entries and point the head back, or rewrite the whole chain, and the chain alone stays
consistent. So the newest ``(seq, hash)`` is also written to the artifact store, where
the database's credentials do not reach: after every transaction that appended to the
log (a commit hook of the database) and after every successful verification.

An anchor is a small JSON object under ``audit/anchors/<seq>``, written once and never
replaced (byte stores do not overwrite a key), and outside the content-addressed keys
that ``gc`` sweeps. Verification then also checks that every anchored entry is still in
the log with the anchored hash, so a cut tail or a rewritten chain is named.

What this proves, and what it cannot:

- Detected: an edited, inserted or deleted entry anywhere; the newest entries deleted
  (and the head moved back) up to the newest anchor; the tables emptied or rewritten
  wholesale, when at least one anchor exists.
- Not detected: entries appended after the newest anchor and then deleted before any
  further anchor was written (the anchor write after each audited commit leaves only a
  failed anchor write, which is logged, as that window); and anyone who can write both
  the database and the artifact store (in an embedded workspace, whoever can write its
  folder). Make the store write-once (e.g. S3 Object Lock on ``audit/``) to close that.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.core.clock import now_ms

if TYPE_CHECKING:
    from driftline.core.artifacts.bytestore import ByteStore
    from driftline.core.metadata import Database

__all__ = ["HEAD_NOTE", "Anchor", "AuditAnchors", "anchor_audit_log"]

log = logging.getLogger(__name__)

FORMAT = "driftline.audit-anchor/1"
PREFIX = "audit/anchors/"
# The transaction note (see driftline.core.metadata.note) that append_audit leaves.
HEAD_NOTE = "audit.head"
_SEQ_DIGITS = 20  # zero-padded, so keys sort by sequence number


@dataclass(frozen=True, slots=True, kw_only=True)
class Anchor:
    """The audit log's newest entry as it was at ``at`` (epoch ms)."""

    seq: int
    hash: str
    at: int


class AuditAnchors:
    """Writes and reads the anchors of one workspace's audit log in its artifact store."""

    def __init__(self, backend: ByteStore) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._anchored = 0  # the newest sequence number this process knows is anchored

    def record(self, seq: int, digest: str) -> None:
        """Anchor entry ``seq`` with hash ``digest``, unless this process anchored a newer
        one already (commits of other threads can finish in any order)."""
        with self._lock:
            if seq > self._anchored:
                self.pin(seq, digest)

    def pin(self, seq: int, digest: str) -> None:
        """Write the anchor of entry ``seq`` (a no-op if the store has it)."""
        from driftline.core.artifacts.content import put_object_bytes

        body = {"format": FORMAT, "seq": seq, "hash": digest, "at": now_ms()}
        data = json.dumps(body, sort_keys=True).encode()
        put_object_bytes(self.backend, f"{PREFIX}{seq:0{_SEQ_DIGITS}d}", data)
        self._anchored = max(self._anchored, seq)

    def on_commit(self, notes: dict[str, Any]) -> None:
        """The database commit hook: anchor the head a committed transaction left."""
        head = notes.get(HEAD_NOTE)
        if head is not None:
            self.record(*head)

    def all(self) -> list[Anchor]:
        """Every anchor, oldest first. An unreadable one is reported as a problem by the
        verifier, so it is returned with an empty hash rather than skipped."""
        anchors = []
        for key in sorted(self.backend.iter_keys(PREFIX)):
            seq_text = key.removeprefix(PREFIX)
            if not seq_text.isdigit():
                continue
            try:
                with self.backend.open_read(key) as stream:
                    body = json.loads(stream.read())
                anchor = Anchor(seq=int(body["seq"]), hash=str(body["hash"]), at=int(body["at"]))
            except (OSError, ValueError, KeyError, TypeError):
                anchor = Anchor(seq=int(seq_text), hash="", at=0)
            anchors.append(anchor)
        return anchors


def anchor_audit_log(database: Database, backend: ByteStore) -> AuditAnchors:
    """Anchor ``database``'s audit log in ``backend`` from now on: every transaction that
    appends to the log is anchored once it commits. Returns the anchors, for verifying."""
    anchors = AuditAnchors(backend)
    database.commit_hooks.append(anchors.on_commit)
    return anchors
