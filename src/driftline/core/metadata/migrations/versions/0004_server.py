"""Server: idempotency receipts of logging batches; users, tokens and grants.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.String(32)


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"],
        ["auth_users.user_id"],
        ondelete="CASCADE",
        name=f"fk_{table}_user_id_auth_users",
    )


def upgrade() -> None:
    op.create_table(
        "batch_receipts",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_batch_receipts"),
    )
    op.create_index("ix_batch_receipts_created_at", "batch_receipts", ["created_at"])
    op.create_table(
        "auth_users",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_auth_users"),
        sa.UniqueConstraint("name", name="uq_auth_users_name"),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("secret_hash", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("token_id", name="pk_auth_tokens"),
        _user_fk("auth_tokens"),
    )
    op.create_index("ix_auth_tokens_user_id", "auth_tokens", ["user_id"])
    op.create_table(
        "auth_grants",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("resource_kind", sa.String(16), nullable=False),
        sa.Column("resource_name", sa.String(256), nullable=False),
        sa.Column("permission", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "resource_kind", "resource_name", name="pk_auth_grants"),
        _user_fk("auth_grants"),
    )


def downgrade() -> None:
    op.drop_table("auth_grants")
    op.drop_index("ix_auth_tokens_user_id", table_name="auth_tokens")
    op.drop_table("auth_tokens")
    op.drop_table("auth_users")
    op.drop_index("ix_batch_receipts_created_at", table_name="batch_receipts")
    op.drop_table("batch_receipts")
