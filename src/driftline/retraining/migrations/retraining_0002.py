"""Retraining: what each policy's new_data and schedule triggers have seen (cursors).

Revision ID: retraining_0002
Revises: retraining_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "retraining_0002"
down_revision = "retraining_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retraining_cursors",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("model", "key", name="pk_retraining_cursors"),
    )


def downgrade() -> None:
    op.drop_table("retraining_cursors")
