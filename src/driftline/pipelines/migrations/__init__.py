"""Alembic revisions of the pipelines stage (its own branch, labelled ``pipelines``)."""
