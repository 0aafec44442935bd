"""The server's REST API for pipeline runs, schedules, triggers and firings (real uvicorn)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from driftline.pipelines.agent import Agent
from driftline.pipelines.automation import Automation
from driftline.workspace import Workspace

PIPES = """
import driftline as dl

@dl.step
def double(x: int) -> int:
    return 2 * x

@dl.pipeline
def rest_demo(x: int = 1):
    return double(x)
"""


def test_runs_schedules_triggers_over_rest(
    live_server: Any,
    open_workspace: Callable[..., Workspace],
    write_module: Callable[..., ModuleType],
) -> None:
    live_server.reset()
    write_module("rest_pipes", PIPES)
    # The agent and the CLI work on the server's database; the REST API reads the same.
    ws = open_workspace(live_server.uri, artifact_root=str(live_server.root / "artifacts"))
    auto = Automation.for_workspace(ws)
    auto.create_schedule("nightly", "rest_demo", cron="0 3 * * *", timezone="Europe/Berlin")
    auto.create_trigger("by-hand", "rest_demo", params={"x": "{trigger.x}"})
    api = httpx.Client(base_url=f"{live_server.url}/api/v1/pipelines", timeout=30)

    schedules = api.get("/schedules").json()["schedules"]
    assert [(s["name"], s["cron"], s["timezone"]) for s in schedules] == [
        ("nightly", "0 3 * * *", "Europe/Berlin")
    ]
    assert api.post("/schedules/nightly/pause").json()["enabled"] is False
    assert api.post("/schedules/nightly/resume").json()["enabled"] is True
    missing = api.get("/schedules/weekly")
    assert missing.status_code == 404
    assert "schedules: nightly" in missing.text

    fired = api.post("/triggers/by-hand/fire", json={"payload": {"x": 21}})
    assert fired.status_code == 200, fired.text
    assert fired.json()["status"] == "PENDING"
    assert api.post("/triggers/by-hand/fire", json={"payload": [1]}).status_code == 400
    ran = Agent(ws, say=lambda _m: None).tick()
    assert [f.resolved_params for f in ran] == [{"x": 21}]

    shown = api.get("/triggers/by-hand").json()
    assert [f["status"] for f in shown["firings"]] == ["FINISHED"]
    run_id = shown["firings"][0]["run_id"]
    runs = api.get("/runs", params={"pipeline": "rest_demo"}).json()["runs"]
    assert [r["id"] for r in runs] == [run_id]
    one = api.get(f"/runs/{run_id}").json()
    assert one["status"] == "FINISHED"
    assert [s["name"] for s in one["steps"]] == ["double"]
    assert (
        api.get("/firings", params={"status": "FINISHED"}).json()["firings"][0]["id"]
        == (shown["firings"][0]["id"])
    )
    bad_status = api.get("/firings", params={"status": "DONE"})
    assert bad_status.status_code == 400
    assert "PENDING" in bad_status.text

    auto.create_trigger("retrain", "rest_demo", on_alert="monitoring:churn")
    alert = api.post("/alerts/monitoring:churn", json={"payload": {}, "key": "a1"})
    assert [f["origin_name"] for f in alert.json()["firings"]] == ["retrain"]
    assert api.post("/alerts/monitoring:churn", json={"key": "a1"}).json()["firings"] == []
    assert api.post("/alerts/nobody", json={}).status_code == 404

    assert api.delete("/schedules/nightly").status_code == 200
    assert api.get("/schedules").json()["schedules"] == []


def test_the_cli_and_the_agent_work_against_a_team_server(live_server: Any, tmp_path: Path) -> None:
    live_server.reset()
    (tmp_path / "driftline_pipelines.py").write_text(textwrap.dedent(PIPES))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")},
        "DRIFTLINE_HOME": str(tmp_path / ".driftline"),
        "DRIFTLINE_URI": live_server.url,
    }

    def driftline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "driftline.cli", *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    made = driftline("schedule", "create", "nightly", "--pipeline", "rest_demo", "--cron", "@daily")
    assert made.returncode == 0, made.stderr
    bad = driftline("schedule", "create", "x", "--pipeline", "rest_demo", "--cron", "0 3 * * 8")
    assert "field 5 (day-of-week)" in bad.stderr
    assert driftline("trigger", "create", "by-hand", "--pipeline", "rest_demo").returncode == 0
    assert driftline("trigger", "fire", "by-hand").returncode == 0
    ran = driftline("agent", "--once", "--json")
    assert ran.returncode == 0, ran.stderr
    firings = json.loads(ran.stdout)["firings"]
    assert [(f["origin_name"], f["status"]) for f in firings] == [("by-hand", "FINISHED")]
    # Recorded on the server: its REST API shows the run and the schedule.
    api = httpx.Client(base_url=f"{live_server.url}/api/v1/pipelines", timeout=30)
    runs = api.get("/runs", params={"pipeline": "rest_demo"}).json()["runs"]
    assert [r["id"] for r in runs] == [firings[0]["run_id"]]
    assert [s["name"] for s in api.get("/schedules").json()["schedules"]] == ["nightly"]
    assert api.get("/records/leases/agent").json() is None  # given back
