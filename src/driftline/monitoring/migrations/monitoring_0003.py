"""Monitoring: monitors, evaluations with their figures (a time series), alerts, deliveries.

Revision ID: monitoring_0003
Revises: monitoring_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitoring_0003"
down_revision = "monitoring_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_monitors",
        sa.Column("monitor_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("window_seconds", sa.BigInteger, nullable=False),
        sa.Column("checks", sa.Text, nullable=False),
        sa.Column("channels", sa.Text, nullable=False),
        sa.Column("cooldown_seconds", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.Text, nullable=True),
        sa.Column("thresholds", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("monitor_id", name="pk_monitoring_monitors"),
        sa.UniqueConstraint("name", name="uq_monitoring_monitors_name"),
    )
    op.create_index("ix_monitoring_monitors_deployment", "monitoring_monitors", ["deployment"])
    op.create_table(
        "monitoring_evaluations",
        sa.Column("evaluation_id", sa.String(32), nullable=False),
        sa.Column("monitor", sa.String(128), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_end", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("checks", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("evaluation_id", name="pk_monitoring_evaluations"),
    )
    op.create_index(
        "ix_monitoring_evaluations_monitor_created_at",
        "monitoring_evaluations",
        ["monitor", "created_at"],
    )
    op.create_table(
        "monitoring_figures",
        sa.Column("evaluation_id", sa.String(32), nullable=False),
        sa.Column("monitor", sa.String(128), nullable=False),
        sa.Column("check_name", sa.String(64), nullable=False),
        sa.Column("column_name", sa.String(512), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_end", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "evaluation_id", "check_name", "column_name", "metric", name="pk_monitoring_figures"
        ),
    )
    op.create_index(
        "ix_monitoring_figures_series",
        "monitoring_figures",
        ["monitor", "check_name", "column_name", "metric", "window_end"],
    )
    op.create_table(
        "monitoring_alerts",
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("monitor", sa.String(128), nullable=False),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("check_name", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("figures", sa.Text, nullable=False),
        sa.Column("evaluation_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
        sa.Column("repeats", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_monitoring_alerts"),
    )
    op.create_index("ix_monitoring_alerts_created_at", "monitoring_alerts", ["created_at"])
    op.create_index(
        "ix_monitoring_alerts_dedup",
        "monitoring_alerts",
        ["monitor", "check_name", "severity", "created_at"],
    )
    op.create_table(
        "monitoring_deliveries",
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(2048), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "channel", name="pk_monitoring_deliveries"),
    )
    op.create_index("ix_monitoring_deliveries_state", "monitoring_deliveries", ["state"])


def downgrade() -> None:
    for table in (
        "monitoring_deliveries",
        "monitoring_alerts",
        "monitoring_figures",
        "monitoring_evaluations",
        "monitoring_monitors",
    ):
        op.drop_table(table)
