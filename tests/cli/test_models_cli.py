"""`driftline models ...` and `driftline audit ...` as a user drives them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from driftline.models import save_model

if TYPE_CHECKING:
    from conftest import Cli  # the runner fixture's type (tests/cli/conftest.py)


@pytest.fixture
def project(workdir: Path) -> Path:
    tmp_path = workdir
    frame = load_breast_cancer(as_frame=True).frame
    frame.to_parquet(tmp_path / "test.parquet")
    x = frame.drop(columns=["target"])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
        x, frame["target"]
    )
    save_model(model, tmp_path / "pkg", input_example=x.head(3))
    return tmp_path


def test_register_evaluate_promote_rollback_and_audit(project: Path, cli: Cli) -> None:
    assert cli.json("models", "register", "pkg", "cancer")["version"] == 1
    assert cli.json("models", "register", "pkg", "cancer")["version"] == 2
    evaluation = cli.json(
        "models", "evaluate", "cancer/1", "--data", "test.parquet", "--target", "target"
    )
    assert evaluation["metrics"]["roc_auc"] > 0.95

    (project / "strict.yaml").write_text(
        "evaluation: {data: test.parquet, target: target}\n"
        "gates:\n  - {metric: accuracy, min: 0.9999}\n"
    )
    code, out, err = cli(
        "models", "promote", "cancer", "1", "--alias", "champion", "--gates", "strict.yaml"
    )
    assert code == 1
    assert "accuracy >= 0.9999" in out
    assert err.startswith("GateFailedError: Promotion of cancer/1 to 'champion' refused")
    (project / "ok.yaml").write_text("gates:\n  - {metric: auc, min: 0.9}\n")
    assert (
        cli("models", "promote", "cancer", "1", "--alias", "champion", "--gates", "ok.yaml")[0] == 0
    )
    assert cli("models", "alias", "cancer", "champion", "2")[0] == 0
    code, out, _ = cli("models", "rollback", "cancer", "--alias", "champion")
    assert code == 0
    assert "v2 -> v1" in out
    versions = cli.json("models", "versions", "cancer")
    assert [v["aliases"] for v in versions] == [[], ["champion"]]

    code, out, _ = cli("models", "card", "cancer", "1", "--html", "card.html")
    assert code == 0
    assert "<h1>cancer" in (project / "card.html").read_text()
    comparison = cli.json(
        "models",
        "compare",
        "cancer/1",
        "cancer/2",
        "--data",
        "test.parquet",
        "--target",
        "target",
        "--rounds",
        "50",
    )
    assert comparison["models"] == ["cancer/1", "cancer/2"]

    entries = cli.json("audit", "log", "--model", "cancer")
    assert [e["action"] for e in entries][:3] == ["alias_rollback", "alias_set", "alias_promote"]
    assert cli("audit", "verify")[0] == 0
    import sqlite3

    with sqlite3.connect(project / ".driftline" / "driftline.db") as conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    code, out, _ = cli("audit", "verify")
    assert code == 1
    assert "TAMPERED" in out
    assert "first bad entry: 2" in out


def test_approval_policy_from_the_cli(project: Path, cli: Cli) -> None:
    cli.json("models", "register", "pkg", "cancer")
    assert cli("models", "policy", "production", "-n", "1")[0] == 0
    code, _, err = cli("models", "promote", "cancer", "1", "--alias", "production")
    assert code == 1
    assert err.startswith("PermissionDeniedError: Promoting cancer/1 to 'production' needs 1")
    assert (
        cli("models", "approve", "cancer", "1", "--alias", "production", "-c", "looks good")[0] == 0
    )
    assert cli("models", "promote", "cancer", "1", "--alias", "production")[0] == 0


def test_evaluate_with_a_slice_prints_a_table_per_value(project: Path, cli: Cli) -> None:
    frame = pd.read_parquet(project / "test.parquet")
    frame["region"] = np.where(np.arange(len(frame)) % 3 == 0, "north", "south")
    frame.to_parquet(project / "regions.parquet")
    cli.json("models", "register", "pkg", "cancer")
    args = ("models", "evaluate", "cancer/1", "--data", "regions.parquet", "--target", "target")
    code, out, err = cli(*args, "--slice", "region")
    assert code == 0, err
    slices = cli.json(*args, "--slice", "region")["slices"]["region"]
    assert "By region" in out
    lines = out.splitlines()
    for value, row in slices.items():
        (line,) = [line for line in lines if f" {value} " in line]
        assert f" {row['rows']} " in line
        assert f" {row['accuracy']:.4f} " in line
        assert f" {row['roc_auc']:.4f} " in line
    # The overall table uses the same 4 decimals.
    overall = cli.json(*args)["metrics"]
    assert f" {overall['roc_auc']:.4f} " in out


def test_gate_table_rounds_measured_values(project: Path, cli: Cli) -> None:
    cli.json("models", "register", "pkg", "cancer")
    cli.json("models", "evaluate", "cancer/1", "--data", "test.parquet", "--target", "target")
    (project / "gates.yaml").write_text(
        "gates:\n  - {metric: log_loss, max: 0.5}\n  - {latency_p99_ms: 250}\n"
    )
    code, out, err = cli(
        "models", "promote", "cancer", "1", "--alias", "champion", "-g", "gates.yaml"
    )
    assert code == 0, err
    report = cli.json("models", "promote", "cancer", "1", "--alias", "champion", "-g", "gates.yaml")
    log_loss = report["gates"][0]["measured"]
    assert f"{log_loss:.4f}" in out
    assert repr(log_loss) not in out
    assert "median of 5" in out  # how the latency was measured


@pytest.mark.parametrize("group", ["models", "audit", "users", "tokens"])
def test_every_option_and_argument_has_help_and_summaries_are_whole(group: str, cli: Cli) -> None:
    import typer.main

    from driftline.cli.app import app

    commands = typer.main.get_command(app).commands[group].commands  # type: ignore[attr-defined]
    missing = [
        f"{name} {param.name}"
        for name, command in commands.items()
        for param in command.params
        if param.name != "help" and not getattr(param, "help", None)
    ]
    assert missing == []
    code, out, _ = cli(group, "--help")
    assert code == 0
    listing = out.partition("Commands:")[2]
    assert listing.strip()
    assert "..." not in listing
    assert "…" not in listing
    for name, command in commands.items():
        summary = command.get_short_help_str(limit=45)
        assert not summary.endswith("..."), (name, summary)
