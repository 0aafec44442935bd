"""Hot swap on PostgreSQL with two workers: the alias moves under load, nothing fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.serving.conftest import ServeProcess, build_workspace, reset_default_workspace

pytestmark = [pytest.mark.server, pytest.mark.postgres, pytest.mark.slow]

ROWS = [{"f0": 0.5, "f1": 1.0, "f2": -0.25, "f3": 2.0}, {"f0": -2.0, "f1": -1.0, "f2": 0, "f3": 0}]


@pytest.fixture(scope="module")
def pg_server(postgres: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    url = postgres.url(postgres.create_database())
    home = tmp_path_factory.mktemp("serving-pg") / ".driftline"
    built = build_workspace(home, uri=url)
    reset_default_workspace()
    proc = ServeProcess(home, "churn@champion", "--workers", "2", uri=url)
    try:
        yield {**built, "server": proc.wait_ready(), "home": home, "uri": url}
    finally:
        proc.stop()


class Load:
    """Clients sending requests until stopped, counting answers by status and model."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.answers: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    r = client.post(f"{self.url}/predict", json={"inputs": ROWS})
                    model = r.json().get("model") if r.status_code == 200 else r.text
                    self.answers.append((r.status_code, model))
                except httpx.HTTPError as exc:
                    self.answers.append((0, repr(exc)))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def recent(self, n: int) -> list[tuple[int, str | None]]:
        return self.answers[-n:]


def _set_alias(built: dict[str, Any], version: int) -> None:
    from driftline.workspace import Workspace

    with Workspace.from_settings(built["settings"]) as ws:
        ws.registry.set_alias("churn", "champion", version)


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_alias_moves_under_load_without_a_failed_request(pg_server: dict[str, Any]) -> None:
    server = pg_server["server"]
    versions = pg_server["versions"]
    with Load(server.url) as load:
        _wait(lambda: len(load.answers) > 20, 30, "the first answers")
        _set_alias(pg_server, versions["sklearn"])
        # Both workers swap: every recent answer comes from the new version, and each
        # worker counted its swap (the clients' connections may all sit on one worker).
        swapped = 'driftline_serving_swaps_total{deployment="churn",result="ok"} 2.0'
        _wait(
            lambda: (
                len(load.recent(40)) == 40
                and all(m == "churn/2" for _, m in load.recent(40))
                and swapped in httpx.get(f"{server.url}/metrics").text
            ),
            30,
            "churn/2 to answer on every worker",
        )
        # A version that cannot predict is refused; the old one keeps serving.
        _set_alias(pg_server, versions["broken"])

        def refused() -> bool:
            swaps = httpx.get(f"{server.url}/status").json()["swaps"]
            return any(s["version"] == versions["broken"] and not s["ok"] for s in swaps)

        _wait(refused, 30, "the broken version to be refused")
        mark = len(load.answers)
        _wait(lambda: len(load.answers) > mark + 40, 30, "answers after the refusal")
    failed = [a for a in load.answers if a[0] != 200]
    assert not failed, failed[:5]
    assert {m for _, m in load.answers[mark:]} == {"churn/2"}
    status = httpx.get(f"{server.url}/status").json()
    assert status["version"] == versions["sklearn"]
    refusal = next(s for s in status["swaps"] if not s["ok"])
    assert "RuntimeError: this version cannot predict" in refusal["error"]
    meta = httpx.get(f"{server.url}/v2/models/churn").json()
    assert meta["versions"] == [str(versions["sklearn"])]
    # New answers are the new model's: it predicts the opposite of v1.
    r = httpx.post(f"{server.url}/predict", json={"inputs": ROWS})
    assert r.json()["predictions"] == [0, 1]
    # Both workers' figures in one /metrics (multiprocess mode).
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'driftline_serving_swaps_total{deployment="churn",result="ok"} 2.0' in metrics


def test_prediction_log_root_is_outside_the_swept_keys(tmp_path: Path) -> None:
    from driftline.serving.predlog import prediction_root

    assert prediction_root(tmp_path, str(tmp_path / "artifacts")) == str(tmp_path / "predictions")
    assert prediction_root(tmp_path, "s3://bucket/prefix") == "s3://bucket/prefix/predictions"
