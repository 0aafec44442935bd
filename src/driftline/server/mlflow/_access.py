"""Looking up what an MLflow request names, and checking the caller may act on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.server import deps
from driftline.server.mlflow._wire import field_str
from driftline.tracking.models import Experiment, Run

if TYPE_CHECKING:
    from driftline.workspace import Workspace

__all__ = [
    "DEFAULT_EXPERIMENT",
    "DEFAULT_EXPERIMENT_ID",
    "allow",
    "experiment_by_id",
    "run_by_id",
    "run_id_of",
]

# MLflow's default experiment has the id "0"; in driftline it is the one named "default".
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT = "default"


def experiment_by_id(
    ws: Workspace, experiment_id: str, *, create_default: bool = False
) -> Experiment:
    """The experiment with this MLflow id (``"0"`` is driftline's ``default`` experiment)."""
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        if create_default:
            return ws.tracking.get_or_create_experiment(DEFAULT_EXPERIMENT)
        found = ws.tracking.experiment_by_name(DEFAULT_EXPERIMENT)
        if found is None:
            raise NotFoundError(f"No experiment with id {experiment_id!r}")
        return found
    return ws.tracking.experiment_by_id(experiment_id)


def run_id_of(fields: object) -> str:
    """The run a message names: ``run_id``, or the older ``run_uuid``."""
    if not isinstance(fields, dict):
        raise InvalidArgumentError("The request body must be a JSON object")
    run_id = field_str(fields, "run_id") or field_str(fields, "run_uuid")
    if not run_id:
        raise InvalidArgumentError("Missing value for required parameter 'run_id'")
    return run_id


def run_by_id(ws: Workspace, run_id: str) -> Run:
    """The run with this id; ``NotFoundError`` (RESOURCE_DOES_NOT_EXIST) otherwise."""
    return ws.tracking.get_run(run_id)


def allow(
    request: Request,
    action: deps.Action,
    *,
    experiment_id: str | None = None,
    experiment_name: str | None = None,
    model: str | None = None,
) -> None:
    """``deps.authorize`` for the experiment with this id (and/or the model named).

    Permissions are granted on experiment names, so an id is resolved to its name, but
    only when the server checks permissions at all (no lookup per request otherwise).
    """
    if getattr(request.app.state, "authorizer", None) is None:
        return
    experiment = experiment_name
    if experiment_id is not None:
        experiment = experiment_by_id(deps.workspace(request), experiment_id).name
    deps.authorize(request, action, experiment=experiment, model=model)
