"""Pipelines: schedules, triggers, their firings and the agent's lease.

Revision ID: pipelines_0001
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pipelines_0001"
down_revision = "0004"
branch_labels = ("pipelines",)
depends_on = None


def _times(*names: str, nullable: bool = False) -> list[sa.Column[int]]:
    return [sa.Column(name, sa.BigInteger, nullable=nullable) for name in names]


def upgrade() -> None:
    op.create_table(
        "pipelines_schedules",
        sa.Column("schedule_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("pipeline", sa.String(256), nullable=False),
        sa.Column("module", sa.Text, nullable=False),
        sa.Column("cron", sa.String(256), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("catchup", sa.String(16), nullable=False),
        *_times("next_due_at"),
        *_times("last_fired_at", nullable=True),
        *_times("created_at", "updated_at"),
        sa.PrimaryKeyConstraint("schedule_id", name="pk_pipelines_schedules"),
        sa.UniqueConstraint("name", name="uq_pipelines_schedules_name"),
    )
    op.create_index("ix_pipelines_schedules_next_due_at", "pipelines_schedules", ["next_due_at"])
    op.create_table(
        "pipelines_triggers",
        sa.Column("trigger_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(256), nullable=True),
        sa.Column("pipeline", sa.String(256), nullable=False),
        sa.Column("module", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("cursor", sa.BigInteger, nullable=True),
        *_times("created_at", "updated_at"),
        sa.PrimaryKeyConstraint("trigger_id", name="pk_pipelines_triggers"),
        sa.UniqueConstraint("name", name="uq_pipelines_triggers_name"),
    )
    op.create_index("ix_pipelines_triggers_source", "pipelines_triggers", ["source"])
    op.create_table(
        "pipelines_firings",
        sa.Column("firing_id", sa.String(32), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("origin_id", sa.String(32), nullable=False),
        sa.Column("origin_name", sa.String(256), nullable=False),
        sa.Column("pipeline", sa.String(256), nullable=False),
        sa.Column("module", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("dedup_key", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("resolved_params", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("agent", sa.String(128), nullable=True),
        *_times("created_at"),
        *_times("started_at", "ended_at", nullable=True),
        sa.PrimaryKeyConstraint("firing_id", name="pk_pipelines_firings"),
        sa.UniqueConstraint(
            "origin_id", "dedup_key", name="uq_pipelines_firings_origin_id_dedup_key"
        ),
    )
    op.create_index(
        "ix_pipelines_firings_status_created_at", "pipelines_firings", ["status", "created_at"]
    )
    op.create_index(
        "ix_pipelines_firings_origin_name_created_at",
        "pipelines_firings",
        ["origin_name", "created_at"],
    )
    op.create_table(
        "pipelines_agent_lease",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        *_times("acquired_at", "renewed_at", "expires_at"),
        sa.PrimaryKeyConstraint("name", name="pk_pipelines_agent_lease"),
    )


def downgrade() -> None:
    for table in (
        "pipelines_agent_lease",
        "pipelines_firings",
        "pipelines_triggers",
        "pipelines_schedules",
    ):
        op.drop_table(table)
