"""What monitoring adds to a serving process, over real HTTP: the live metric judging a
canary from labels, and the monitors' alert gauges on ``/metrics``.

The canary (churn v2) predicts the opposite class of stable (v1, see conftest): its
errors, latency and prediction spread look as good as stable's, and only the labels
show that it is wrong.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.serving.conftest import ServeProcess, build_workspace, reset_default_workspace

from driftline.monitoring import MonitoringService
from driftline.serving.deployments import DeploymentService
from driftline.workspace import Workspace

pytestmark = [pytest.mark.server]

CHECKS = {
    # Loose on purpose: these pass for the opposite-class canary (asserted below).
    "error_rate": 0.5, "p99_ms_ratio": 100, "score_psi": 50,
    "metric": {"name": "accuracy", "max_drop": 0.1, "min_labels": 20},
}  # fmt: skip
SPEC = {
    "name": "live", "model": "churn", "stable": "champion",
    "canary": {"version": 2, "steps": [50], "interval": "0.3s", "min_requests": 10,
               "max_failed_checks": 1, "checks": CHECKS},
}  # fmt: skip
REQUESTS = 140


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("live") / ".driftline"
    found = build_workspace(home)
    reset_default_workspace()
    with Workspace.from_settings(found["settings"]) as ws:
        ws.service("serving", DeploymentService).apply(SPEC)
    proc = ServeProcess(home, "--deployment=live")
    try:
        yield {**found, "home": home, "proc": proc.wait_ready()}
    finally:
        # One worker: after its graceful shutdown uvicorn re-raises the SIGTERM it caught.
        assert proc.stop() in (0, -signal.SIGTERM)


def call(built: dict[str, Any], fn: Callable[[Workspace], Any]) -> Any:
    with Workspace.from_settings(built["settings"]) as ws:
        return fn(ws)


def deployment(built: dict[str, Any]) -> Any:
    return call(built, lambda ws: ws.service("serving", DeploymentService).get_deployment("live"))


def send_traffic(url: str) -> list[dict[str, Any]]:
    """Requests with known ids and rows; their true label is ``f0 + 0.5 f1 > 0``."""
    import numpy as np

    rng = np.random.default_rng(7)
    sent = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(REQUESTS):
            row = {f"f{j}": float(v) for j, v in enumerate(rng.normal(size=4))}
            answer = client.post(
                "/predict", json={"inputs": [row]},
                headers={"X-Request-ID": f"req-{i}", "X-Routing-Key": f"key-{i}"},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            label = int(row["f0"] + 0.5 * row["f1"] > 0)
            sent.append({"request_id": f"req-{i}", "label": label, **answer.json(), **row})
    return sent


def log_labels(built: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    frame = pd.DataFrame({"request_id": [r["request_id"] for r in rows],
                          "label": [r["label"] for r in rows]})  # fmt: skip
    ingest = call(built, lambda ws: ws.service("monitoring", MonitoringService).log_labels(
        "live", frame))  # fmt: skip
    assert (ingest.inserted, ingest.unknown) == (len(rows), 0)


def checks_of(record: Any) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in record.rollout.last_check["checks"]}


def test_the_live_metric_waits_on_thin_labels_then_rolls_a_wrong_canary_back(
    built: dict[str, Any],
) -> None:
    sent = send_traffic(built["proc"].url)
    by_variant = {v: [r for r in sent if r["variant"] == v] for v in ("stable", "canary")}
    assert min(len(rows) for rows in by_variant.values()) >= 40
    # The canary answers the opposite class: right on few, where stable is right on most.
    right = {v: sum(r["predictions"][0] == r["label"] for r in rows) / len(rows)
             for v, rows in by_variant.items()}  # fmt: skip
    assert right["stable"] > 0.8 > 0.2 > right["canary"]

    # Every request is in the prediction log before labels can name it.
    wait_for(
        lambda: call(built, lambda ws: ws.service("serving", DeploymentService).predictions(
            "live")).num_rows >= REQUESTS, 30, "the prediction log",
    )  # fmt: skip
    thin = by_variant["stable"][:5] + by_variant["canary"][:5]
    log_labels(built, thin)

    def waiting_on_thin_labels() -> Any:
        record = deployment(built)
        check = record.rollout.last_check
        if check is None or check["verdict"] != "wait" or "live_metric" not in checks_of(record):
            return None
        figures = checks_of(record)["live_metric"]["figures"]
        labelled = {v: f["labelled"] for v, f in figures.items()}
        return record if labelled == {"stable": 5, "canary": 5} else None

    waiting = wait_for(waiting_on_thin_labels, 60, "a check waiting on thin labels")
    assert waiting.rollout.state == "progressing"
    assert "live_metric waits: too few labels for accuracy: canary 5, stable 5" in (
        waiting.rollout.message
    )
    found = checks_of(waiting)
    assert [found[c]["passed"] for c in ("error_rate", "p99_ms_ratio", "score_psi")] == [True] * 3
    assert found["live_metric"]["passed"] is None
    assert deployment(built).rollout.failed_checks == 0

    log_labels(built, [r for r in sent if r not in thin])
    rolled = wait_for(
        lambda: (d := deployment(built)).rollout.state != "progressing" and d,
        60, "the live metric's verdict",
    )  # fmt: skip
    assert rolled.rollout.state == "rolled_back", rolled.rollout.message
    assert "failed: live_metric" in rolled.rollout.message
    found = checks_of(rolled)
    assert [found[c]["passed"] for c in ("error_rate", "p99_ms_ratio", "score_psi")] == [True] * 3
    live = found["live_metric"]
    assert live["passed"] is False
    figures = live["figures"]
    assert figures["stable"]["accuracy"] == pytest.approx(right["stable"], abs=1e-6)
    assert figures["canary"]["accuracy"] == pytest.approx(right["canary"], abs=1e-6)
    assert live["measured"] == pytest.approx(right["stable"] - right["canary"], abs=1e-6)
    entry = call(built, lambda ws: ws.service("serving", DeploymentService).history("live"))[0]
    assert entry.action == "deploy_rollback"


def test_metrics_carry_the_monitor_gauges_after_an_alert(built: dict[str, Any]) -> None:
    import numpy as np
    import pandas as pd
    from prometheus_client.parser import text_string_to_metric_families

    import driftline as dl

    url = built["proc"].url
    if call(built, lambda ws: ws.service("serving", DeploymentService).predictions(
            "live")).num_rows < REQUESTS:  # fmt: skip
        send_traffic(url)
    before = httpx.get(f"{url}/metrics").text
    assert "driftline_serving_requests_total" in before
    assert "driftline_monitor_check_severity{" not in before  # no monitor has run

    # A reference far from the served traffic: the monitor's drift check alerts.
    rng = np.random.default_rng(3)
    shifted = pd.DataFrame(rng.normal(loc=25.0, size=(500, 4)), columns=["f0", "f1", "f2", "f3"])
    path = built["home"].parent / "shifted.parquet"
    shifted.to_parquet(path)
    dl.configure(home=built["home"], capture_environment=False)
    try:
        dl.data.commit("served-inputs", path)
        dl.monitoring.create_monitor(
            "live-drift", deployment="live", window="1h", reference="served-inputs@1"
        )
        result = dl.monitoring.run_monitor(
            "live-drift", at=datetime.now(UTC) + timedelta(seconds=1)
        )
        assert not result.healthy
        assert [a.check for a in result.raised] == ["drift"]
    finally:
        dl.get_workspace().close()
        reset_default_workspace()

    def gauges() -> dict[str, float] | None:
        text = httpx.get(f"{url}/metrics").text
        found = {
            s.name: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.labels.get("monitor") == "live-drift" and s.labels.get("deployment") == "live"
            and s.labels.get("check", "drift") == "drift"
        }  # fmt: skip
        return found or None

    # The serving process re-reads the monitors at most every few seconds.
    found = wait_for(gauges, 30, "the monitor's gauges on /metrics")
    assert found["driftline_monitor_healthy"] == 0.0
    assert found["driftline_monitor_check_severity"] >= 1.0
    text = httpx.get(f"{url}/metrics").text
    assert "driftline_serving_requests_total" in text  # serving's own figures still there
