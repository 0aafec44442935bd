"""A tamper-evident, append-only audit log shared by every stage.

Each entry records who did what to which object, with the state before and after, and
is chained to its predecessor: ``hash = sha256(previous hash + canonical entry)``. A
one-row head table holds the newest sequence number and hash, updated in the same
transaction. :func:`verify_audit_log` recomputes the chain and names the first entry
that was edited, inserted or deleted (a deleted newest entry shows against the head).

Entries are appended inside the same transaction as the change they describe
(:func:`append_audit`), so the log and the data never disagree. Concurrent appenders
race for the next sequence number; the loser's transaction fails on the primary key
and is retried by the caller's retry loop.

The chain alone cannot show a cut tail or a wholesale rewrite by someone who can write
the database: :mod:`driftline.core.audit_anchors` keeps anchors outside it, and
:func:`verify_audit_log` checks the log against them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, Integer, String, Table, Text

from driftline.core.audit_anchors import HEAD_NOTE, Anchor
from driftline.core.clock import from_ms, now_ms
from driftline.core.jsonvalues import check_json_value
from driftline.core.metadata.engine import note
from driftline.core.metadata.schema import metadata

__all__ = [
    "AuditEntries",
    "AuditEntry",
    "AuditReport",
    "append_audit",
    "audit_head",
    "audit_head_of",
    "audit_log",
    "iter_audit",
    "verify_audit_log",
]

GENESIS = "0" * 64

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity_type", String(64), nullable=False),
    Column("entity", String(512), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One recorded change."""

    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity: str
    before: Any
    after: Any
    prev_hash: str
    hash: str


class AuditEntries(list[AuditEntry]):
    """Audit entries, newest first, and the entity types the reader was not shown.

    ``omitted`` is empty unless a server left entries of those types out because the
    caller may not read them (a non-admin is not shown who holds which role): a list
    that knows what it lacks, so a client can say so rather than pass it off as all.
    """

    def __init__(self, entries: Iterable[AuditEntry] = (), *, omitted: Iterable[str] = ()) -> None:
        super().__init__(entries)
        self.omitted: tuple[str, ...] = tuple(sorted(omitted))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditReport:
    """The outcome of verifying the chain."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None
    # The newest entry anchored outside the database (0: none; truncation of the
    # newest entries cannot be detected then).
    anchored_seq: int = 0


def _canonical(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# One encoder for every entry: json.dumps would build a new one per call, which is a
# third of the cost of verifying 100,000 entries. Same output as json.dumps(separators=...).
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _digest(prev_hash: str, row: Mapping[str, Any]) -> str:
    body = _ENCODE(
        [
            row["seq"],
            row["at"],
            row["actor"],
            row["action"],
            row["entity_type"],
            row["entity"],
            row["before"],
            row["after"],
        ]
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def append_audit(
    conn: sa.Connection,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity: str,
    before: Any = None,
    after: Any = None,
) -> int:
    """Append an entry in the caller's transaction; return its sequence number."""
    # An entry that could not be read back would break every listing of the log.
    before = check_json_value(before, "The 'before' of an audit entry")
    after = check_json_value(after, "The 'after' of an audit entry")
    head = conn.execute(
        sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
    ).first()
    seq, prev = (1, GENESIS) if head is None else (head.seq + 1, head.hash)
    row = {
        "seq": seq,
        "at": now_ms(),
        "actor": actor,
        "action": action,
        "entity_type": entity_type,
        "entity": entity,
        "before": _canonical(before),
        "after": _canonical(after),
    }
    digest = _digest(prev, row)
    conn.execute(audit_log.insert().values(**row, prev_hash=prev, hash=digest))
    if head is None:
        conn.execute(audit_head.insert().values(id=1, seq=seq, hash=digest))
    else:
        # Compare-and-set on the head: a concurrent appender makes this update miss.
        moved = conn.execute(
            audit_head.update()
            .where(audit_head.c.id == 1, audit_head.c.seq == head.seq)
            .values(seq=seq, hash=digest)
        )
        if moved.rowcount != 1:
            raise sa.exc.IntegrityError("audit head moved", None, Exception("concurrent append"))
    note(conn, HEAD_NOTE, (seq, digest))  # anchored once the transaction commits
    return seq


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=from_ms(row.at),
        actor=row.actor,
        action=row.action,
        entity_type=row.entity_type,
        entity=row.entity,
        before=None if row.before is None else json.loads(row.before),
        after=None if row.after is None else json.loads(row.after),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def iter_audit(
    conn: sa.Connection,
    *,
    entity_type: str | None = None,
    entity_prefix: str | None = None,
    excluding: Collection[str] = (),
    limit: int | None = None,
    newest_first: bool = True,
) -> list[AuditEntry]:
    """Entries, optionally for one kind of entity or entities whose key starts with a
    prefix; entities of the types in ``excluding`` left out."""
    query = sa.select(audit_log)
    if entity_type is not None:
        query = query.where(audit_log.c.entity_type == entity_type)
    if excluding:
        query = query.where(audit_log.c.entity_type.not_in(sorted(excluding)))
    if entity_prefix is not None:
        escaped = entity_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(audit_log.c.entity.like(escaped + "%", escape="\\"))
    query = query.order_by(audit_log.c.seq.desc() if newest_first else audit_log.c.seq)
    if limit is not None:
        query = query.limit(limit)
    return [_entry(row) for row in conn.execute(query)]


def _scan(conn: sa.Connection, batch: int = 20_000) -> Iterator[Any]:
    last = 0
    while True:
        rows = conn.execute(
            sa.select(audit_log)
            .where(audit_log.c.seq > last)
            .order_by(audit_log.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify_audit_log(conn: sa.Connection, anchors: list[Anchor] | None = None) -> AuditReport:
    """Recompute the chain; report the first entry that does not fit.

    ``anchors`` (from :class:`~driftline.core.audit_anchors.AuditAnchors`) are checked
    too: each anchored entry must still be there, with the anchored hash.
    """
    anchors = anchors or []
    report = _verify_chain(conn, {a.seq: a for a in anchors})
    newest = max((a.seq for a in anchors), default=0)
    if report.ok and report.entries < newest:
        anchor = next(a for a in anchors if a.seq == newest)
        return AuditReport(
            ok=False,
            entries=report.entries,
            first_bad_seq=report.entries + 1,
            problem=f"the log ends at entry {report.entries} but entry {newest} was "
            f"anchored at {from_ms(anchor.at):%Y-%m-%d %H:%M:%S} UTC: entries "
            f"{report.entries + 1}-{newest} were deleted",
            anchored_seq=newest,
        )
    return dataclasses.replace(report, anchored_seq=newest)


def _verify_chain(conn: sa.Connection, anchors: Mapping[int, Anchor]) -> AuditReport:
    prev, expected_seq, count = GENESIS, 1, 0
    for row in _scan(conn):
        count += 1
        if row.seq != expected_seq:
            return AuditReport(
                ok=False,
                entries=count,
                first_bad_seq=expected_seq,
                problem=f"entry {expected_seq} is missing (deleted)",
            )
        if row.prev_hash != prev:
            return AuditReport(
                ok=False,
                entries=count,
                first_bad_seq=row.seq,
                problem=f"entry {row.seq} does not follow entry {row.seq - 1} "
                "(an entry was inserted, deleted or rewritten)",
            )
        if _digest(prev, row._mapping) != row.hash:
            return AuditReport(
                ok=False,
                entries=count,
                first_bad_seq=row.seq,
                problem=f"entry {row.seq} was edited after it was written",
            )
        anchor = anchors.get(row.seq)
        if anchor is not None and anchor.hash != row.hash:
            return AuditReport(
                ok=False,
                entries=count,
                first_bad_seq=row.seq,
                problem=f"entry {row.seq} differs from its anchor outside the database "
                "(the log was rewritten)",
            )
        prev, expected_seq = row.hash, expected_seq + 1
    head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).first()
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        return AuditReport(
            ok=False,
            entries=count,
            first_bad_seq=expected_seq,
            problem=f"the log ends at entry {expected_seq - 1} but its head says "
            f"{head.seq}: newest entries were deleted",
        )
    if head is None and count:
        return AuditReport(
            ok=False, entries=count, first_bad_seq=1, problem="the head record is missing"
        )
    return AuditReport(ok=True, entries=count)


def audit_head_of(conn: sa.Connection) -> tuple[int, str] | None:
    """The newest ``(seq, hash)`` the head records, or ``None`` for an empty log."""
    head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).first()
    return None if head is None else (head.seq, head.hash)
