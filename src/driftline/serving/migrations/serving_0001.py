"""Serving: deployment records (spec and rollout state).

Revision ID: serving_0001
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "serving_0001"
down_revision = "0004"
branch_labels = ("serving",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_deployments",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("canary_version", sa.Integer, nullable=True),
        sa.Column("shadow_version", sa.Integer, nullable=True),
        sa.Column("failed_checks", sa.Integer, nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=True),
        sa.Column("next_check_at", sa.BigInteger, nullable=True),
        sa.Column("last_check", sa.Text, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_serving_deployments"),
    )
    op.create_index("ix_serving_deployments_model", "serving_deployments", ["model"])


def downgrade() -> None:
    op.drop_table("serving_deployments")
