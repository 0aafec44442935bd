"""MLflow-compatible routes: ``/api/2.0/mlflow/...`` and ``/api/2.0/mlflow-artifacts/...``.

The real MLflow client (``MLFLOW_TRACKING_URI=http://<driftline server>``) works
unmodified for tracking, artifacts, logged models and the model registry; what it logs
is driftline's own data (experiments, runs, params, metrics, tags, run artifacts,
registered versions), visible to the driftline SDK and CLI, and the other way round.

Modules, one per part of MLflow's API: ``experiments``, ``runs``, ``logs`` (logging and
metric history), ``artifacts`` (the artifact proxy), ``logged_models`` and ``registry``;
``_wire`` holds MLflow's wire conventions (errors, proto-JSON fields), ``_views`` the
mapping of runs and system tags, ``_filters`` the search strings, ``_records`` the facts
MLflow keeps that driftline has no table for. Each module's docstring says how its
part maps onto driftline and what is refused because driftline has no equivalent.

Routes that are not here (traces, prompts, webhooks, gateway, ...) answer 404 with a
plain-text body, which the MLflow client reads as "not implemented" and falls back from.
The routes are left out of ``/openapi.json``: that documents driftline's own API, and
these follow MLflow's REST reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["MLFLOW_API_VERSION", "install_mlflow_routes"]

# The MLflow REST API level these routes follow (what GET /version answers): the
# tracking, logged-model and registry routes of MLflow 3.
MLFLOW_API_VERSION = "3.0.0"


def install_mlflow_routes(app: FastAPI) -> None:
    """Add the MLflow-compatible routes to ``app``."""
    from starlette.responses import PlainTextResponse

    from driftline.server.mlflow import (
        artifacts,
        experiments,
        logged_models,
        logs,
        registry,
        runs,
    )

    prefix = "/api/2.0/mlflow"
    for module in (experiments, runs, logs, logged_models, registry):
        app.include_router(module.router, prefix=prefix, include_in_schema=False)
    app.include_router(artifacts.tracking_router, prefix=prefix, include_in_schema=False)
    app.include_router(
        artifacts.router, prefix="/api/2.0/mlflow-artifacts", include_in_schema=False
    )

    def version() -> PlainTextResponse:
        return PlainTextResponse(MLFLOW_API_VERSION)

    app.add_api_route("/version", version, methods=["GET"], include_in_schema=False)
