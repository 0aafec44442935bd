"""Alembic migrations of the retraining stage (branch ``retraining``)."""
