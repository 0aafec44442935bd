"""Monitoring tables, declared on the shared metadata registry."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

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

# Ground truth for served requests, keyed like the prediction log (a request may carry
# several rows; ``row_index`` is a row's position in it). A later label replaces the
# earlier one and ``revisions`` counts how often that happened.
monitoring_labels = Table(
    "monitoring_labels",
    metadata,
    Column("deployment", String(256), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("row_index", Integer, primary_key=True),
    Column("value_num", Float(53), nullable=True),
    Column("value_text", Text, nullable=True),
    Column("label_time", BigInteger, nullable=False),
    Column("ingested_at", BigInteger, nullable=False),
    Column("revisions", Integer, nullable=False),
    Index("ix_monitoring_labels_deployment_time", "deployment", "label_time"),
)
