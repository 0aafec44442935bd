"""Retraining: policies (one per model) and retraining cycles.

Revision ID: retraining_0001
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "retraining_0001"
down_revision = "0004"
branch_labels = ("retraining",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retraining_policies",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("triggers_seen", sa.BigInteger, nullable=False),
        sa.Column("alerts_seen_at", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_retraining_policies"),
    )
    op.create_table(
        "retraining_cycles",
        sa.Column("cycle_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("cause_kind", sa.String(32), nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("absorbed", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("rollout", sa.Text, nullable=True),
        sa.Column("report", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("cycle_id", name="pk_retraining_cycles"),
    )
    op.create_index(
        "ix_retraining_cycles_model_created_at", "retraining_cycles", ["model", "created_at"]
    )
    op.create_index("ix_retraining_cycles_model_state", "retraining_cycles", ["model", "state"])


def downgrade() -> None:
    op.drop_table("retraining_cycles")
    op.drop_table("retraining_policies")
