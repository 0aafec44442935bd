"""Data-version tables, declared on the shared metadata registry."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from driftline.core.metadata.schema import metadata

ID = String(32)
DIGEST = String(80)

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_id", ID, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column(
        "dataset_id",
        ID,
        ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("number", Integer, primary_key=True),
    Column("version_id", DIGEST, nullable=False, index=True),
    Column("parent_number", Integer, nullable=True),
    Column("author", String(256), nullable=False),
    Column("message", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="SET NULL"), nullable=True, index=True),
    Column("file_count", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("tabular", Boolean, nullable=False),
    Column("profile_digest", DIGEST, nullable=True),
    Index("ix_dataset_versions_dataset_id_created_at", "dataset_id", "created_at"),
)

dataset_tags = Table(
    "dataset_tags",
    metadata,
    Column(
        "dataset_id",
        ID,
        ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tag", String(256), primary_key=True),
    Column("number", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column(
        "dataset_id", ID, ForeignKey("datasets.dataset_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("number", Integer, primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "number", "run_id", name="uq_run_inputs_version_run"),
)
