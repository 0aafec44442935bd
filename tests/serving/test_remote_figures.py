"""``deploy status`` and ``deploy compare`` from a client of a team server: the server
computes the figures from the prediction log in its own artifact store, which the
client (another home, no shared folder) cannot read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.serving.conftest import ServeProcess, build_workspace, reset_default_workspace

from driftline.serving.deployments import DeploymentService
from driftline.settings import Settings
from driftline.workspace import Workspace

pytestmark = [pytest.mark.server]

ROW = {"f0": 0.5, "f1": 1.0, "f2": -0.25, "f3": 2.0}
REQUESTS = 12


@pytest.fixture(scope="module")
def team(server_factory: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    server = server_factory()
    home = server.root / ".driftline"
    built = build_workspace(home, uri=server.uri)
    reset_default_workspace()
    with Workspace.from_settings(built["settings"]) as ws:
        ws.service("serving", DeploymentService).apply(
            {"name": "remote", "model": "churn", "stable": "champion", "shadow": {"version": 2}}
        )
    proc = ServeProcess(home, "--deployment=remote", uri=server.uri)
    try:
        proc.wait_ready()
        with httpx.Client(base_url=proc.url, timeout=30) as client:
            for i in range(REQUESTS):
                answer = client.post("/predict", json={"inputs": [{**ROW, "f0": i / 10}]})
                assert answer.status_code == 200, answer.text
        yield {"server": server, "settings": built["settings"], "proc": proc}
    finally:
        # One worker: after its graceful shutdown uvicorn re-raises the SIGTERM it caught.
        assert proc.stop() in (0, -signal.SIGTERM)


def logged(settings: Settings) -> dict[str, int]:
    with Workspace.from_settings(settings) as ws:
        table = ws.service("serving", DeploymentService).predictions("remote")
    variants = table.column("variant").to_pylist()
    return {v: variants.count(v) for v in set(variants)}


def test_a_remote_client_gets_status_and_compare_figures_from_the_server(
    team: dict[str, Any], tmp_path: Path
) -> None:
    deadline = time.monotonic() + 30
    while logged(team["settings"]) != {"stable": REQUESTS, "shadow": REQUESTS}:
        assert time.monotonic() < deadline, logged(team["settings"])
        time.sleep(0.05)
    with Workspace.from_settings(team["settings"]) as ws:  # on the server's own stores
        local = ws.service("serving", DeploymentService).compare("remote")

    client = Settings.load(uri=team["server"].url, home=tmp_path / "client")
    with Workspace.from_settings(client) as ws:
        assert ws.is_remote
        service = ws.service("serving", DeploymentService)
        status = service.status("remote", window=3600)
        compared = service.compare("remote")
        later = service.compare("remote", since=datetime.now(UTC) + timedelta(hours=1))
        earlier = service.compare("remote", until=datetime.now(UTC) - timedelta(hours=1))
        # Nothing of the log is on this side: the figures can only be the server's.
        assert service.predictions("remote").num_rows == 0

    assert status["name"] == "remote"
    assert status["window_seconds"] == 3600
    assert {v: f["requests"] for v, f in status["figures"].items()} == {
        "stable": REQUESTS, "shadow": REQUESTS,
    }  # fmt: skip
    assert compared == local
    assert later == earlier == {"figures": {}, "pairs": []}  # the bounds reach the server
    (pair,) = compared["pairs"]
    assert pair["variants"] == ["shadow", "stable"]
    assert pair["requests"] == REQUESTS
    assert pair["agreement"] < 0.5  # v2 predicts the opposite of v1 (see conftest)

    # The CLI of the client says the same.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    base = [sys.executable, "-m", "driftline.cli", "--home", str(tmp_path / "client"),
            "--uri", team["server"].url, "deploy"]  # fmt: skip
    shown = subprocess.run(
        [*base, "status", "remote", "--window", "3600", "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["figures"]["shadow"]["requests"] == REQUESTS
    table = subprocess.run(
        [*base, "compare", "remote"], capture_output=True, text=True, env=env, timeout=120,
        check=False,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "shadow" in table.stdout
    assert "stable" in table.stdout


def test_a_remote_client_asking_for_an_unknown_deployment_gets_not_found(
    team: dict[str, Any], tmp_path: Path
) -> None:
    from driftline.errors import NotFoundError

    client = Settings.load(uri=team["server"].url, home=tmp_path / "client")
    with Workspace.from_settings(client) as ws:
        service = ws.service("serving", DeploymentService)
        with pytest.raises(NotFoundError, match="remot"):
            service.status("remot")
        with pytest.raises(NotFoundError, match="remot"):
            service.compare("remot")
