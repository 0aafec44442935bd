"""Monitoring: labels (ground truth) of served requests, keyed by request id and row.

Revision ID: monitoring_0002
Revises: monitoring_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitoring_0002"
down_revision = "monitoring_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_labels",
        sa.Column("deployment", sa.String(256), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("row_index", sa.Integer, nullable=False),
        sa.Column("value_num", sa.Float(53), nullable=True),
        sa.Column("value_text", sa.Text, nullable=True),
        sa.Column("label_time", sa.BigInteger, nullable=False),
        sa.Column("ingested_at", sa.BigInteger, nullable=False),
        sa.Column("revisions", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "deployment", "request_id", "row_index", name="pk_monitoring_labels"
        ),
    )
    op.create_index(
        "ix_monitoring_labels_deployment_time", "monitoring_labels", ["deployment", "label_time"]
    )


def downgrade() -> None:
    op.drop_table("monitoring_labels")
