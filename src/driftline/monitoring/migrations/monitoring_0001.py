"""Monitoring: fitted drift references (their JSON lives in the artifact store).

Revision ID: monitoring_0001
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitoring_0001"
down_revision = "0004"
branch_labels = ("monitoring",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_references",
        sa.Column("reference_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_key", sa.String(80), nullable=True),
        sa.Column("settings_key", sa.String(128), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("reference_id", name="pk_monitoring_references"),
    )
    op.create_index("ix_monitoring_references_name", "monitoring_references", ["name"])
    op.create_index("ix_monitoring_references_source_key", "monitoring_references", ["source_key"])
    op.create_index(
        "ix_monitoring_references_name_created_at",
        "monitoring_references",
        ["name", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("monitoring_references")
