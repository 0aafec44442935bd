"""Pipelines tables: schedules, triggers, their firings, and the agent's lease.

Declared on the shared metadata registry; created by the ``pipelines`` migration branch
(:mod:`driftline.pipelines.migrations`). Times are epoch milliseconds, parameters and
payloads JSON text.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from driftline.core.metadata.schema import metadata

ID = String(32)
NAME = String(256)

pipelines_schedules = Table(
    "pipelines_schedules",
    metadata,
    Column("schedule_id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("pipeline", NAME, nullable=False),
    Column("module", Text, nullable=False),
    Column("cron", String(256), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("catchup", String(16), nullable=False),
    Column("next_due_at", BigInteger, nullable=False, index=True),
    Column("last_fired_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

pipelines_triggers = Table(
    "pipelines_triggers",
    metadata,
    Column("trigger_id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("source", NAME, nullable=True, index=True),
    Column("pipeline", NAME, nullable=False),
    Column("module", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    # The newest dataset version number a dataset trigger has seen.
    Column("cursor", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

pipelines_firings = Table(
    "pipelines_firings",
    metadata,
    Column("firing_id", ID, primary_key=True),
    Column("origin", String(16), nullable=False),
    Column("origin_id", ID, nullable=False),
    Column("origin_name", NAME, nullable=False),
    Column("pipeline", NAME, nullable=False),
    Column("module", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("dedup_key", String(512), nullable=False),
    Column("status", String(16), nullable=False),
    Column("run_id", ID, nullable=True),
    Column("resolved_params", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("agent", String(128), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    # What makes "a dataset version fires once": one firing per origin and key.
    UniqueConstraint("origin_id", "dedup_key"),
    Index("ix_pipelines_firings_status_created_at", "status", "created_at"),
    Index("ix_pipelines_firings_origin_name_created_at", "origin_name", "created_at"),
)

pipelines_agent_lease = Table(
    "pipelines_agent_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("host", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", BigInteger, nullable=False),
    Column("renewed_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
