"""The monitoring REST routes on a real ``driftline server --auth`` process: monitors are
created and run over HTTP, bad input is a 400 naming the field, and the server's grants
decide who may read and who may run a deployment's monitors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from monitor_traffic import frame

from driftline.api.client import ApiClient
from driftline.auth._http import HttpUserAdmin
from driftline.monitoring import MonitoringService
from driftline.serving.predlog import PredictionLog
from driftline.workspace import Workspace

DAY = datetime(2026, 5, 1, 12, tzinfo=UTC)
API = "/api/v1/monitoring"


def bootstrap_admin(root: Path, uri: str) -> str:
    """The first admin's token, made on the server's machine as an operator does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    done = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "--home", str(root / ".driftline"), "--uri",
         uri, "users", "create", "root", "--role", "admin", "--with-token"],
        capture_output=True, text=True, env=env, cwd=root, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.server
def test_monitors_over_rest_with_grants(
    server_factory: Callable[..., Any],
    open_workspace: Callable[..., Workspace],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    server = server_factory(args=("--auth",))
    admin_token = bootstrap_admin(server.root, server.uri)
    # The server's own workspace (same database and folders): a reference and traffic.
    ws = open_workspace(
        server.uri, home=server.root / ".driftline", artifact_root=str(server.root / "artifacts")
    )
    ws.service("monitoring", MonitoringService).fit_reference(frame(2_000, seed=1), name="train")
    plog = PredictionLog(str(server.root / ".driftline" / "predictions"), "churn")
    moved = frame(400, seed=5, shift=1.0)
    for i in range(8):
        chunk = moved.iloc[i * 50 : (i + 1) * 50]
        plog.append((f"q{i}", "churn", 1, "stable", DAY - timedelta(minutes=i), "predict",
                     chunk, [0.1] * 50, 50, 1.0, 200, None))  # fmt: skip
    plog.close()

    admin = HttpUserAdmin(ApiClient(server.url, token=admin_token))
    admin.create_user("vic", role="viewer")
    viewer = admin.create_token("vic").secret
    admin.create_user("opal", role="viewer")
    admin.grant("opal", model="churn", permission="edit")
    operator = admin.create_token("opal").secret
    admin.close()

    def call(method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, server.url + API + path, headers=headers, timeout=60, **kwargs)

    body = {"name": "churn-prod", "deployment": "churn", "reference": "train", "alerts": ["log"]}
    bad = call("POST", "/monitors", admin_token, json={**body, "window": "1x"})
    assert bad.status_code == 400, bad.text
    assert "Invalid window '1x'" in bad.json()["error"]["message"]
    bad = call("POST", "/monitors", admin_token, json={**body, "checks": ["nope"]})
    assert bad.status_code == 400
    assert "known checks are drift" in bad.json()["error"]["message"]
    bad = call("POST", "/monitors", admin_token, json={**body, "deployment": "ghost"})
    assert bad.status_code == 404
    assert call("POST", "/monitors", viewer, json=body).status_code == 403
    created = call("POST", "/monitors", admin_token, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["monitor"]["window"] == "1d"

    listed = call("GET", "/monitors", viewer).json()["monitors"]
    assert [m["name"] for m in listed] == ["churn-prod"]
    at = {"at": int((DAY + timedelta(minutes=1)).timestamp() * 1000)}
    assert call("POST", "/monitors/churn-prod/run", viewer, json=at).status_code == 403
    run = call("POST", "/monitors/churn-prod/run", operator, json=at)
    assert run.status_code == 200, run.text
    result = run.json()
    assert result["healthy"] is False
    (alert,) = result["raised"]

    alerts = call("GET", "/alerts", viewer, params={"monitor": "churn-prod"}).json()["alerts"]
    assert [a["id"] for a in alerts] == [alert["id"]]
    since = {"since": int((DAY + timedelta(days=1)).timestamp() * 1000)}
    assert call("GET", "/alerts", viewer, params=since).json()["alerts"] == []
    history = call("GET", "/monitors/churn-prod/history", viewer).json()["evaluations"]
    assert [e["status"] for e in history] == ["alert"]
    series = call("GET", "/monitors/churn-prod/series", viewer,
                  params={"column": "age", "metric": "drifted"}).json()["figures"]  # fmt: skip
    assert [f["value"] for f in series] == [1.0]
    page = call("GET", "/monitors/churn-prod/report", viewer)
    assert page.headers["content-type"].startswith("text/html")
    assert "<circle class='alert'" in page.text
    status = call("GET", "/status", viewer).json()["monitors"]
    assert status[0]["latest"]["status"] == "alert"
    assert call("GET", "/monitors/nope", viewer).status_code == 404

    # The same monitors through a remote workspace: the Python API and the CLI.
    remote = open_workspace(server.url, token=operator, home=tmp_path / "client")
    monitors = remote.service("monitoring", MonitoringService).monitors
    assert monitors.get("churn-prod").reference == "train"
    again = monitors.run("churn-prod", at=DAY + timedelta(minutes=2))
    assert not again.healthy
    assert [a.id for a in again.repeated] == [alert["id"]]  # within the cooldown
    assert [e.status for e in monitors.history("churn-prod")] == ["alert", "alert"]
    assert [a.repeats for a in monitors.alerts(monitor="churn-prod")] == [1]
    points = monitors.series("churn-prod", column="", metric="rows")
    assert [p.value for p in points] == [400.0, 400.0]
    monkeypatch.setenv("DRIFTLINE_URI", server.url)
    monkeypatch.setenv("DRIFTLINE_TOKEN", operator)
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "cli"))
    code, out, err = cli(capsys, "monitor", "run", "churn-prod", "--at", "2026-05-01T12:03")
    assert code == 1, err
    assert "still alerting" in out
    code, out, err = cli(capsys, "monitor", "report", "churn-prod", "--html", "remote.html")
    assert code == 0, err
    assert "<circle class='alert'" in (tmp_path / "remote.html").read_text()
    monkeypatch.setenv("DRIFTLINE_TOKEN", viewer)
    code, _, err = cli(capsys, "monitor", "delete", "churn-prod")
    assert code == 1
    assert "PermissionDeniedError" in err
    monkeypatch.setenv("DRIFTLINE_TOKEN", operator)
    code, _, err = cli(capsys, "monitor", "delete", "churn-prod")
    assert code == 0, err
    assert call("GET", "/monitors", viewer).json()["monitors"] == []


def cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    from driftline.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
