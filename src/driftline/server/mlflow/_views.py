"""How driftline's experiments and runs look to an MLflow client, and back.

Mapping of MLflow's system tags (both directions):

- ``mlflow.runName``, ``mlflow.user`` and ``mlflow.parentRunId`` are fields of a driftline
  run (name, user, parent); they are not stored as tags but shown as tags to MLflow.
- ``mlflow.source.git.commit`` / ``.branch`` are stored as driftline's own
  ``driftline.git.commit`` / ``.branch`` (what ``run.code`` reads) and shown back
  under MLflow's names, so a run logged by either tool shows its commit to both.
- Other ``mlflow.*`` tags (``mlflow.source.name``, ``mlflow.source.type``, notes...) are
  ordinary tags.
- Tags under ``driftline.mlflow.`` are the adapter's bookkeeping and hidden from MLflow.

Metric values of ``get_run`` carry the step and time of each latest value. The ``Run``
record keeps only the value, so they are read from the ``latest_metrics`` table in one
query per page of runs (a history read per metric would cost a query per key).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from driftline.server.mlflow._wire import json_double, ms
from driftline.tracking.models import SYSTEM_TAG_PREFIX, Experiment, Run

if TYPE_CHECKING:
    from driftline.workspace import Workspace

__all__ = [
    "INTERNAL_TAG_PREFIX",
    "TAG_ALIASES",
    "TAG_ATTRIBUTES",
    "experiment_json",
    "latest_points",
    "run_artifact_uri",
    "run_data",
    "run_info",
]

# MLflow tags that are run fields in driftline -> the search attribute of that field.
TAG_ATTRIBUTES = {
    "mlflow.runName": "name",
    "mlflow.user": "user",
    "mlflow.parentRunId": "parent_run_id",
}
# MLflow tag -> the driftline tag that holds the same fact.
TAG_ALIASES = {
    "mlflow.source.git.commit": SYSTEM_TAG_PREFIX + "git.commit",
    "mlflow.source.git.branch": SYSTEM_TAG_PREFIX + "git.branch",
}
_ALIASED = {value: key for key, value in TAG_ALIASES.items()}
INTERNAL_TAG_PREFIX = SYSTEM_TAG_PREFIX + "mlflow."
NOTE_TAG = "mlflow.note.content"

MetricPoints = dict[str, list[tuple[str, float, int, int]]]


def experiment_artifact_uri(experiment_id: str) -> str:
    """Where MLflow thinks an experiment's artifacts live."""
    return f"mlflow-artifacts:/{experiment_id}"


def run_artifact_uri(run: Run) -> str:
    """``mlflow-artifacts:/<experiment>/<run>/artifacts``: uploads come back through the
    artifact routes, which store them as the run's artifacts."""
    return f"mlflow-artifacts:/{run.experiment_id}/{run.id}/artifacts"


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    """An MLflow ``Experiment`` message."""
    tags = dict(experiment.tags)
    if experiment.description and NOTE_TAG not in tags:
        tags[NOTE_TAG] = experiment.description
    return {
        "experiment_id": experiment.id,
        "name": experiment.name,
        "artifact_location": experiment_artifact_uri(experiment.id),
        "lifecycle_stage": experiment.lifecycle_stage.value,
        "last_update_time": ms(experiment.updated_at),
        "creation_time": ms(experiment.created_at),
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }


def run_info(run: Run) -> dict[str, Any]:
    """An MLflow ``RunInfo`` message."""
    info: dict[str, Any] = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": run.experiment_id,
        "user_id": run.user,
        "status": run.status.value,
        "start_time": ms(run.start_time),
        "artifact_uri": run_artifact_uri(run),
        "lifecycle_stage": run.lifecycle_stage.value,
    }
    if run.end_time is not None:
        info["end_time"] = ms(run.end_time)
    return info


def mlflow_tags(run: Run) -> dict[str, str]:
    """A run's tags as MLflow shows them (see the module docstring)."""
    tags = {
        _ALIASED.get(key, key): value
        for key, value in run.tags.items()
        if not key.startswith(INTERNAL_TAG_PREFIX)
    }
    tags["mlflow.runName"] = run.name
    tags["mlflow.user"] = run.user
    if run.parent_id:
        tags["mlflow.parentRunId"] = run.parent_id
    return tags


def run_data(run: Run, points: MetricPoints) -> dict[str, Any]:
    """An MLflow ``RunData`` message: latest metrics with step and time, params, tags."""
    metrics = [
        {"key": key, "value": json_double(value), "timestamp": timestamp, "step": step}
        for key, value, step, timestamp in points.get(run.id, [])
    ]
    return {
        "metrics": metrics,
        "params": [{"key": k, "value": v} for k, v in run.params.items()],
        "tags": [{"key": k, "value": v} for k, v in mlflow_tags(run).items()],
    }


def latest_points(ws: Workspace, runs: Iterable[Run]) -> MetricPoints:
    """``run id -> [(key, value, step, timestamp ms)]`` of each metric's latest value."""
    return {
        run_id: [(p.key, p.value, p.step, ms(p.timestamp) or 0) for p in points]
        for run_id, points in ws.tracking.latest_points(list(runs)).items()
    }
