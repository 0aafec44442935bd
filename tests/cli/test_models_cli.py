"""`driftline models ...` and `driftline audit ...` as a user drives them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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
