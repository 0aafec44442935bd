"""`driftline trace` / `dl.trace`: a request id in a real prediction log to its lineage."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

import driftline as dl
from driftline.cli.app import build_app
from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.retraining import MAX_TRACE_DAYS, TRACE_DAYS


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


def test_a_client_request_id_is_found_in_the_recent_days(
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


@pytest.mark.parametrize("bad", ["a/b", "x" * 129, "two words", "re\nq", "*", "é"])
def test_a_request_id_serving_would_not_accept_is_refused(lineage_ws: Any, bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="Invalid request id"):
        dl.trace(bad)


@pytest.mark.parametrize("days", [0, -1, MAX_TRACE_DAYS + 1, True, 2.5])
def test_days_out_of_range_are_refused(lineage_ws: Any, days: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=f"from 1 to {MAX_TRACE_DAYS}"):
        dl.trace("req-given-by-client", days=days)


def _log(deployment: str, request_id: str, when: datetime) -> None:
    """One row of ``churn/1`` answering ``request_id`` at ``when`` in the workspace's log."""
    from driftline.serving.predlog import PredictionLog

    log = PredictionLog(dl.serving.prediction_log_root(), deployment)
    log.append((request_id, "churn", 1, "stable", when, "predict", None, [1], 1, 1.0, 200, None))
    log.close()


def _uuid7(when: datetime, n: int) -> str:
    """The ``n``-th UUIDv7 made at ``when`` (what serving generates for a request without
    an id)."""
    ms = int(when.timestamp() * 1000)
    text = f"{ms:012x}7abc8def0123456789{n:02x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@pytest.fixture
def read_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every prediction-log file a trace reads (the walk's reads, recorded)."""
    import importlib

    # By its full name: the package's `lineage` attribute is the function of that name.
    walk = importlib.import_module("driftline.retraining.lineage")
    seen: list[str] = []
    original = walk._read_rows

    def recording(fs: Any, files: list[str], request_id: str) -> Any:
        seen.extend(files)
        return original(fs, files, request_id)

    monkeypatch.setattr(walk, "_read_rows", recording)
    return seen


def _day_of(file: str) -> date:
    return date.fromisoformat(file.split("/date=", 1)[1].split("/", 1)[0])


def test_a_client_id_older_than_the_window_needs_the_window_widened(
    lineage_ws: Any, read_files: list[str]
) -> None:
    now = datetime.now(UTC)
    _log("churn-old", "req-forty-days-old", now - timedelta(days=40))
    _log("churn-old", "req-yesterday", now - timedelta(days=1))
    with pytest.raises(NotFoundError) as missed:
        dl.trace("req-forty-days-old")
    message = str(missed.value)
    first, last = now.date() - timedelta(days=TRACE_DAYS), now.date() + timedelta(days=1)
    assert f"from {first.isoformat()} to {last.isoformat()}" in message
    assert "every deployment" in message
    assert f"--days N (days=N, ?days=N; at most {MAX_TRACE_DAYS})" in message
    # Only the window's folders were read: yesterday's file, not the one of 40 days ago.
    assert read_files
    assert all(first <= _day_of(f) <= last for f in read_files), read_files
    with pytest.raises(NotFoundError, match="deployment 'churn-old'"):
        dl.trace("req-forty-days-old", deployment="churn-old", days=38)
    found = dl.trace("req-forty-days-old", days=41)
    assert [(p.request_id, p.deployment) for p in found.predictions] == [
        ("req-forty-days-old", "churn-old")
    ]
    assert dl.trace("req-yesterday", deployment="churn-old").versions[0].ref == "churn/1"


def test_a_generated_id_is_looked_for_on_its_day_only(
    lineage_ws: Any, read_files: list[str]
) -> None:
    now = datetime.now(UTC)
    made = now - timedelta(days=20)
    on_its_day, elsewhere = _uuid7(made, 1), _uuid7(made, 2)
    _log("churn-v7", on_its_day, made + timedelta(hours=2))  # logged beside its id's day
    # A row of this id 10 days from its day: a scan of every day would find it.
    _log("churn-v7", elsewhere, now - timedelta(days=10))
    assert [p.request_id for p in dl.trace(on_its_day).predictions] == [on_its_day]
    read_files.clear()
    for days in (TRACE_DAYS, MAX_TRACE_DAYS):  # the window is for ids without a day
        with pytest.raises(NotFoundError, match="on its day") as missed:
            dl.trace(elsewhere, days=days)
        assert "no other day is searched" in str(missed.value)
    day = made.date()
    assert read_files  # its day's folder holds the other id's file
    assert {_day_of(f) for f in read_files} <= {
        day - timedelta(days=1),
        day,
        day + timedelta(days=1),
    }


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


def test_the_cli_widens_the_window_with_days(project: dict[str, Any], lineage_ws: Any) -> None:
    _log("churn-cli", "req-cli-twenty-days", datetime.now(UTC) - timedelta(days=20))
    runner = CliRunner()
    app = build_app()
    home = str(project["home"])
    missed = runner.invoke(app, ["--home", home, "trace", "req-cli-twenty-days"])
    assert isinstance(missed.exception, NotFoundError)
    assert "--days N" in str(missed.exception)
    found = runner.invoke(app, ["--home", home, "trace", "req-cli-twenty-days", "--days", "21"])
    assert found.exit_code == 0, found.output
    assert "churn-cli / stable" in found.output
    too_far = runner.invoke(
        app, ["--home", home, "trace", "req-cli-twenty-days", "--days", str(MAX_TRACE_DAYS + 1)]
    )
    assert isinstance(too_far.exception, InvalidArgumentError)
