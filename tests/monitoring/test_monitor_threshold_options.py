"""``driftline monitor create --threshold key=value`` and ``--thresholds file.yaml``:
thresholds set from the command line, checked with errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from monitor_traffic import frame, write_traffic
from test_monitor_cli import DAY1, run

import driftline as dl


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from driftline.core.session import default_workspace

    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / ".driftline"))
    monkeypatch.setenv("DRIFTLINE_CAPTURE_ENVIRONMENT", "false")
    write_traffic(default_workspace(), "churn", frame(200, seed=2), at=DAY1)  # type: ignore[arg-type]
    return tmp_path


def create(capsys: Any, *options: str) -> tuple[int, str, str]:
    return run(capsys, "monitor", "create", "m", "--deployment", "churn", "--replace",
               "--checks", "drift,performance", "--json", *options)  # fmt: skip


def test_thresholds_from_options_and_a_file(project: Path, capsys: Any) -> None:
    code, out, err = create(
        capsys, "--threshold", "performance.metric=roc_auc", "--threshold",
        "performance.below=0.8", "--threshold", "psi=0.25", "-t", "columns.age.psi=0.1",
    )  # fmt: skip
    assert code == 0, err
    expected = {
        "performance": {"metric": "roc_auc", "below": 0.8},
        "psi": 0.25,
        "columns": {"age": {"psi": 0.1}},
    }
    assert json.loads(out)["thresholds"] == expected
    assert dl.monitoring.get_monitor("m").thresholds == expected

    path = project / "thresholds.yaml"
    path.write_text("psi: 0.3\nperformance:\n  metric: f1\n  below: 0.7\n", encoding="utf-8")
    code, out, err = create(capsys, "--thresholds", str(path), "-t", "performance.below=0.75")
    assert code == 0, err
    assert json.loads(out)["thresholds"] == {
        "psi": 0.3,
        "performance": {"metric": "f1", "below": 0.75},  # the option overrides the file
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("-t", "performance.metric=roc_auc"), "performance needs both metric and below"),
        (("-t", "performance.below=high", "-t", "performance.metric=f1"),
         "performance.below must be a number"),
        (("-t", "psi=-1"), "psi"),
        (("-t", "quality.missing=0.2"), "thresholds.quality"),
        (("-t", "nonsense=1"), "nonsense"),
        (("-t", "psi"), "Invalid --threshold 'psi': use key=value"),
        (("-t", "psi=0.2", "-t", "psi.x=1"), "psi is a value, not a section"),
    ],
)  # fmt: skip
def test_bad_thresholds_name_the_field(
    project: Path, capsys: Any, options: tuple[str, ...], message: str
) -> None:
    code, out, err = create(capsys, *options)
    assert code == 1, out
    assert "InvalidArgumentError" in err
    assert message in err
    assert dl.monitoring.list_monitors() == []


def test_a_thresholds_file_that_is_not_a_mapping(project: Path, capsys: Any) -> None:
    path = project / "t.yaml"
    path.write_text("- psi\n", encoding="utf-8")
    code, _, err = create(capsys, "--thresholds", str(path))
    assert code == 1
    assert "must hold a mapping" in err
