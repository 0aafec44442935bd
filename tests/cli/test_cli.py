"""The `driftline` command as a user drives it: output, --json and exit codes.

Each scenario is also covered through the Python API in tests/tracking; here we check
what the CLI adds: rendering, JSON for scripts, one-line errors and exit status.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import driftline as dl

if TYPE_CHECKING:
    from conftest import Cli  # the runner fixture's type (tests/cli/conftest.py)


@pytest.fixture(params=["embedded", pytest.param("http", marks=pytest.mark.server)])
def backend_env(
    request: pytest.FixtureRequest, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Run the test embedded, and again with DRIFTLINE_URI pointing at a live server."""
    if request.param == "http":
        server = request.getfixturevalue("live_server")
        server.reset()
        monkeypatch.setenv("DRIFTLINE_URI", server.url)
    return str(request.param)


@pytest.fixture
def logged_runs(workdir: Path, backend_env: str) -> list[str]:
    """Two finished runs in experiment 'churn', logged through the API."""
    ids = []
    dl.configure(capture_environment=False)
    for name, c, auc in (("lr-small", 0.1, 0.81), ("lr-big", 10.0, 0.93)):
        with dl.start_run(experiment="churn", name=name) as run:
            dl.log_params({"C": c, "penalty": "l2"})
            dl.log_metric("auc", auc)
            dl.log_metric("loss", float("nan"))
            report = workdir / "report.txt"
            report.write_text(f"report of {name}\n")
            dl.log_artifact(report, artifact_path="reports")
        ids.append(run.id)
    dl.flush()
    return ids


def test_runs_list_and_show_render_what_was_logged(logged_runs: list[str], cli: Cli) -> None:
    code, out, _ = cli("runs", "list", "-e", "churn")
    assert code == 0
    assert "lr-small" in out
    assert "lr-big" in out
    assert logged_runs[0] in out  # full ids are never folded in piped output

    code, out, _ = cli("runs", "show", logged_runs[1])
    assert code == 0
    assert "lr-big" in out
    assert "0.93" in out
    assert "NaN" in out
    assert "reports/report.txt" in out


def test_runs_search_json_applies_the_filter_and_order(logged_runs: list[str], cli: Cli) -> None:
    data = cli.json(
        "runs",
        "search",
        "-e",
        "churn",
        "-f",
        "metrics.auc > 0.5 and params.C >= 1",
        "-o",
        "metrics.auc desc",
    )
    assert [r["name"] for r in data["runs"]] == ["lr-big"]
    assert data["runs"][0]["metrics"]["loss"] == "NaN"  # JSON has no NaN literal
    ranked = cli.json("runs", "search", "-o", "metrics.auc asc")
    assert [r["name"] for r in ranked["runs"]] == ["lr-small", "lr-big"]


def test_runs_compare_highlights_both_runs(logged_runs: list[str], cli: Cli) -> None:
    data = cli.json("runs", "compare", *logged_runs)
    assert data["params"]["C"] == ["0.1", "10.0"]
    assert data["metrics"]["auc"] == [0.81, 0.93]
    code, out, _ = cli("runs", "compare", *logged_runs)
    assert code == 0
    assert "params.C" in out


def test_artifacts_list_and_get_round_trip(logged_runs: list[str], cli: Cli, workdir: Path) -> None:
    entries = cli.json("artifacts", "list", logged_runs[0])
    assert [e["path"] for e in entries] == ["reports/report.txt"]
    assert entries[0]["digest"].startswith("blake3:")
    code, _, err = cli("artifacts", "get", logged_runs[0], "reports", "-o", "out")
    assert code == 0, err
    assert (workdir / "out" / "report.txt").read_text() == "report of lr-small\n"


def test_a_logged_folder_comes_back_by_its_name_and_get_without_path_fetches_all(
    workdir: Path, backend_env: str, cli: Cli
) -> None:
    (workdir / "reports" / "plots").mkdir(parents=True)
    (workdir / "reports" / "summary.html").write_text("<p>summary</p>")
    (workdir / "reports" / "plots" / "roc.png").write_bytes(b"png")
    (workdir / "confusion.png").write_bytes(b"matrix")
    dl.configure(capture_environment=False)
    with dl.start_run(experiment="churn") as run:
        dl.log_artifact("confusion.png")
        dl.log_artifacts("reports/")  # as the README's tour writes it
    dl.flush()

    code, _, err = cli("artifacts", "get", run.id, "reports", "-o", "one")
    assert code == 0, err
    assert (workdir / "one" / "summary.html").read_text() == "<p>summary</p>"
    assert (workdir / "one" / "plots" / "roc.png").read_bytes() == b"png"

    code, out, err = cli("artifacts", "get", run.id, "-o", "all")
    assert code == 0, err
    everything = workdir / "all"
    fetched = sorted(p.relative_to(everything).as_posix() for p in everything.rglob("*"))
    assert [p for p in fetched if (everything / p).is_file()] == [
        "confusion.png",
        "reports/plots/roc.png",
        "reports/summary.html",
    ]
    assert out.count("wrote ") == 3


def test_experiment_lifecycle(workdir: Path, backend_env: str, cli: Cli) -> None:
    assert cli("experiments", "create", "fraud")[0] == 0
    names = [e["name"] for e in cli.json("experiments", "list")["experiments"]]
    assert names == ["fraud"]
    code, _, err = cli("experiments", "create", "fraud")
    assert code == 1
    assert err.startswith("AlreadyExistsError: ")
    assert cli("experiments", "delete", "fraud")[0] == 0
    assert cli.json("experiments", "list")["experiments"] == []
    assert len(cli.json("experiments", "list", "--all")["experiments"]) == 1
    assert cli("experiments", "restore", "fraud")[0] == 0
    assert len(cli.json("experiments", "list")["experiments"]) == 1


def test_errors_are_one_typed_line_and_exit_1(logged_runs: list[str], cli: Cli) -> None:
    code, _out, err = cli("runs", "show", "0" * 32)
    assert code == 1
    assert err == f"NotFoundError: No run with id '{'0' * 32}'\n"
    code, _, err = cli("runs", "search", "-f", "metrics.auc >> 3")
    assert code == 1
    assert err.splitlines()[0] == (
        "InvalidArgumentError: Invalid filter at position 14: "
        "expected a value: a 'quoted string' or a number"
    )
    code, _, err = cli("runs", "compare", logged_runs[0])
    assert code == 1
    assert err.startswith("InvalidArgumentError: compare needs at least two")


def test_debug_flag_adds_the_traceback(workdir: Path, cli: Cli) -> None:
    code, _, err = cli("--debug", "runs", "show", "nope")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().endswith("NotFoundError: No run with id 'nope'")


def test_init_is_idempotent_and_records_settings(workdir: Path, cli: Cli) -> None:
    code, out, _ = cli("init", "--artifact-root", "objects")
    assert code == 0
    assert "Created workspace" in out
    assert (workdir / ".driftline" / "driftline.db").exists()
    config = (workdir / ".driftline" / "config.toml").read_text()
    assert 'artifact_root = "objects"' in config
    code, out, _ = cli("init")
    assert code == 0
    assert "Using workspace" in out
    assert 'artifact_root = "objects"' in (workdir / ".driftline" / "config.toml").read_text()
    # Relative paths in the project config are relative to the project folder.
    assert dl.Settings.load().artifact_root == str(workdir / "objects")


def test_db_current_and_upgrade(workdir: Path, cli: Cli) -> None:
    from driftline.stages import migration_history

    head = migration_history().label
    before = cli.json("db", "current")
    assert before["revision"] is None
    assert before["head"] == head
    upgraded = cli.json("db", "upgrade")
    assert upgraded["after"] == head
    assert cli.json("db", "current")["revision"] == head


@pytest.mark.slow
def test_quickstart_in_a_fresh_folder(workdir: Path) -> None:
    """The README's first command, as a user runs it: a real process in an empty folder."""
    done = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "quickstart"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "models ranked by auc" in done.stdout
    assert "Promoted to breast-cancer@champion" in done.stdout
    assert "validated against breast-cancer-train@1's schema: passed" in done.stdout
    # Stage 4: the workspace served over HTTP and used as a remote client.
    served = " ".join(done.stdout.split())  # the line wraps at the terminal width
    assert "4. Server" in served
    assert "breast-cancer@champion = v1" in served
    assert "predicts exactly like the local one" in served
    # Stage 5: the deployed champion answered every request; a canary was promoted and a
    # buggy one rolled back by the serving process; the prediction log has every request.
    assert "5. Serving" in served
    assert "breast-cancer/1 answered 300 of 300 requests" in served
    assert "rolled out as a canary: promoted, breast-cancer@champion is now breast-cancer/2" in (
        served
    )
    assert "was rolled back automatically" in served
    logged = re.search(r"prediction log holds (\d+) rows \(of (\d+) requests\)", served)
    assert logged is not None, served
    assert logged.group(1) == logged.group(2)
    assert "promoted: breast-cancer@champion -> v2" in served
    assert "rolled back after 2 failed check(s)" in served
    # Stage 6: drift injected into the traffic raises an alert, and a report is written.
    assert "6. Monitoring" in served
    assert "the ordinary hour was healthy" in served
    assert "it raised a warning alert (columns drifted: mean radius" in served
    assert (workdir / "monitoring-report.html").read_text().startswith("<!DOCTYPE html>")
    # Piped output: a line per step (a CI log shows where a slow run is), no blank start,
    # and the warnings of the small split are explained.
    assert done.stdout.startswith("[0/9] Versioning the data\n")
    assert "[1/9] Training logreg-C0.01" in done.stdout
    assert "[7/9] Re-running the training pipeline" in done.stdout
    # The candidates are trained by a pipeline; running it again is all cache hits.
    rerun = re.search(r"re-run: (\d+) of (\d+) steps cached in ([\d.]+) s", served)
    assert rerun is not None, served
    assert rerun.group(1) == rerun.group(2) == "6"
    assert float(rerun.group(3)) < 2.0
    assert "columns shifted less than sampling noise allows" in served
    # Where the time went: wall and CPU time per stage.
    timed = re.search(
        r"Time ([\d.]+) s wall .* per stage: start-up [\d.]+ \([\d.]+\), data ", served
    )
    assert timed is not None, served
    assert "monitoring" in served[timed.end() :]
    assert "retraining" in served[timed.end() :]
    # Stage 7: three drift alerts through the policy in retrain.yaml: promoted, rejected,
    # rolled back, in this order on the timeline (which the audit log wrote).
    assert (
        "turned three drift alerts into three cycles: breast-cancer/4 promoted, "
        "breast-cancer/5 rejected, breast-cancer/6 rolled back; the champion is "
        "breast-cancer/4"
    ) in served
    loop = served[served.index("7. Retraining") :]
    timeline = [
        "breast-cancer/2 (@champion) answers ordinary traffic",
        "drift #1: a new scanner",
        "new labelled data committed: breast-cancer-train@2, breast-cancer-test@2",
        "alert",
        "triggered cycle",
        "training the policy's pipeline quickstart_retraining",
        "evaluating pipeline run",
        "apply canary breast-cancer/4 takes 25%",
        "rolling_out challenger accepted",
        "promote promoted: breast-cancer@champion -> v4",
        "promoted promoted: breast-cancer@champion -> v4",
        "drift #2:",
        "rejected breast-cancer/5 did not beat breast-cancer@champion on log_loss",
        "the champion stays",
        "retrain.yaml applied again with scaling: per_batch",
        "drift #3:",
        "apply canary breast-cancer/6 takes 25%",
        "check_failed check failed (1 of 2): failed: error_rate",
        "rollback rolled back after 2 failed check(s)",
        "rolled_back rolled back after 2 failed check(s)",
        "retrain.yaml back to scaling: fitted",
    ]
    at = 0
    for event in timeline:
        found = loop.find(event, at)
        assert found >= 0, f"{event!r} not after position {at} of: {loop}"
        at = found + len(event)
    verdicts = re.findall(r"challenger - champion \[([-+][\d.]+), ([-+][\d.]+)\]", loop)
    assert len(verdicts) == 3, loop
    # Log loss: below zero is better. Beaten, worse, beaten (then rolled back live).
    assert [float(high) < 0 for _low, high in verdicts] == [True, False, True]
    assert float(verdicts[1][0]) > 0
    # The trace of a prediction the promoted challenger served, back to the alert.
    traced = loop[loop.index("Trace of request") :]
    assert "variant stable, breast-cancer/4" in traced
    assert "step of pipeline quickstart_retraining" in traced
    assert 'scaling="fitted", test="breast-cancer-test@2", train="breast-cancer-train@2"' in traced
    assert "data: breast-cancer-train@2, breast-cancer-test@2" in traced
    assert re.search(
        r"made by retraining cycle \w+ \(promoted\), started by alert \w+ of monitor "
        r"breast-cancer-live",
        traced,
    ), traced
    policy = (workdir / "retrain.yaml").read_text()
    assert "drift: {monitor: breast-cancer-live}" in policy
    assert "scaling: fitted" in policy
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "driftline.cli",
            "runs",
            "search",
            "-e",
            "quickstart",
            "-f",
            "attributes.parent_run_id is not null",
            "-o",
            "metrics.auc desc",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    runs = json.loads(listing.stdout)["runs"]
    assert len(runs) == 6
    aucs = [r["metrics"]["auc"] for r in runs]
    assert aucs == sorted(aucs, reverse=True)
    assert min(aucs) > 0.9
    assert all(r["status"] == "FINISHED" for r in runs)
    # Each candidate is a step run named after it, a child of the pipeline's run.
    assert {r["tags"]["driftline.pipeline.step"].partition("_")[0] for r in runs} == {"train"}
    assert len({r["parent_id"] for r in runs}) == 1
    mlp = next(r for r in runs if r["name"] == "mlp")
    epochs = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "runs", "show", mlp["id"], "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    shown = json.loads(epochs.stdout)
    assert [a["path"] for a in shown["artifacts"]][-1] == "plots/evaluation.png"
    out = workdir / "plots"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "driftline.cli",
            "artifacts",
            "get",
            mlp["id"],
            "plots",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert (out / "evaluation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The registry part: the best model is the champion, the audit trail is intact, and
    # lineage links the training data to every candidate run.
    def cli(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "driftline.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout

    versions = json.loads(cli("models", "versions", "breast-cancer", "--json"))
    # v1 the best run; v2 the challenger the canary rollout promoted; v3 the buggy canary;
    # v4-v6 the retraining cycles' challengers, of which v4 was promoted.
    assert [v["aliases"] for v in versions] == [[], [], ["champion"], [], [], []]
    cycles = json.loads(cli("retrain", "history", "breast-cancer", "--json"))
    assert [(c["state"], c["version"], c["cause"]["kind"]) for c in cycles] == [
        ("rolled_back", 6, "alert"),
        ("rejected", 5, "alert"),
        ("promoted", 4, "alert"),
    ]
    assert versions[-1]["run_id"] == runs[0]["id"]
    assert versions[-2]["run_id"] in {r["id"] for r in runs[1:]}
    assert "intact" in cli("audit", "verify")
    lineage = json.loads(cli("data", "lineage", "breast-cancer-train@1", "--json"))
    readers = {e["target"] for e in lineage["downstream"] if e["kind"] == "input"}
    assert {f"run:{r['id']}" for r in runs} == readers
