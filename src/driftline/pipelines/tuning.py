"""``dl.tune``: hyperparameter search on Optuna, each trial a nested tracking run.

The study lives beside the workspace's metadata (see :func:`study_storage`), so a search
stopped half way goes on where it stopped when run again with the same ``study_name``,
and several machines sharing a PostgreSQL workspace add trials to one study. Trials are
asked from the study in this process (TPE by default) and run here, one at a time, or
as Ray tasks, as many at once as the cluster has CPUs; either way the driver tells the
study each result, and a trial reports intermediate values through its handle so the
pruner can stop it early.
"""

from __future__ import annotations

import contextvars
import inspect
import math
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from driftline.errors import InvalidArgumentError, UserCodeError
from driftline.pipelines.space import Dimension, check_space

if TYPE_CHECKING:
    from driftline.settings import Settings
    from driftline.tracking import Run
    from driftline.workspace import Workspace

__all__ = ["Trial", "TuneResult", "study_storage", "tune"]

TAG_STUDY = "driftline.tune.study"
TAG_TRIAL = "driftline.tune.trial"
TAG_STATE = "driftline.tune.state"
RUN_ATTR = "driftline.run_id"  # the trial's run, kept on the Optuna trial
# Optuna's tables and its own Alembic version table go in this PostgreSQL schema.
OPTUNA_SCHEMA = "driftline_optuna"
_DIRECTIONS = ("minimize", "maximize")
_worker_studies: dict[tuple[str, str], Any] = {}  # in a Ray worker: loaded studies


@dataclass(frozen=True, slots=True, kw_only=True)
class TuneResult:
    """The best trial of a study (over every session that added trials to it)."""

    study_name: str
    params: dict[str, Any]
    value: float
    run_id: str  # the best trial's tracking run
    trial: int  # the best trial's number in the study
    study_run_id: str  # this search's tracking run (the trials' parent)
    n_trials: int  # finished trials in the study, all sessions
    storage: str  # where the study is kept (no credentials)


class Trial:
    """What the objective gets: the trial's parameters, and a way to report progress.

    Example:
        >>> def objective(params, trial):
        ...     for epoch in range(20):
        ...         loss = train_one_epoch(params["lr"])
        ...         trial.report(loss, epoch)
        ...         if trial.should_prune():
        ...             trial.prune()
        ...     return loss
    """

    def __init__(self, trial: Any, params: Mapping[str, Any], run_id: str, workspace: Workspace):
        self._trial = trial
        self.number: int = trial.number
        self.params: dict[str, Any] = dict(params)
        self.run_id = run_id
        self._workspace = workspace

    def report(self, value: float, step: int) -> None:
        """Record an intermediate value (a validation loss at an epoch) for the pruner;
        it is also logged as the metric ``intermediate_value`` of the trial's run."""
        value = float(value)
        self._trial.report(value, step)
        self._workspace.tracking.log_batch(
            self.run_id, metrics=[("intermediate_value", value, step, None)]
        )

    def should_prune(self) -> bool:
        """Whether the pruner says to stop this trial now (after :meth:`report`)."""
        return bool(self._trial.should_prune())

    def prune(self) -> None:
        """Stop this trial as pruned (raises ``optuna.TrialPruned``)."""
        import optuna

        raise optuna.TrialPruned(f"trial {self.number} pruned")


def study_storage(settings: Settings) -> tuple[str | None, dict[str, Any], str]:
    """``(Optuna storage URL or None for in memory, engine options, where, for people)``.

    Whether Optuna's RDB storage can share driftline's database, checked against
    Optuna 4/5: its tables (``studies``, ``trials``, ``trial_params``, ``trial_values``,
    ``version_info``, ... eleven in all) share no name with driftline's today, and its
    Alembic version table is ``alembic_version`` while driftline's migrations keep theirs
    in ``driftline_schema_version``, so neither would read the other's revision. Still,
    Optuna creates its tables unqualified, so one namespace would be shared with every
    table a future driftline migration adds, and Optuna's migrations (``optuna storage
    upgrade``) would run in driftline's namespace. So:

    - PostgreSQL: the same database, in a schema of its own (``driftline_optuna``)
      reached through ``search_path``: one database to back up and share, no shared
      names. Every client of the workspace sees the same studies.
    - SQLite: a file beside the workspace's (``driftline.db`` -> ``driftline-optuna.db``).
      SQLite has no schemas, and Optuna's sessions do not take the write lock up front
      as driftline's transactions do (``BEGIN IMMEDIATE``): in one file, Optuna's
      read-then-write transactions would fail with "database is locked" against the
      background writer committing the metrics a trial logs.
    - An in-memory workspace: an in-memory study (gone with the process).
    """
    from driftline.core.metadata.engine import normalize_url

    if settings.is_remote:
        raise InvalidArgumentError(
            f"dl.tune keeps its study in the metadata database, and this workspace talks to "
            f"a server ({settings.uri}). Run it with the PostgreSQL URL of the workspace "
            "(DRIFTLINE_URI=postgresql://...), or pass storage= an Optuna storage URL"
        )
    url = normalize_url(settings.uri)
    if url in ("sqlite://", "sqlite:///:memory:"):
        return None, {}, "memory (this workspace is an in-memory database)"
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        beside = path.with_name(f"{path.stem}-optuna{path.suffix or '.db'}")
        # Trials on Ray write intermediate values from several processes at once.
        return f"sqlite:///{beside}", {"connect_args": {"timeout": 30}}, str(beside)
    _create_schema(url)
    options = {"connect_args": {"options": f"-c search_path={OPTUNA_SCHEMA}"}}
    host = url.partition("@")[2] or url.partition("://")[2]
    return url, options, f"schema {OPTUNA_SCHEMA} of {host}"


def _create_schema(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}"))
    finally:
        engine.dispose()


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise InvalidArgumentError(
            "dl.tune runs on Optuna, which is not installed: pip install 'driftline[tune]'"
        ) from exc
    return optuna


def _call(objective: Callable[..., Any], params: dict[str, Any], trial: Trial) -> float:
    """Call the objective with ``(params)`` or ``(params, trial)``; check the value."""
    value = objective(params, trial) if _wants_trial(objective) else objective(params)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidArgumentError(
            f"The objective returned {value!r} ({type(value).__name__}) for trial "
            f"{trial.number}; return a number, the value to minimize or maximize"
        )
    return float(value)


def _wants_trial(objective: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(objective).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in positional)


@dataclass(slots=True)
class _Outcome:
    """What running one trial gave: a value, pruned, or an error."""

    value: float | None = None
    pruned: bool = False
    error: str | None = None
    traceback: str | None = None


def _run_trial(
    objective: Callable[..., Any],
    optuna_trial: Any,
    params: dict[str, Any],
    run: Run,
    workspace: Workspace,
) -> _Outcome:
    """Run the objective with the trial's run active; never raise for user code."""
    import optuna

    from driftline.tracking import ActiveRun

    handle = Trial(optuna_trial, params, run.id, workspace)

    def call() -> float:
        ActiveRun(workspace.tracking, run).activate()
        return _call(objective, params, handle)

    try:
        value = contextvars.copy_context().run(call)
    except optuna.TrialPruned:
        outcome = _Outcome(pruned=True)
    except Exception as exc:
        outcome = _Outcome(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    else:
        outcome = _Outcome(value=value)
    workspace.tracking.flush()  # what the trial logged is in before its run ends
    return outcome


def _trial_in_worker(
    payload: bytes,
    storage: tuple[str, dict[str, Any]],
    study_name: str,
    trial_id: int,
    params: dict[str, Any],
    run: Run,
    settings: Settings,
    paths: list[str],
) -> _Outcome:
    """A Ray task: load the objective and the study, run one trial."""
    for path in reversed(paths):
        if path not in sys.path:
            sys.path.insert(0, path)
    import optuna
    from ray import cloudpickle

    from driftline.pipelines._ray import worker_workspace

    objective, pruner = cloudpickle.loads(payload)
    key = (storage[0], study_name)
    study = _worker_studies.get(key)
    if study is None:  # one storage (one connection pool) per worker and study
        study = _worker_studies[key] = optuna.load_study(
            study_name=study_name,
            storage=optuna.storages.RDBStorage(storage[0], engine_kwargs=storage[1]),
        )
    study.pruner = pruner or optuna.pruners.NopPruner()
    optuna_trial = optuna.trial.Trial(study, trial_id)
    return _run_trial(objective, optuna_trial, params, run, worker_workspace(settings))


def tune(
    objective: Callable[..., float],
    space: Mapping[str, Dimension],
    n_trials: int = 50,
    *,
    direction: str = "minimize",
    executor: str | None = None,
    pruner: Any = None,
    sampler: Any = None,
    seed: int | None = None,
    study_name: str | None = None,
    experiment: str | None = None,
    max_parallel: int | None = None,
    storage: str | None = None,
    workspace: Workspace | None = None,
) -> TuneResult:
    """Search ``space`` for the parameters that minimize (or maximize) ``objective``.

    Args:
        objective: ``objective(params) -> float`` or ``objective(params, trial) -> float``;
            ``trial.report(value, step)`` and ``trial.should_prune()`` let the pruner stop
            a poor trial early. It runs with the trial's run active: ``dl.log_metric``
            inside it logs to the trial.
        space: Parameter name -> ``dl.loguniform``, ``dl.uniform``, ``dl.intrange`` or
            ``dl.choice``.
        n_trials: Trials to run now (a study run again adds this many more).
        direction: ``"minimize"`` or ``"maximize"``.
        executor: ``None`` (here, one trial at a time), ``"ray"`` or ``"ray://HOST:PORT"``
            (trials in parallel as Ray tasks; the objective is sent by value).
        pruner: An Optuna pruner (``optuna.pruners.MedianPruner()``); default: none.
        sampler: An Optuna sampler; default: TPE (seeded with ``seed``).
        seed: Seed of the default sampler, for a repeatable search.
        study_name: The study's name (default: ``tune-<objective name>``). Running with
            the name of an existing study continues it.
        experiment: The experiment of the search's runs (default: the study name).
        max_parallel: Trials at once on Ray (default: the cluster's CPUs).
        storage: An Optuna storage URL, instead of the workspace's database.
        workspace: Where runs are recorded (default: the default workspace).

    Returns:
        The best trial: its ``params``, ``value``, ``run_id`` and number.

    Example:
        >>> best = dl.tune(objective, space={"C": dl.loguniform(1e-3, 10)}, n_trials=50)
        >>> best.params, best.value, best.run_id  # doctest: +SKIP
    """
    dimensions = check_space(space)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials <= 0:
        raise InvalidArgumentError(f"n_trials must be a whole number above 0, not {n_trials!r}")
    if direction not in _DIRECTIONS:
        raise InvalidArgumentError(f"direction is 'minimize' or 'maximize', not {direction!r}")
    if not callable(objective):
        raise InvalidArgumentError(f"objective must be a function, not {objective!r}")
    if executor is not None:
        from driftline.core.ray_cluster import parse_executor

        parse_executor(executor)  # 'ray' or 'ray://...', else a clear error
    optuna = _optuna()
    if workspace is None:
        from driftline.core.session import default_workspace

        workspace = cast("Workspace", default_workspace())
    name = study_name or f"tune-{getattr(objective, '__name__', 'objective')}"
    if storage is None:
        url, engine_kwargs, where = study_storage(workspace.settings)
    else:
        url, engine_kwargs, where = storage, {}, storage.partition("@")[2] or storage
    if executor is not None and url is None:
        raise InvalidArgumentError(
            "Trials on Ray need a study other processes can open; this workspace is an "
            "in-memory database. Use a SQLite file or PostgreSQL, or pass storage="
        )
    rdb = None if url is None else optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    try:
        study = optuna.create_study(
            study_name=name,
            storage=rdb,
            direction=direction,
            sampler=sampler or optuna.samplers.TPESampler(seed=seed),
            pruner=pruner or optuna.pruners.NopPruner(),
            load_if_exists=True,
        )
        if study.direction.name.lower() != direction:
            raise InvalidArgumentError(
                f"Study {name!r} exists and is set to {study.direction.name.lower()}; "
                f"use direction={study.direction.name.lower()!r} or another study_name"
            )
        search = _Search(workspace, study, dimensions, name, experiment or name)
        search.start(n_trials, where, executor)
        try:
            if executor is None:
                search.run_here(objective, n_trials)
            else:
                storage_args = (cast(str, url), engine_kwargs)
                search.run_on_ray(objective, n_trials, executor, storage_args, max_parallel, pruner)
        except BaseException:
            search.end(ok=False)
            raise
        search.end(ok=True)
        return search.result(where)
    finally:
        if rdb is not None:  # the study is stored; release its connections
            rdb.engine.dispose()


class _Search:
    """One call of :func:`tune`: the study, its tracking run, the trials' runs."""

    def __init__(
        self,
        workspace: Workspace,
        study: Any,
        dimensions: Mapping[str, Dimension],
        name: str,
        experiment: str,
    ) -> None:
        self.workspace = workspace
        self.tracking = workspace.tracking
        self.study = study
        self.distributions = {k: d.distribution() for k, d in dimensions.items()}
        self.name = name
        self.experiment = experiment
        self.run: Run | None = None

    def start(self, n_trials: int, where: str, executor: str | None) -> None:
        from driftline.tracking import current_run

        parent = current_run()
        self.run = self.tracking.create_run(
            self.experiment,
            name=self.name,
            tags={TAG_STUDY: self.name},
            parent_id=parent.id if parent else None,
        )
        self.tracking.log_batch(
            self.run.id,
            params={
                "n_trials": n_trials,
                "direction": self.study.direction.name.lower(),
                "sampler": type(self.study.sampler).__name__,
                "pruner": type(self.study.pruner).__name__,
                "executor": executor or "local",
                "storage": where,
            },
        )

    def ask(self) -> tuple[Any, Run]:
        assert self.run is not None
        trial = self.study.ask(self.distributions)
        run = self.tracking.start_child_run(
            self.run.experiment_id,
            parent_id=self.run.id,
            name=f"trial-{trial.number}",
            tags={TAG_STUDY: self.name, TAG_TRIAL: str(trial.number)},
            params={k: _text(v) for k, v in trial.params.items()},
        )
        trial.set_user_attr(RUN_ATTR, run.id)
        return trial, run

    def tell(self, trial: Any, run: Run, outcome: _Outcome) -> None:
        import optuna

        from driftline.core.clock import utcnow
        from driftline.tracking import ArtifactEntry, RunStatus

        if outcome.error is not None:
            state, status = "FAIL", RunStatus.FAILED
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif outcome.pruned:
            state, status = "PRUNED", RunStatus.FINISHED
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            state, status = "COMPLETE", RunStatus.FINISHED
            self.study.tell(trial, outcome.value)
        metrics = [] if outcome.value is None else [("value", outcome.value, 0, None)]
        self.tracking.log_batch(run.id, metrics=metrics, tags={TAG_STATE: state})
        self.tracking.flush()
        entries: list[ArtifactEntry] = []
        if outcome.traceback:  # stored with the run's end, in the same transaction
            blob = self.workspace.content.put_bytes(outcome.traceback.encode())
            entries.append(
                ArtifactEntry(
                    path="traceback.txt", digest=blob.digest, size=blob.size, created_at=utcnow()
                )
            )
        self.tracking.finish_child_run(run.id, status, entries)
        if outcome.error is not None:
            raise UserCodeError(
                f"Trial {trial.number} of study {self.name!r} failed: {outcome.error}. "
                f"The traceback is stored on its run {run.id}; the study keeps the trials "
                "that finished, so running dl.tune again with this study_name goes on"
            )

    def run_here(self, objective: Callable[..., Any], n_trials: int) -> None:
        for _ in range(n_trials):
            trial, run = self.ask()
            self.tell(trial, run, _run_trial(objective, trial, trial.params, run, self.workspace))

    def run_on_ray(
        self,
        objective: Callable[..., Any],
        n_trials: int,
        executor: str,
        storage: tuple[str, dict[str, Any]],
        max_parallel: int | None,
        pruner: Any,
    ) -> None:
        from driftline.core.ray_cluster import connect, parse_executor

        ray = connect(parse_executor(executor))
        try:  # closures by value; module functions by name (workers get our sys.path)
            payload = ray.cloudpickle.dumps((objective, pruner))
        except Exception as exc:
            raise InvalidArgumentError(
                f"The objective cannot be sent to Ray workers: {exc}. Define it at the top "
                "level of a module, and keep what it uses picklable"
            ) from exc
        remote = ray.remote(_trial_in_worker).options(num_cpus=1, max_retries=0)
        parallel = max(1, max_parallel or int(ray.cluster_resources().get("CPU", 1)))
        paths = [p for p in sys.path if p]
        running: dict[Any, tuple[Any, Run]] = {}
        asked = 0
        try:
            while asked < n_trials or running:
                while asked < n_trials and len(running) < parallel:
                    trial, run = self.ask()
                    ref = remote.remote(
                        payload,
                        storage,
                        self.name,
                        trial._trial_id,
                        trial.params,
                        run,
                        self.workspace.settings,
                        paths,
                    )
                    running[ref] = (trial, run)
                    asked += 1
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    trial, run = running.pop(ref)
                    try:
                        outcome: _Outcome = ray.get(ref)
                    except Exception as exc:  # the worker died, or Ray lost the task
                        outcome = _Outcome(
                            error=f"the Ray task failed: {type(exc).__name__}: {exc}",
                            traceback=traceback.format_exc(),
                        )
                    self.tell(trial, run, outcome)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    def end(self, *, ok: bool) -> None:
        from driftline.tracking import RunStatus

        if self.run is None:
            return
        finished = [t for t in self.study.trials if t.state.name == "COMPLETE"]
        if finished and ok:
            best = self.study.best_trial
            self.tracking.log_batch(
                self.run.id,
                metrics=[("best_value", best.value, 0, None)],
                tags={"driftline.tune.best_run": best.user_attrs.get(RUN_ATTR, "")},
            )
        self.tracking.end_run(self.run.id, RunStatus.FINISHED if ok else RunStatus.FAILED)

    def result(self, where: str) -> TuneResult:
        assert self.run is not None
        finished = [t for t in self.study.trials if t.state.name == "COMPLETE"]
        if not finished:
            raise UserCodeError(
                f"No trial of study {self.name!r} finished (all were pruned or failed); "
                "loosen the pruner or check the objective"
            )
        best = self.study.best_trial
        return TuneResult(
            study_name=self.name,
            params=dict(best.params),
            value=float(best.value),
            run_id=str(best.user_attrs.get(RUN_ATTR, "")),
            trial=best.number,
            study_run_id=self.run.id,
            n_trials=len(finished),
            storage=where,
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
