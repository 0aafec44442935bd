"""Tables of monitors, their evaluations and figures (a time series), alerts and deliveries."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from driftline.core.metadata.schema import metadata

ID = String(32)
NAME = String(128)

monitoring_monitors = Table(
    "monitoring_monitors",
    metadata,
    Column("monitor_id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("deployment", NAME, nullable=False, index=True),
    Column("window_seconds", BigInteger, nullable=False),
    Column("checks", Text, nullable=False),  # JSON list of check names
    Column("channels", Text, nullable=False),  # JSON list of channel specs
    Column("cooldown_seconds", BigInteger, nullable=False),
    Column("reference", Text, nullable=True),
    Column("thresholds", Text, nullable=True),  # JSON object
    Column("created_at", BigInteger, nullable=False),
)

monitoring_evaluations = Table(
    "monitoring_evaluations",
    metadata,
    Column("evaluation_id", ID, primary_key=True),
    Column("monitor", NAME, nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("checks", Text, nullable=False),  # JSON list of check outcomes
    Column("created_at", BigInteger, nullable=False),
    Index("ix_monitoring_evaluations_monitor_created_at", "monitor", "created_at"),
)

# One row per figure: "" is the column of dataset-level figures (a primary key part).
monitoring_figures = Table(
    "monitoring_figures",
    metadata,
    Column("evaluation_id", ID, nullable=False),
    Column("monitor", NAME, nullable=False),
    Column("check_name", String(64), nullable=False),
    Column("column_name", String(512), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("value", Float, nullable=True),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    PrimaryKeyConstraint(
        "evaluation_id", "check_name", "column_name", "metric", name="pk_monitoring_figures"
    ),
    Index(
        "ix_monitoring_figures_series",
        "monitor",
        "check_name",
        "column_name",
        "metric",
        "window_end",
    ),
)

monitoring_alerts = Table(
    "monitoring_alerts",
    metadata,
    Column("alert_id", ID, primary_key=True),
    Column("monitor", NAME, nullable=False),
    Column("deployment", NAME, nullable=False),
    Column("check_name", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("figures", Text, nullable=False),  # JSON object
    Column("evaluation_id", ID, nullable=False),
    Column("created_at", BigInteger, nullable=False, index=True),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("repeats", Integer, nullable=False),
    Index("ix_monitoring_alerts_dedup", "monitor", "check_name", "severity", "created_at"),
)

monitoring_deliveries = Table(
    "monitoring_deliveries",
    metadata,
    Column("alert_id", ID, nullable=False),
    Column("channel", String(2048), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("alert_id", "channel", name="pk_monitoring_deliveries"),
)
