"""dl.tune on Optuna: TPE finds the minimum, each trial a nested run, the study kept
beside the workspace (survives a restart), pruning, trials on Ray, bad input refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import driftline as dl
from driftline.errors import InvalidArgumentError, UserCodeError

pytest.importorskip("optuna")


def quadratic(params: dict[str, Any]) -> float:
    dl.log_metric("seen", 1.0)  # the trial's run is active in the objective
    return (params["x"] - 2.0) ** 2 + (0.0 if params["kind"] == "a" else 1.0)


SPACE = {"x": dl.uniform(-5, 5), "kind": dl.choice(["a", "b"])}


def test_tune_finds_the_minimum_and_records_each_trial(ws: Any) -> None:
    best = dl.tune(quadratic, SPACE, n_trials=25, seed=1, study_name="quad")
    assert best.params["kind"] == "a"
    assert abs(best.params["x"] - 2.0) < 1.0
    assert best.value == pytest.approx((best.params["x"] - 2.0) ** 2)
    assert best.n_trials == 25
    # The best trial's run: a nested run of the search's run, with params and value.
    run = ws.tracking.get_run(best.run_id)
    assert run.parent_id == best.study_run_id
    assert float(run.params["x"]) == best.params["x"]
    assert run.metrics["value"] == best.value
    assert run.metrics["seen"] == 1.0
    assert run.tags["driftline.tune.state"] == "COMPLETE"
    trials = ws.tracking.search_runs(filter="tags.`driftline.tune.study` = 'quad'").items
    assert len(trials) == 26  # the search's run and its 25 trials
    parent = ws.tracking.get_run(best.study_run_id)
    assert parent.status.value == "FINISHED"
    assert parent.metrics["best_value"] == best.value
    assert parent.tags["driftline.tune.best_run"] == best.run_id


def test_the_study_survives_a_restart(
    ws: Any, configure_default: Callable[..., Any], tmp_path: Path
) -> None:
    first = dl.tune(quadratic, SPACE, n_trials=3, seed=1, study_name="kept")
    assert first.storage.endswith("driftline-optuna.db")
    reopened = configure_default(async_logging=False)  # a new workspace, as a new process
    assert reopened is not ws
    again = dl.tune(quadratic, SPACE, n_trials=2, seed=2, study_name="kept")
    assert again.n_trials == 5
    assert again.value <= first.value
    # Optuna's tables are in their own file; the workspace's database has none of them.
    workspace_db = Path(ws.settings.uri.removeprefix("sqlite:///"))
    with sqlite3.connect(workspace_db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "trials" not in tables
    assert "alembic_version" not in tables
    assert "driftline_schema_version" in tables
    with sqlite3.connect(workspace_db.with_name("driftline-optuna.db")) as conn:
        (count,) = conn.execute("SELECT count(*) FROM trials").fetchone()
    assert count == 5


def test_pruning_stops_poor_trials(ws: Any) -> None:
    import optuna

    def objective(params: dict[str, Any], trial: dl.pipelines.Trial) -> float:
        value = params["x"]
        for step in range(5):
            trial.report(value, step)
            if trial.should_prune():
                trial.prune()
        return value

    best = dl.tune(
        objective,
        {"x": dl.uniform(0, 1)},
        n_trials=12,
        seed=3,
        study_name="pruned",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )
    runs = ws.tracking.search_runs(filter="tags.`driftline.tune.state` = 'PRUNED'").items
    assert runs, "the median pruner stopped no trial"
    assert all("value" not in r.metrics for r in runs)
    history = ws.tracking.get_metric_history(runs[0].id, "intermediate_value")
    assert history
    assert len(history) < 5
    assert best.n_trials == 12 - len(runs)


def test_a_failing_objective_fails_the_search_naming_the_trial(ws: Any) -> None:
    def broken(params: dict[str, Any]) -> float:
        raise RuntimeError("no data")

    with pytest.raises(UserCodeError, match=r"Trial 0 of study 'broken' failed: RuntimeError"):
        dl.tune(broken, {"x": dl.uniform(0, 1)}, n_trials=3, study_name="broken")
    failed = ws.tracking.search_runs(filter="tags.`driftline.tune.trial` = '0'").items
    assert failed[0].status.value == "FAILED"
    assert [a.path for a in ws.tracking.list_artifacts(failed[0].id)] == ["traceback.txt"]


def test_bad_input_is_refused(ws: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="low must be below high"):
        dl.loguniform(10, 1)
    with pytest.raises(InvalidArgumentError, match="low must be below high"):
        dl.uniform(1, 1)
    with pytest.raises(InvalidArgumentError, match="low must be above 0"):
        dl.loguniform(0, 1)
    with pytest.raises(InvalidArgumentError, match="low must be below high"):
        dl.intrange(5, 2)
    with pytest.raises(InvalidArgumentError, match="non-empty list"):
        dl.choice([])
    with pytest.raises(InvalidArgumentError, match="n_trials must be a whole number above 0"):
        dl.tune(quadratic, SPACE, n_trials=0)
    with pytest.raises(InvalidArgumentError, match=r"use dl\.uniform, dl\.loguniform"):
        dl.tune(quadratic, {"x": (0, 1)}, n_trials=1)  # type: ignore[dict-item]
    with pytest.raises(InvalidArgumentError, match="Not a Ray executor: 'dask'"):
        dl.tune(quadratic, SPACE, n_trials=1, executor="dask")
    with pytest.raises(InvalidArgumentError, match="direction is 'minimize' or 'maximize'"):
        dl.tune(quadratic, SPACE, n_trials=1, direction="up")
    assert ws.tracking.search_runs().items == []  # nothing was started


OBJECTIVE = """
import driftline as dl

def objective(params, trial):
    dl.log_metric("in_worker", 1.0)
    for step in range(3):
        trial.report(params["n"] * 10 + step, step)
    return float((params["n"] - 3) ** 2)
"""


def test_trials_run_on_ray(
    ray_local: Any, ws: Any, write_module: Callable[..., ModuleType]
) -> None:
    module = write_module("objective_ray_tune", OBJECTIVE)
    best = dl.tune(
        module.objective,
        {"n": dl.intrange(0, 6)},
        n_trials=6,
        executor="ray",
        seed=4,
        study_name="on-ray",
        direction="minimize",
    )
    assert best.n_trials == 6
    assert best.value == (best.params["n"] - 3) ** 2
    run = ws.tracking.get_run(best.run_id)
    assert run.metrics["in_worker"] == 1.0
    assert [p.step for p in ws.tracking.get_metric_history(run.id, "intermediate_value")] == [
        0,
        1,
        2,
    ]
    executor = ws.tracking.get_run(best.study_run_id).params["executor"]
    assert executor == "ray"


@pytest.mark.postgres
def test_the_study_shares_the_postgres_database_in_its_own_schema(
    postgres: Any, open_workspace: Callable[..., Any]
) -> None:
    url = postgres.url(postgres.create_database())
    first = dl.tune(
        quadratic, SPACE, n_trials=2, seed=1, study_name="shared", workspace=open_workspace(url)
    )
    assert first.storage.startswith("schema driftline_optuna of ")
    # Another client of the same database continues the same study.
    again = dl.tune(
        quadratic, SPACE, n_trials=2, seed=2, study_name="shared", workspace=open_workspace(url)
    )
    assert again.n_trials == 4
    with postgres.connect(url.rsplit("/", 1)[1]) as conn:
        tables = {
            (schema, name)
            for schema, name in conn.execute(
                "SELECT schemaname, tablename FROM pg_tables "
                "WHERE schemaname IN ('public', 'driftline_optuna')"
            )
        }
        (revision,) = conn.execute(
            "SELECT version_num FROM public.driftline_schema_version"
        ).fetchone()
    # Optuna's tables and its Alembic version table are in its schema only; driftline's
    # migrations still see their own revision.
    assert ("driftline_optuna", "trials") in tables
    assert ("driftline_optuna", "alembic_version") in tables
    assert ("public", "trials") not in tables
    assert ("public", "alembic_version") not in tables
    assert ("public", "runs") in tables
    assert revision
