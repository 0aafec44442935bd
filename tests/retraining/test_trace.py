"""`driftline trace` / `dl.trace`: a request id in a real prediction log to its lineage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

import driftline as dl
from driftline.cli.app import build_app
from driftline.errors import InvalidArgumentError, NotFoundError


def test_a_generated_request_id_leads_to_the_run_code_params_and_data(
    project: dict[str, Any], lineage_ws: Any
) -> None:
    found = dl.trace(project["generated_id"])
    assert [(p.deployment, p.variant, p.model, p.model_version) for p in found.predictions] == [
        ("churn", "stable", "churn", 1)
    ]
    assert found.predictions[0].status == 200
    assert found.predictions[0].n_rows == 2
    assert json.loads(found.predictions[0].inputs or "")["f0"] == [0.1, -1.0]
    assert len(json.loads(found.predictions[0].outputs or "")) == 2
    (lineage,) = found.versions
    version = dl.registry.get_version("churn/1")
    assert lineage.ref == "churn/1"
    assert lineage.package_digest == version.package_digest
    run = lineage.run
    assert run is not None
    assert run.id == version.run_id
    assert run.name == "train"
    assert run.code.commit == project["commit"]
    assert run.code.dirty is False
    assert run.code.branch == "main"
    assert "train.py customers@1" in (run.code.command or "")
    assert run.params == {"C": "1.0", "dataset": "customers@1"}
    assert [i.ref for i in run.inputs] == ["customers@1"]
    assert 0.5 < run.metrics["accuracy"] <= 1.0
    assert run.pipeline is None
    assert lineage.missing == ()
    assert lineage.retraining_cycle is None  # trained by a script, not by a retraining cycle


def test_a_client_request_id_is_found_by_scanning_every_day(
    project: dict[str, Any], lineage_ws: Any
) -> None:
    found = dl.trace(project["client_id"], deployment="churn")
    assert [p.request_id for p in found.predictions] == [project["client_id"]]
    assert found.versions[0].ref == "churn/1"


def test_a_dirty_run_names_its_recorded_diff(project: dict[str, Any], lineage_ws: Any) -> None:
    lineage = dl.retraining.lineage("churn/2")
    assert lineage.run is not None
    code = lineage.run.code
    assert code.commit == project["commit"]
    assert code.dirty is True
    assert code.diff_path == "_driftline/git.diff"
    assert code.from_run == lineage.run.id
    assert lineage.run.params["C"] == "0.25"


def test_a_pipeline_step_inherits_the_code_of_the_run_it_was_started_in(
    project: dict[str, Any], lineage_ws: Any
) -> None:
    lineage = dl.retraining.lineage("churn_pipe/1")
    run = lineage.run
    assert run is not None
    assert run.pipeline is not None
    assert run.pipeline.pipeline == "churn_training"
    assert run.pipeline.step == "train"
    assert run.pipeline.module == "driftline_pipelines"
    assert run.pipeline.params == {"dataset": "customers@1", "C": "0.5"}
    assert run.code.commit == project["commit"]
    assert run.code.from_run != run.id
    assert [i.ref for i in run.inputs] == ["customers@1"]


def test_unknown_and_empty_request_ids_are_typed_errors(lineage_ws: Any) -> None:
    with pytest.raises(NotFoundError, match="No prediction with request id 'nope'"):
        dl.trace("nope")
    with pytest.raises(NotFoundError, match="deployment 'other'"):
        dl.trace("nope", deployment="other")
    with pytest.raises(InvalidArgumentError):
        dl.trace("  ")
    with pytest.raises(InvalidArgumentError, match="Invalid deployment name"):
        dl.trace("nope", deployment="../*")


def test_a_version_registered_from_files_has_no_run_link(lineage_ws: Any, tmp_path: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "pkg"
    dl.models.save_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), folder)
    version = dl.register_model(str(folder), "from_files")
    lineage = dl.retraining.lineage(version.ref)
    assert lineage.run is None
    assert lineage.missing == ("run",)


def test_the_cli_prints_a_tree_and_json(project: dict[str, Any]) -> None:
    runner = CliRunner()
    app = build_app()
    home = str(project["home"])
    shown = runner.invoke(app, ["--home", home, "trace", project["generated_id"]])
    assert shown.exit_code == 0, shown.output
    expected = ("churn / stable", "answered [", "model churn/1", "run train", "C = 1.0")
    for text in (*expected, project["commit"][:12], "customers@1"):
        assert text in shown.output, (text, shown.output)
    as_json = runner.invoke(app, ["--home", home, "trace", project["client_id"], "--json"])
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.output)
    assert body["request_id"] == project["client_id"]
    assert body["versions"][0]["run"]["code"]["commit"] == project["commit"]
    missing = runner.invoke(app, ["--home", home, "trace", "nope"])
    # The entry point prints a typed error as one line; the command raises it.
    assert missing.exit_code != 0
    assert isinstance(missing.exception, NotFoundError)


def test_a_mirrored_request_traces_both_variants(lineage_ws: Any) -> None:
    from datetime import UTC, datetime

    from driftline.serving.predlog import PredictionLog

    log = PredictionLog(dl.serving.prediction_log_root(), "churn-mirrored")
    now = datetime.now(UTC)
    for variant, version in (("stable", 1), ("shadow", 2)):
        log.append(("mirrored-1", "churn", version, variant, now, "predict", None, [1], 1,
                    1.0, 200, None))  # fmt: skip
    log.close()
    found = dl.trace("mirrored-1")
    assert [(p.variant, p.model_version) for p in found.predictions] == [
        ("stable", 1),
        ("shadow", 2),
    ]
    assert [v.ref for v in found.versions] == ["churn/1", "churn/2"]
