"""Retraining tables (policies and cycles), declared on the shared metadata registry."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from driftline.core.metadata.schema import metadata

# One policy per model; ``triggers_seen`` is bumped by every trigger, which also makes
# the trigger's transaction hold this row's lock (triggers of one model serialize).
retraining_policies = Table(
    "retraining_policies",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("policy", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("triggers_seen", BigInteger, nullable=False),
    # The newest monitoring alert the agent has turned into a trigger (ms).
    Column("alerts_seen_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(256), nullable=False),
)

# A cycle's ``generation`` grows with every transition: a transition is a
# compare-and-set on (state, generation), so two drivers can never both move it.
retraining_cycles = Table(
    "retraining_cycles",
    metadata,
    Column("cycle_id", String(32), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("state", String(32), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("cause_kind", String(32), nullable=False),
    Column("cause", Text, nullable=False),
    Column("absorbed", Integer, nullable=False),
    Column("run_id", String(64), nullable=True),
    Column("version", Integer, nullable=True),
    Column("rollout", Text, nullable=True),
    Column("report", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_retraining_cycles_model_created_at", "model", "created_at"),
    Index("ix_retraining_cycles_model_state", "model", "state"),
)

# What each policy's new_data and schedule triggers have seen: ``key`` names the trigger
# (``new_data:customers``, ``schedule:UTC:0 3 * * 0``), ``value`` is the newest dataset
# version number seen, or the next due time (ms). A trigger moves it by compare-and-set
# in the transaction that asks for the cycle, so each version or due time is looked at
# once (started, absorbed, or skipped by the cooldown or the daily cap, as alerts are).
retraining_cursors = Table(
    "retraining_cursors",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
