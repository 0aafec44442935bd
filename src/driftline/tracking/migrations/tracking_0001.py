"""Tracking: MLflow logged models in a table of their own.

They were JSON records kept with their runs' artifacts; a server reads a record it
finds there into this table on first use (see ``server/mlflow/logged_models``).

Revision ID: tracking_0001
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "tracking_0001"
down_revision = "0004"
branch_labels = ("tracking",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("deleted_at", sa.BigInteger, nullable=True),
        sa.Column("record", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("model_id", name="pk_logged_models"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name="fk_logged_models_run_id_runs",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_logged_models_experiment_id", "logged_models", ["experiment_id"])
    op.create_index("ix_logged_models_run_id", "logged_models", ["run_id"])


def downgrade() -> None:
    op.drop_table("logged_models")
