"""Serving: registry models over HTTP (three protocols), the prediction log, batch scoring.

Example:
    >>> # driftline serve churn@champion --port 8080 --workers 2          # the command
    >>> import driftline as dl
    >>> df = dl.serving.predictions("churn", since=datetime(2025, 1, 1))  # doctest: +SKIP
    >>> dl.serving.score("churn@champion", "customers@7", "scores.parquet")  # doctest: +SKIP

- :mod:`~driftline.serving.models`: the records (what is served, how, and what happened).
- :mod:`~driftline.serving.service`: loading, warming and hot-swapping the served model.
- :mod:`~driftline.serving.app`: the ASGI app (``/predict``, MLflow's ``/invocations``,
  Open Inference Protocol v2, ``/metrics``); :mod:`~driftline.serving.runner` runs it
  under uvicorn.
- :mod:`~driftline.serving.predlog`: the prediction log's writer, reader and schema.
- :mod:`~driftline.serving.batch`: batch scoring (``driftline predict``).
- :mod:`~driftline.serving.deployments`: deployment records (``deploy.yaml``, see
  :mod:`~driftline.serving.spec`), their canary rollouts and the checks that drive them
  (:mod:`~driftline.serving.analysis`); :mod:`~driftline.serving.routing` routes
  requests among a deployment's variants in each serving process.

Nothing heavy is imported with this package: the web framework, pandas and pyarrow are
imported by the modules that use them, when they are used.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from driftline.core.lazy import lazy_exports

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from driftline.serving.batch import Progress
    from driftline.serving.deployments import DeploymentService
    from driftline.serving.models import (
        ACTIVE_ROLLOUT_STATES,
        BatchingPolicy,
        CanaryChecks,
        CanaryPolicy,
        Deployment,
        DeploymentSpec,
        LiveMetricCheck,
        ModelTarget,
        Rollout,
        RolloutState,
        ScoringResult,
        ServedVersion,
        ServingOptions,
        ShadowPolicy,
        SwapEvent,
        Variant,
        is_request_id,
    )

__all__ = [
    "ACTIVE_ROLLOUT_STATES",
    "BatchingPolicy",
    "CanaryChecks",
    "CanaryPolicy",
    "Deployment",
    "DeploymentService",
    "DeploymentSpec",
    "LiveMetricCheck",
    "ModelTarget",
    "Rollout",
    "RolloutState",
    "ScoringResult",
    "ServedVersion",
    "ServingOptions",
    "ShadowPolicy",
    "SwapEvent",
    "Variant",
    "deploy",
    "get_deployment",
    "history",
    "is_request_id",
    "list_deployments",
    "prediction_log_root",
    "predictions",
    "score",
    "serve",
    "status",
]

# Imported on first use: the CLI imports this package (for the stage's descriptor) to
# run any command, and `driftline runs list` should not pay for the serving records.
__getattr__ = lazy_exports(
    __name__,
    {
        "DeploymentService": "driftline.serving.deployments",
        **{name: "driftline.serving.models" for name in (
            "ACTIVE_ROLLOUT_STATES",
            "BatchingPolicy",
            "CanaryChecks",
            "CanaryPolicy",
            "Deployment",
            "DeploymentSpec",
            "LiveMetricCheck",
            "ModelTarget",
            "Rollout",
            "RolloutState",
            "ScoringResult",
            "ServedVersion",
            "ServingOptions",
            "ShadowPolicy",
            "SwapEvent",
            "Variant",
            "is_request_id",
        )},
    },
)  # fmt: skip


def _deployments() -> DeploymentService:
    from driftline.core.session import default_workspace
    from driftline.serving.deployments import DeploymentService

    return default_workspace().service("serving", DeploymentService)


def deploy(spec: DeploymentSpec | Mapping[str, Any] | str | Path) -> Deployment:
    """Create or update a deployment from a spec: a ``deploy.yaml`` path, a dict of the
    same structure, or a :class:`DeploymentSpec`.

    Raises:
        InvalidArgumentError: A bad field (named, with its line in a file).
        NotFoundError: The model or a version it names does not exist.
        GateFailedError: The canary fails the spec's quality gates.

    Example:
        >>> dl.serving.deploy({"name": "churn", "model": "churn", "stable": "champion",
        ...                    "canary": {"version": "challenger", "steps": [10, 50]}})
        ... # doctest: +SKIP
    """
    return _deployments().apply(spec)


def get_deployment(name: str) -> Deployment:
    """A deployment record (``NotFoundError`` if there is none)."""
    return _deployments().get_deployment(name)


def history(name: str, *, limit: int | None = 100) -> list[Any]:
    """A deployment's changes (audit entries: apply, step, promote, rollback, ...),
    newest first."""
    return _deployments().history(name, limit=limit)


def list_deployments() -> list[Deployment]:
    """Every deployment, by name."""
    return _deployments().list_deployments()


def status(name: str, *, window: float = 300.0) -> dict[str, Any]:
    """A deployment's state, weights and per-variant figures over the last ``window``
    seconds of its prediction log."""
    return _deployments().status(name, window=window)


def prediction_log_root() -> str:
    """Where the default workspace's prediction log lives (a folder or an fsspec URL)."""
    from driftline.core.session import default_workspace
    from driftline.serving.predlog import prediction_root

    settings = default_workspace().settings
    return prediction_root(settings.home, settings.artifact_root)


def predictions(
    deployment: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    as_arrow: bool = False,
) -> Any:
    """The prediction log of ``deployment`` with ``since <= time < until``, oldest first.

    Args:
        deployment: The deployment's name (``driftline serve churn@champion`` serves the
            deployment ``churn``).
        since: Earliest request time (naive datetimes are UTC).
        until: Requests before this time.
        as_arrow: Return a ``pyarrow.Table`` instead of a pandas DataFrame.

    The columns are described in :mod:`driftline.serving.predlog`.

    Example:
        >>> dl.serving.predictions("churn").groupby("status").size()     # doctest: +SKIP
    """
    from driftline.serving.predlog import read_predictions

    table = read_predictions(prediction_log_root(), deployment, since=since, until=until)
    return table if as_arrow else table.to_pandas()


def score(
    model: str,
    source: str | Path,
    output: str | Path,
    *,
    chunk_rows: int = 50_000,
    experiment: str = "batch-scoring",
    progress: Progress | None = None,
    executor: str = "local",
    max_workers: int | None = None,
) -> ScoringResult:
    """Batch-score a dataset version or a file into Parquet, recorded as a run;
    ``executor="ray"`` scores on Ray Data.

    See :func:`driftline.serving.batch.score`.
    """
    from driftline.serving.batch import score as run

    return run(
        model,
        source,
        output,
        chunk_rows=chunk_rows,
        experiment=experiment,
        progress=progress,
        executor=executor,
        max_workers=max_workers,
    )


def serve(options: ServingOptions, **kwargs: Any) -> None:
    """Serve a model with the default workspace's settings until interrupted.

    Keyword arguments (``host``, ``port``, ``workers``, ``log_level``) go to
    :func:`driftline.serving.runner.serve`.

    Example:
        >>> dl.serving.serve(ServingOptions(target=ModelTarget.parse("churn@champion")),
        ...                  port=8080)                                   # doctest: +SKIP
    """
    from driftline.core.session import default_workspace
    from driftline.serving.runner import serve as run

    run(default_workspace().settings, options, **kwargs)
