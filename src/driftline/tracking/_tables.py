"""Tracking tables (SQLAlchemy Core), declared on the shared metadata registry.

Times are epoch milliseconds (BIGINT). A metric value of NULL stands for NaN: SQLite
cannot store NaN (it turns it into NULL anyway), so both dialects use the same rule.
Infinities are stored as such.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
)

from driftline.core.metadata.schema import metadata

ID = String(32)
KEY = String(250)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", ID, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column(
        "experiment_id",
        ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("heartbeat_at", BigInteger, nullable=True),
    Column("parent_run_id", ID, nullable=True, index=True),
    Index("ix_runs_experiment_id_start_time", "experiment_id", "start_time"),
)


def _run_fk() -> Column[str]:
    return Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True)


params = Table(
    "params",
    metadata,
    _run_fk(),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    # The value as a number when it parses as one, so `params.C > 0.5` compares numbers.
    Column("value_num", Double, nullable=True),
)

tags = Table(
    "tags",
    metadata,
    _run_fk(),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

metrics = Table(
    "metrics",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("key", KEY, nullable=False),
    Column("value", Double, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_run_id_key_step", "run_id", "key", "step"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    _run_fk(),
    Column("key", KEY, primary_key=True),
    Column("value", Double, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    # For `metrics.auc > 0.8`: find the runs by value instead of probing every run.
    Index("ix_latest_metrics_key_value", "key", "value"),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    _run_fk(),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(80), nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# One row per logging batch a client sent with an idempotency key, written in the same
# transaction as the batch: a retried batch whose first attempt committed is recognised
# and acknowledged without writing its points twice. Old receipts are pruned.
batch_receipts = Table(
    "batch_receipts",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False, index=True),
)

# MLflow 3 logged models of runs (the MLflow routes' records): the fields searched and
# ordered on are columns; tags, params, linked metric points and the folder of the
# model's files in its run are the JSON ``record``. A deleted one keeps its row
# (``deleted_at``), so a record an older server kept with its run is not brought back.
logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column("experiment_id", ID, nullable=False, index=True),
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(1024), nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=True),
    Column("record", Text, nullable=False),
)
