"""Serving tables, declared on the shared metadata registry.

``serving_deployments``: one row per deployment, its spec (JSON) and its rollout state.
``generation`` grows with every change; writers compare-and-set on it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text

from driftline.core.metadata.schema import metadata

serving_deployments = Table(
    "serving_deployments",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("model", String(256), nullable=False, index=True),
    Column("spec", Text, nullable=False),
    Column("state", String(32), nullable=False),
    Column("step", Integer, nullable=False),
    Column("canary_version", Integer, nullable=True),
    Column("shadow_version", Integer, nullable=True),
    Column("failed_checks", Integer, nullable=False),
    Column("window_start", BigInteger, nullable=True),
    Column("next_check_at", BigInteger, nullable=True),
    Column("last_check", Text, nullable=True),
    Column("message", Text, nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(256), nullable=False),
)
