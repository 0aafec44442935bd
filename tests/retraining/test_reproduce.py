"""`driftline reproduce` / `dl.reproduce`: re-run a version's run at its recorded commit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import driftline as dl
from driftline.cli.app import build_app
from driftline.retraining import MissingLineageError

try:
    from tests.retraining.conftest import git, run_python
except ImportError:  # pragma: no cover - only tests/ on sys.path
    from conftest import git, run_python  # type: ignore[no-redef]


def test_a_clean_script_run_is_rebuilt_from_its_commit_byte_for_byte(
    project: dict[str, Any], lineage_ws: Any
) -> None:
    repo: Path = project["repo"]
    train = repo / "train.py"
    original = train.read_text()
    # The checkout has moved on: the re-run must use the recorded commit, not this.
    train.write_text(original.replace("C = 1.0", "C = 5.0"))
    try:
        report = dl.reproduce("churn/1", repo=repo)
    finally:
        train.write_text(original)
    assert report.entry_point == "command"
    assert report.code == "recorded commit"
    assert report.commit == project["commit"]
    assert report.dirty is False
    assert report.diff is None
    assert report.inputs_recorded == report.inputs_reproduced == ("customers@1",)
    assert [(m.key, m.within) for m in report.metrics] == [("accuracy", True)]
    # skops names its arrays by object ids: sklearn bytes are not comparable, predictions are.
    assert report.model_files_match is None
    assert report.differing_files == ("model.skops",)
    assert report.predictions_match is True
    assert report.param_differences == {}
    assert report.reproduced
    assert report.reproduced_run != report.original_run
    rerun = dl.get_run(report.reproduced_run)
    assert rerun.params["C"] == "1.0"
    assert rerun.code.commit == project["commit"]
    # The temporary worktree is gone.
    assert len(git(repo, "worktree", "list").splitlines()) == 1


def test_a_dirty_run_is_rebuilt_with_its_recorded_diff(
    project: dict[str, Any], lineage_ws: Any
) -> None:
    report = dl.reproduce("churn/2", repo=project["repo"])
    assert report.code == "recorded commit + diff"
    assert report.dirty is True
    assert report.diff is not None
    assert "+C = 0.25" in report.diff
    assert report.inputs_recorded == report.inputs_reproduced == ("customers@2",)
    assert report.predictions_match is True
    assert report.reproduced
    assert any("diff was applied" in note for note in report.notes)


def test_without_its_diff_a_dirty_run_does_not_reproduce_and_the_cli_exits_1(
    project: dict[str, Any],
) -> None:
    runner = CliRunner()
    done = runner.invoke(
        build_app(),
        [
            "--home", str(project["home"]), "reproduce", "churn/2", "--repo",
            str(project["repo"]), "--no-apply-diff", "--json",
        ],
    )  # fmt: skip
    assert done.exit_code == 1, done.output
    body = json.loads(done.output)
    assert body["reproduced"] is False
    assert [(m["key"], m["within"]) for m in body["metrics"]] == [("accuracy", False)]
    assert body["param_differences"] == {"C": ["0.25", "1.0"]}
    assert "+C = 0.25" in body["diff"]


def test_a_pipeline_version_is_rebuilt_by_running_the_pipeline_again(
    project: dict[str, Any], lineage_ws: Any
) -> None:
    report = dl.reproduce("churn_pipe/1", repo=project["repo"])
    assert report.entry_point == "pipeline"
    assert "pipelines run churn_training --module driftline_pipelines --force" in report.command
    assert "C=0.5" in report.command
    assert "dataset=customers@1" in report.command
    assert report.commit == project["commit"]
    assert report.predictions_match is True
    assert report.reproduced
    rerun = dl.get_run(report.reproduced_run)
    assert rerun.tags["driftline.pipeline.step"] == "train"
    assert rerun.id != report.original_run


def test_missing_links_are_named(project: dict[str, Any], lineage_ws: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "pkg"
    dl.models.save_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), folder)
    from_files = dl.register_model(str(folder), "files_only")
    with pytest.raises(MissingLineageError) as no_run:
        dl.reproduce(from_files.ref)
    assert no_run.value.link == "run"

    # This workspace records no command line (capture_environment is off).
    with dl.start_run(experiment="manual") as run:
        dl.models.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "model")
    manual = dl.register_model(f"runs:/{run.id}/model", "manual")
    with pytest.raises(MissingLineageError) as no_entry:
        dl.reproduce(manual.ref)
    assert no_entry.value.link == "entry point"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(MissingLineageError, match="not inside a git repository") as no_repo:
        dl.reproduce("churn/1", repo=elsewhere)
    assert no_repo.value.link == "repository"

    with pytest.raises(dl.InvalidArgumentError):
        dl.reproduce("churn/1", repo=project["repo"], code="tomorrow")
    with pytest.raises(dl.InvalidArgumentError):
        dl.reproduce("churn/1", repo=project["repo"], tolerances={"accuracy": -1})
    with pytest.raises(dl.NotFoundError):
        dl.reproduce("churn/999")


def test_the_report_reads_as_sentences(capsys: pytest.CaptureFixture[str]) -> None:
    from driftline.cli.retraining import _print_report
    from driftline.retraining import MetricComparison, ReproduceReport

    report = ReproduceReport(
        model="churn/2",
        original_run="r1",
        reproduced_run="r2",
        entry_point="command",
        command="python train.py customers@2",
        code="recorded commit",
        commit="0123456789abcdef",
        dirty=True,
        diff="-C = 1.0\n+C = 0.25\n",
        inputs_recorded=("customers@2",),
        inputs_reproduced=("customers@3",),
        metrics=(
            MetricComparison(
                key="accuracy", original=0.98, reproduced=0.99, tolerance=0.001, within=False
            ),
        ),
        model_files_match=None,
        differing_files=("model.skops",),
        predictions_match=False,
        param_differences={"C": ("0.25", "1.0")},
        notes=("The run had uncommitted changes",),
    )
    assert not report.reproduced
    _print_report(report)
    out = capsys.readouterr().out
    for text in (
        "churn/2: run r1 re-run as r2 (command: python train.py customers@2)",
        "code: recorded commit 0123456789ab",
        "param C: recorded '0.25', re-run '1.0'",
        "data: recorded customers@2; re-run read customers@3",
        "model files: not compared (differing bytes: model.skops)",
        "predictions on the input example: DIFFER",
        "+C = 0.25",
        "NOT reproduced",
    ):
        assert text in out, (text, out)


def test_a_pipeline_run_on_its_own_records_no_commit_and_reruns_the_current_checkout(
    project: dict[str, Any], lineage_ws: Any
) -> None:
    # `driftline pipelines run` records no git state: only a tracked run around it does.
    run_python(
        project["repo"], project["home"], "-m", "driftline.cli", "pipelines", "run",
        "churn_training", "--module", "driftline_pipelines", "-p", "C=0.75",
    )  # fmt: skip
    newest = max(v.version for v in dl.registry.list_versions("churn_pipe"))
    lineage = dl.retraining.lineage(f"churn_pipe/{newest}")
    assert lineage.missing == ("code commit",)
    with pytest.raises(MissingLineageError, match="--code current") as missing:
        dl.reproduce(f"churn_pipe/{newest}", repo=project["repo"])
    assert missing.value.link == "code commit"
    report = dl.reproduce(f"churn_pipe/{newest}", repo=project["repo"], code="current")
    assert report.entry_point == "pipeline"
    assert "C=0.75" in report.command
    assert report.code == "current checkout"
    assert report.reproduced
