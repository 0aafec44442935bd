"""``driftline pipelines`` in a fresh process, as users run it."""

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
def load(n: int) -> list:
    return list(range(n))

@dl.step
def total(xs: list, scale: float = 1.0) -> float:
    return sum(xs) * scale

@dl.pipeline
def demo(n: int = 3, scale: float = 1.0):
    return total(load(n), scale=scale)
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


def test_list_graph_run_runs_show(tmp_path: Path) -> None:
    (tmp_path / "driftline_pipelines.py").write_text(textwrap.dedent(PIPELINES))
    listed = driftline(tmp_path, "pipelines", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [p["name"] for p in json.loads(listed.stdout)["pipelines"]] == ["demo"]
    graph = driftline(tmp_path, "pipelines", "graph", "demo", "--format", "mermaid")
    assert "load --> total" in graph.stdout

    ran = driftline(tmp_path, "pipelines", "run", "demo", "-p", "scale=2", "--json")
    assert ran.returncode == 0, ran.stderr
    record = json.loads(ran.stdout)
    assert record["status"] == "FINISHED"
    assert [s["cache"]["reason"] for s in record["steps"]] == ["no previous run"] * 2

    again = driftline(tmp_path, "pipelines", "run", "demo", "-p", "scale=3")
    assert again.returncode == 0, again.stderr
    assert "hit" in again.stdout
    assert "params changed: scale" in again.stdout

    runs = json.loads(driftline(tmp_path, "pipelines", "runs", "demo", "--json").stdout)
    assert [r["status"] for r in runs["runs"]] == ["FINISHED", "FINISHED"]
    shown = driftline(tmp_path, "pipelines", "show", "demo")
    assert "load" in shown.stdout
    assert "params changed: scale" in shown.stdout


def test_errors_say_what_was_searched(tmp_path: Path) -> None:
    nothing = driftline(tmp_path, "pipelines", "list")
    assert nothing.returncode == 1
    assert "no --module was given and there is no driftline_pipelines.py" in nothing.stderr
    (tmp_path / "mine.py").write_text(textwrap.dedent(PIPELINES))
    unknown = driftline(tmp_path, "pipelines", "run", "nope", "--module", "mine")
    assert "NotFoundError: No pipeline named 'nope'; known pipelines: demo" in unknown.stderr
    bad = driftline(tmp_path, "pipelines", "run", "demo", "--module", "mine", "-p", "x=1")
    assert "InvalidArgumentError: Pipeline 'demo' has no parameter 'x'" in bad.stderr
