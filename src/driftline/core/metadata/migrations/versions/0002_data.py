"""Data versions: datasets, versions, immutable tags, run inputs (lineage).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(32)
DIGEST = sa.String(80)


def _fk(
    column: str, table: str, target: str, owner: str, ondelete: str = "CASCADE"
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.{target}"], ondelete=ondelete, name=f"fk_{owner}_{column}_{table}"
    )


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("dataset_id", ID, nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", name="pk_datasets"),
        sa.UniqueConstraint("name", name="uq_datasets_name"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("dataset_id", ID, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("version_id", DIGEST, nullable=False),
        sa.Column("parent_number", sa.Integer, nullable=True),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("file_count", sa.BigInteger, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("tabular", sa.Boolean, nullable=False),
        sa.Column("profile_digest", DIGEST, nullable=True),
        sa.PrimaryKeyConstraint("dataset_id", "number", name="pk_dataset_versions"),
        _fk("dataset_id", "datasets", "dataset_id", "dataset_versions"),
        _fk("run_id", "runs", "run_id", "dataset_versions", ondelete="SET NULL"),
    )
    op.create_index("ix_dataset_versions_version_id", "dataset_versions", ["version_id"])
    op.create_index("ix_dataset_versions_run_id", "dataset_versions", ["run_id"])
    op.create_index(
        "ix_dataset_versions_dataset_id_created_at",
        "dataset_versions",
        ["dataset_id", "created_at"],
    )
    op.create_table(
        "dataset_tags",
        sa.Column("dataset_id", ID, nullable=False),
        sa.Column("tag", sa.String(256), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "tag", name="pk_dataset_tags"),
        _fk("dataset_id", "datasets", "dataset_id", "dataset_tags"),
    )
    op.create_table(
        "run_inputs",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("dataset_id", ID, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "dataset_id", "number", name="pk_run_inputs"),
        sa.UniqueConstraint("dataset_id", "number", "run_id", name="uq_run_inputs_version_run"),
        _fk("run_id", "runs", "run_id", "run_inputs"),
        _fk("dataset_id", "datasets", "dataset_id", "run_inputs"),
    )


def downgrade() -> None:
    for name in ("run_inputs", "dataset_tags", "dataset_versions", "datasets"):
        op.drop_table(name)
