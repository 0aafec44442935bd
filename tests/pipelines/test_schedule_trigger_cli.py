"""``driftline schedule`` and ``driftline trigger`` in a fresh process, as users run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PIPELINES = """
import driftline as dl

@dl.step
def load(dataset: str, n: int) -> str:
    return f"{dataset}:{n}"

@dl.pipeline
def demo(dataset: str = "customers@latest", n: int = 3):
    return load(dataset, n)
"""


def driftline(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRIFTLINE_HOME": str(cwd / ".driftline")}
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(cwd: Path, *args: str) -> str:
    done = driftline(cwd, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_schedules_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "driftline_pipelines.py").write_text(textwrap.dedent(PIPELINES))
    (tmp_path / "c.csv").write_text("a\n1\n")
    ok(tmp_path, "data", "commit", "customers", "c.csv")
    made = json.loads(
        ok(
            tmp_path,
            "schedule", "create", "nightly", "--pipeline", "demo", "--cron", "0 3 * * *",
            "--tz", "Europe/Berlin", "-p", "dataset=customers@latest", "-p", "n=5", "--json",
        )
    )  # fmt: skip
    assert made["params"] == {"dataset": "customers@latest", "n": 5}  # n typed as the default
    assert made["timezone"] == "Europe/Berlin"
    listed = ok(tmp_path, "schedule", "list")
    assert "nightly" in listed
    assert "0 3 * * *" in listed
    assert "paused" in ok(tmp_path, "schedule", "pause", "nightly")
    shown = json.loads(ok(tmp_path, "schedule", "show", "nightly", "--json"))
    assert shown["schedule"]["enabled"] is False
    assert shown["firings"] == []
    assert "resumed; next due" in ok(tmp_path, "schedule", "resume", "nightly")

    bad = driftline(
        tmp_path, "schedule", "create", "x", "--pipeline", "demo", "--cron", "0 3 * * 9"
    )
    assert bad.returncode != 0
    assert "field 5 (day-of-week) '9' at character 9" in bad.stderr
    unknown = driftline(
        tmp_path, "schedule", "create", "x", "--pipeline", "dem", "--cron", "@daily"
    )
    assert unknown.returncode != 0
    assert "known pipelines: demo" in unknown.stderr
    assert (
        "No schedule named 'x'; schedules: nightly"
        in driftline(tmp_path, "schedule", "show", "x").stderr
    )

    ok(tmp_path, "schedule", "delete", "nightly")
    assert json.loads(ok(tmp_path, "schedule", "list", "--json")) == {"schedules": []}


def test_triggers_from_the_command_line_and_the_agent_runs_them(tmp_path: Path) -> None:
    (tmp_path / "driftline_pipelines.py").write_text(textwrap.dedent(PIPELINES))
    (tmp_path / "c.csv").write_text("a\n1\n")
    ok(tmp_path, "data", "commit", "customers", "c.csv")
    missing = driftline(
        tmp_path, "trigger", "create", "t", "--pipeline", "demo", "--on-dataset", "orders"
    )
    assert "No dataset named 'orders'; datasets: customers" in missing.stderr
    ok(
        tmp_path,
        "trigger", "create", "on-new-data", "--pipeline", "demo", "--on-dataset", "customers",
        "-p", "dataset=customers@{trigger.dataset_version}",
    )  # fmt: skip
    ok(tmp_path, "trigger", "create", "by-hand", "--pipeline", "demo", "-p", "n={trigger.n}")
    triggers = json.loads(ok(tmp_path, "trigger", "list", "--json"))["triggers"]
    assert [(t["name"], t["kind"], t["cursor"]) for t in triggers] == [
        ("by-hand", "manual", None),
        ("on-new-data", "dataset", 1),
    ]
    (tmp_path / "c.csv").write_text("a\n1\n2\n")
    ok(tmp_path, "data", "commit", "customers", "c.csv")
    ok(tmp_path, "trigger", "fire", "by-hand", "-d", "n=7")
    ran = json.loads(ok(tmp_path, "agent", "--once", "--json"))["firings"]
    by_name = {f["origin_name"]: f for f in ran}
    assert by_name["on-new-data"]["resolved_params"] == {"dataset": "customers@2", "n": 3}
    assert by_name["by-hand"]["resolved_params"] == {"dataset": "customers@2", "n": 7}
    assert {f["status"] for f in ran} == {"FINISHED"}
    shown = ok(tmp_path, "trigger", "show", "on-new-data")
    assert "customers@2" in shown
    assert "FINISHED" in shown
    ok(tmp_path, "trigger", "delete", "by-hand")
    assert "No trigger named 'by-hand'" in driftline(tmp_path, "trigger", "fire", "by-hand").stderr
