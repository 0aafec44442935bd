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

Nothing heavy is imported with this package: the web framework, pandas and pyarrow are
imported by the modules that use them, when they are used.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from driftline.core.lazy import lazy_exports

if TYPE_CHECKING:
    from pathlib import Path

    from driftline.serving.batch import Progress
    from driftline.serving.models import (
        BatchingPolicy,
        ModelTarget,
        ScoringResult,
        ServedVersion,
        ServingOptions,
        SwapEvent,
        Variant,
    )

__all__ = [
    "BatchingPolicy",
    "ModelTarget",
    "ScoringResult",
    "ServedVersion",
    "ServingOptions",
    "SwapEvent",
    "Variant",
    "prediction_log_root",
    "predictions",
    "score",
    "serve",
]

# Imported on first use: the CLI imports this package (for the stage's descriptor) to
# run any command, and `driftline runs list` should not pay for the serving records.
__getattr__ = lazy_exports(
    __name__,
    {
        name: "driftline.serving.models"
        for name in (
            "BatchingPolicy",
            "ModelTarget",
            "ScoringResult",
            "ServedVersion",
            "ServingOptions",
            "SwapEvent",
            "Variant",
        )
    },
)


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
) -> ScoringResult:
    """Batch-score a dataset version or a file into Parquet, recorded as a run.

    See :func:`driftline.serving.batch.score`.
    """
    from driftline.serving.batch import score as run

    return run(
        model, source, output, chunk_rows=chunk_rows, experiment=experiment, progress=progress
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
