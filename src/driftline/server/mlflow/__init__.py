"""MLflow-compatible routes: ``/api/2.0/mlflow/...`` and ``/api/2.0/mlflow-artifacts/...``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["install_mlflow_routes"]


def install_mlflow_routes(app: FastAPI) -> None:
    """Add the MLflow-compatible routes to ``app``."""
