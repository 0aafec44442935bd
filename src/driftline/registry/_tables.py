"""Registry tables, declared on the shared metadata registry."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from driftline.core.metadata.schema import metadata

NAME = String(256)
DIGEST = String(80)

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column(
        "name", NAME, ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column(
        "name", NAME, ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True
    ),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column(
        "run_id",
        String(32),
        ForeignKey("runs.run_id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("package_digest", DIGEST, nullable=False),
    Column("flavor", String(64), nullable=False),
    Column("signature", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("created_by", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "name", NAME, ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True
    ),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column(
        "name", NAME, ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True
    ),
    Column("alias", String(128), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("version", Integer, nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("actor", String(256), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("evaluation_id", String(32), primary_key=True),
    Column("name", NAME, nullable=False),
    Column("version", Integer, nullable=False),
    Column("dataset", String(300), nullable=True),
    Column("target", String(250), nullable=False),
    Column("task", String(32), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("slices", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["name", "version"], ["model_versions.name", "model_versions.version"], ondelete="CASCADE"
    ),
    Index("ix_evaluations_name_version", "name", "version"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("actor", String(256), primary_key=True),
    Column("comment", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["name", "version"], ["model_versions.name", "model_versions.version"], ondelete="CASCADE"
    ),
)

approval_policies = Table(
    "approval_policies",
    metadata,
    Column("alias", String(128), primary_key=True),
    Column("required", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
