"""Alembic revisions of the tracking stage's own branch (after the kernel chain's 0004)."""
