"""Model registry (models, versions, aliases and their history, evaluations, approvals)
and the hash-chained audit log.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME = sa.String(256)
DIGEST = sa.String(80)


def _model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["name"],
        ["registered_models.name"],
        ondelete="CASCADE",
        name=f"fk_{table}_name_registered_models",
    )


def _version_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
        name=f"fk_{table}_name_model_versions",
    )


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("name", NAME, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_registered_models"),
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("name", NAME, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", "key", name="pk_registered_model_tags"),
        _model_fk("registered_model_tags"),
    )
    op.create_table(
        "model_versions",
        sa.Column("name", NAME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("package_digest", DIGEST, nullable=False),
        sa.Column("flavor", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_model_versions"),
        _model_fk("model_versions"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], ondelete="SET NULL", name="fk_model_versions_run_id_runs"
        ),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "model_aliases",
        sa.Column("name", NAME, nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "alias", name="pk_model_aliases"),
        _model_fk("model_aliases"),
    )
    op.create_table(
        "alias_history",
        sa.Column("name", NAME, nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("previous_version", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "alias", "seq", name="pk_alias_history"),
        _model_fk("alias_history"),
    )
    op.create_table(
        "evaluations",
        sa.Column("evaluation_id", sa.String(32), nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("dataset", sa.String(300), nullable=True),
        sa.Column("target", sa.String(250), nullable=False),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("slices", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("evaluation_id", name="pk_evaluations"),
        _version_fk("evaluations"),
    )
    op.create_index("ix_evaluations_name_version", "evaluations", ["name", "version"])
    op.create_table(
        "approvals",
        sa.Column("name", NAME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", "alias", "actor", name="pk_approvals"),
        _version_fk("approvals"),
    )
    op.create_table(
        "approval_policies",
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("required", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("alias", name="pk_approval_policies"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(512), nullable=False),
        sa.Column("before", sa.Text, nullable=True),
        sa.Column("after", sa.Text, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )


def downgrade() -> None:
    for name in (
        "audit_head",
        "audit_log",
        "approval_policies",
        "approvals",
        "evaluations",
        "alias_history",
        "model_aliases",
        "model_versions",
        "registered_model_tags",
        "registered_models",
    ):
        op.drop_table(name)
