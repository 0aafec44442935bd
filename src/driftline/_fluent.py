"""The module-level API (``dl.start_run``, ``dl.log_metric``, ...) over a default workspace.

The default workspace is opened lazily from :class:`~driftline.settings.Settings` on
first use, or explicitly with :func:`configure`. At interpreter exit, runs still open
are ended (FAILED if the program died of an uncaught exception, FINISHED otherwise)
and the logging queue is drained.
"""

from __future__ import annotations

import atexit
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftline.core.paging import Page
    from driftline.tracking import ActiveRun, ArtifactEntry, Experiment, MetricPoint, Run
    from driftline.workspace import Workspace

from driftline.core.session import set_default_workspace_provider


def _require() -> ActiveRun:
    """The active run. On first call this rebinds itself to tracking's ``require_run``:
    `dl.log_metric` runs it on every call (an import statement costs ~1 µs), and
    importing tracking when driftline is imported would slow every CLI command."""
    global _require
    from driftline.tracking.active import require_run

    _require = require_run
    return require_run()


_lock = threading.RLock()
_default: Workspace | None = None
_started: list[ActiveRun] = []


def configure(**settings: Any) -> Workspace:
    """Open the default workspace with explicit settings (they beat env and config files).

    Example:
        >>> dl.configure(uri="postgresql+psycopg://localhost/ml", artifact_root="s3://ml/dl")
        ... # doctest: +SKIP
    """
    global _default
    from driftline.workspace import Workspace

    with _lock:
        open_runs = [run.id for run in _started if not run.ended]
        if open_runs:
            from driftline.errors import ConflictError

            raise ConflictError(
                f"Cannot reconfigure while run(s) {', '.join(open_runs)} are active: end "
                "them first (leave their `with` blocks or call dl.end_run())"
            )
        if _default is not None:
            _default.close()
        _default = Workspace.from_settings(**settings)
        return _default


def get_workspace() -> Workspace:
    """The default workspace, opened on first use."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                from driftline.workspace import Workspace

                _default = Workspace.from_settings()
    return _default


def log_input(version: Any) -> None:
    """Record that the active run read a dataset version (a ``Version`` or a reference)."""
    run = _require()
    get_workspace().data.log_input(run.id, getattr(version, "record", version))


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
    parent_id: str | None = None,
) -> ActiveRun:
    """Start a run (or resume ``run_id``) and make it the active one.

    A run started while another is active becomes its child. Use it as a context manager:
    an exception inside the block marks the run FAILED.

    Example:
        >>> with dl.start_run(experiment="churn", name="lr") as run:  # doctest: +SKIP
        ...     dl.log_metric("loss", 0.3)
    """
    from driftline.tracking import ActiveRun, current_run
    from driftline.tracking.models import RunStatus

    ws = get_workspace()
    service = ws.tracking
    if run_id is not None:
        run = service.get_run(run_id)
        if run.status is not RunStatus.RUNNING:
            from driftline.errors import ConflictError

            raise ConflictError(f"Run {run_id} is {run.status.value}; only RUNNING runs resume")
    else:
        parent = current_run()
        system_tags: dict[str, str] = {}
        files: dict[str, bytes] = {}
        if ws.settings.capture_environment:
            from driftline.tracking.capture import capture_source

            captured = capture_source()
            system_tags, files = captured.tags, captured.files
        run = service.create_run(
            experiment,
            default_experiment=ws.settings.experiment,
            name=name,
            tags={**system_tags, **(tags or {})},
            parent_id=parent_id or (parent.id if parent else None),
        )
        for path, data in files.items():
            service.log_artifact_bytes(run.id, data, path)
    active = ActiveRun(service, run, on_end=lambda rid: ws.mark_live(rid, False)).activate()
    ws.mark_live(run.id, True)
    with _lock:
        _started[:] = [r for r in _started if not r.ended]
        _started.append(active)
    return active


def end_run(status: str = "FINISHED") -> Run | None:
    """End the active run with ``status`` (FINISHED, FAILED or KILLED)."""
    from driftline.tracking import current_run

    active = current_run()
    if active is None:
        return None
    return active.end(status)


def active_run() -> ActiveRun | None:
    """The active run of this thread or task."""
    from driftline.tracking import current_run

    return current_run()


def log_metric(key: str, value: float, step: int | None = None, *, timestamp: Any = None) -> None:
    """Log a metric value to the active run (queued; returns at once)."""
    _require().log_metric(key, value, step, timestamp=timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log several metric values at one step."""
    _require().log_metrics(metrics, step)


def log_param(key: str, value: Any) -> None:
    """Log a write-once parameter to the active run."""
    _require().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Log several write-once parameters."""
    _require().log_params(params)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    _require().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags on the active run."""
    _require().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> ArtifactEntry:
    """Store a file with the active run."""
    return _require().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> list[ArtifactEntry]:
    """Store every file of a folder with the active run.

    The files keep the folder's name unless ``artifact_path`` says otherwise
    (``""``: at the run's root), so ``driftline artifacts get RUN_ID reports`` fetches
    back what this example stored.

    Example:
        >>> dl.log_artifacts("reports/")  # doctest: +SKIP
    """
    return _require().log_artifacts(local_dir, artifact_path)


def flush(timeout: float | None = 60.0) -> None:
    """Block until everything logged so far is durable in the database."""
    if _default is not None:
        _default.tracking.flush(timeout)


def get_run(run_id: str) -> Run:
    """A run with its params, latest metrics, tags, status, times and code version."""
    flush()
    return get_workspace().tracking.get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[MetricPoint]:
    """Every ``(step, value, timestamp)`` logged for a metric of a run."""
    flush()
    return get_workspace().tracking.get_metric_history(run_id, key)


def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | str | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> Page[Run]:
    """Search runs; the page's ``next_token`` fetches the next page.

    Example:
        >>> dl.search_runs(experiment="churn", filter="metrics.auc > 0.8",
        ...                order_by=["metrics.auc desc"])  # doctest: +SKIP
    """
    flush()
    return get_workspace().tracking.search_runs(
        experiments=experiment,
        filter=filter,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
    )


def create_experiment(
    name: str, description: str | None = None, tags: Mapping[str, str] | None = None
) -> Experiment:
    """Create an experiment."""
    return get_workspace().tracking.create_experiment(name, description=description, tags=tags)


def get_experiment(id_or_name: str) -> Experiment:
    """An experiment by id or name."""
    return get_workspace().tracking.get_experiment(id_or_name)


def register_model(source: str, name: str, *, description: str | None = None) -> Any:
    """Register ``runs:/<run id>/<path>`` as the next version of ``name`` (see ``dl.registry``)."""
    from driftline.registry import register_model as register

    return register(source, name, description=description)


def evaluate(model: str, *, data: Any, target: str, slices: Sequence[str] = ()) -> Any:
    """Evaluate ``models:/name/3`` on a dataset ref, file or DataFrame; stored on the version."""
    from driftline.registry import evaluate as run

    return run(model, data=data, target=target, slices=slices)


def compare_models(models: Sequence[str], *, data: Any, target: str, rounds: int = 500) -> Any:
    """Compare models on identical rows with bootstrap confidence intervals."""
    from driftline.registry import compare_models as run

    return run(models, data=data, target=target, rounds=rounds)


def autolog(
    *,
    disable: bool = False,
    log_models: bool = True,
    log_input_examples: bool = True,
    log_training_metrics: bool = True,
) -> None:
    """Log params, training metrics and the model of scikit-learn, LightGBM and XGBoost
    fits automatically (a fit outside a run starts one)."""
    from driftline.models import autolog as enable

    enable(
        disable=disable,
        log_models=log_models,
        log_input_examples=log_input_examples,
        log_training_metrics=log_training_metrics,
    )


def _at_exit() -> None:
    """End runs left open and drain the queue before the interpreter goes away."""
    global _default
    if _default is None:
        return
    crashed = getattr(sys, "last_value", None) is not None
    with _lock:
        open_runs = [run for run in _started if not run.ended]
        _started.clear()
    for run in reversed(open_runs):
        try:
            run.end("FAILED" if crashed else "FINISHED")
        except Exception as exc:  # the interpreter is exiting: report, never raise
            print(f"driftline: could not end run {run.id}: {exc}", file=sys.stderr)
    try:
        _default.close(timeout=30)
    except Exception as exc:
        print(f"driftline: logged data may not be saved: {exc}", file=sys.stderr)
    _default = None


set_default_workspace_provider(get_workspace)
atexit.register(_at_exit)
