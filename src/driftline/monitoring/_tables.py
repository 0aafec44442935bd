"""Monitoring tables, declared on the shared metadata registry."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from driftline.core.metadata.schema import metadata

ID = String(32)
DIGEST = String(80)

monitoring_references = Table(
    "monitoring_references",
    metadata,
    Column("reference_id", ID, primary_key=True),
    Column("name", String(256), nullable=False, index=True),
    Column("digest", DIGEST, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_key", DIGEST, nullable=True, index=True),
    Column("settings_key", String(128), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_monitoring_references_name_created_at", "name", "created_at"),
)
