"""`driftline maturity` / `dl.maturity`: levels from what a workspace records."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import driftline as dl
from driftline.cli.app import build_app
from driftline.retraining import CAPABILITIES, LEVELS, CapabilityCheck
from driftline.retraining.maturity import assess


@dl.step
def fit(dataset: str) -> float:
    from sklearn.linear_model import LogisticRegression

    version = dl.data.get(dataset)
    dl.log_input(version)
    frame = version.to_pandas()
    x, y = frame[["f0", "f1"]], frame["label"]
    model = LogisticRegression().fit(x, y)
    dl.models.log_model(model, "model", input_example=x.head(2))
    run = dl.active_run()
    assert run is not None
    dl.register_model(f"runs:/{run.id}/model", "scored")
    return float(model.score(x, y))


@dl.pipeline
def scored_training(dataset: str = "points@1"):
    return fit(dataset)


def test_the_scale_names_every_capability_once() -> None:
    assert [level.number for level in LEVELS] == [0, 1, 2, 3, 4]
    named = [name for level in LEVELS for name in level.adds]
    assert sorted(named) == sorted(CAPABILITIES)
    assert LEVELS[0].adds == ()


def _checks(present: set[str]) -> dict[str, CapabilityCheck]:
    return {
        name: CapabilityCheck(name=name, present=name in present, evidence="")
        for name in CAPABILITIES
    }


def test_a_level_needs_every_level_below_it() -> None:
    everything = set(CAPABILITIES)
    top = assess("m", _checks(everything))
    assert (top.level, top.next_level, top.next_steps) == (4, None, ())
    # Level 3's capabilities without level 2's are still level 1.
    gap = assess("m", _checks(everything - {"pipeline"}))
    assert gap.level == 1
    assert gap.next_level == 2
    assert gap.next_steps == (CAPABILITIES["pipeline"].how,)
    none = assess("m", _checks(set()))
    assert none.level == 0
    assert none.level_name == "manual"
    assert len(none.next_steps) == 3


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def _write_predictions(model: str, variants: list[str]) -> None:
    from driftline.serving.predlog import PredictionLog

    log = PredictionLog(dl.serving.prediction_log_root(), model)
    for i, variant in enumerate(variants):
        now = datetime.now(UTC)
        log.append((f"r{i}", model, 1, variant, now, "predict", None, [0], 1, 1.0, 200, None))
    log.close()


def test_a_model_climbs_the_levels_as_its_workspace_records_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configure_default: Any, shared_db_url: str
) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "README").write_text("training\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=d", "-c", "user.email=d@driftline.invalid", "commit", "-qm", "x")
    monkeypatch.chdir(repo)  # runs record this repository's commit
    configure_default(uri=shared_db_url, capture_environment=True, async_logging=False)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=["f0", "f1"])
    frame["label"] = (frame["f0"] > 0).astype(int)
    dl.data.commit("points", frame)

    folder = tmp_path / "pkg"
    dl.models.save_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), folder)
    dl.register_model(str(folder), "by_hand")
    (by_hand,) = dl.maturity("by_hand")
    assert by_hand.level == 0
    assert CAPABILITIES["tracked_runs"].how in by_hand.next_steps

    with dl.start_run(name="launch"):  # the pipeline's runs inherit its commit
        scored_training.run()
    (trained,) = dl.maturity("scored")
    checks = {c.name: c for c in trained.checks}
    assert checks["tracked_runs"].present
    assert checks["data_versions"].evidence == "its run read points@1"
    assert checks["code_versions"].present
    assert checks["pipeline"].present
    assert not checks["registry_gates"].present
    assert trained.level == 1
    assert trained.next_steps == (CAPABILITIES["registry_gates"].how,)

    gates = {
        "evaluation": {"data": "points@1", "target": "label"},
        "gates": [{"metric": "accuracy", "min": 0.5}],
    }
    assert dl.registry.promote("scored", 1, alias="champion", gates=gates).promoted
    (gated,) = dl.maturity("scored")
    assert gated.level == 2
    assert set(gated.next_steps) == {
        CAPABILITIES[n].how for n in ("served", "progressive_rollout", "approvals")
    }

    _write_predictions("scored", ["stable", "stable", "canary"])
    dl.registry.set_policy("champion", 1)
    (deployed,) = dl.maturity("scored")
    assert deployed.level == 3
    checks = {c.name: c for c in deployed.checks}
    assert checks["served"].evidence == "answered as canary, stable"
    assert checks["approvals"].evidence == "champion needs 1 approval(s)"
    assert checks["audit"].present
    assert deployed.next_steps == (
        CAPABILITIES["monitoring"].how,
        CAPABILITIES["retraining_policy"].how,
    )

    dl.monitoring.fit_reference("points@1", name="scored")
    (monitored,) = dl.maturity("scored")
    assert monitored.level == 3  # retraining policies are not recorded yet
    assert monitored.next_steps == (CAPABILITIES["retraining_policy"].how,)

    assert [m.model for m in dl.maturity()] == ["by_hand", "scored"]
    with pytest.raises(dl.NotFoundError):
        dl.maturity("nobody")

    home = str(dl.get_workspace().settings.home)
    uri = dl.get_workspace().settings.uri
    runner = CliRunner()
    shown = runner.invoke(build_app(), ["--home", home, "--uri", uri, "maturity"])
    assert shown.exit_code == 0, shown.output
    assert "scored: level 3 (automated deployment)" in shown.output
    assert "To reach level 4 (full MLOps):" in shown.output
    as_json = runner.invoke(build_app(), ["--home", home, "--uri", uri, "maturity", "--json"])
    assert as_json.exit_code == 0, as_json.output
    levels = {m["model"]: m["level"] for m in json.loads(as_json.output)["models"]}
    assert levels == {"by_hand": 0, "scored": 3}
