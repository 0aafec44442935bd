"""`driftline serve --deployment`: routing, sticky A/B, shadow, and a canary rolled out by
the serving processes themselves (promoted, then a bad one rolled back), over real HTTP.

The churn versions (see conftest): v1 ``picky`` raises on ``f0 == 13``; v2 is a plain
logistic regression; both warm up fine, so either can be a canary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import WebhookReceiver
from tests.serving.conftest import ServeProcess, build_workspace, reset_default_workspace

from driftline.serving.deployments import DeploymentService
from driftline.serving.routing import bucket_of
from driftline.workspace import Workspace

pytestmark = [pytest.mark.server]

ROW = {"f0": 0.5, "f1": 1.0, "f2": -0.25, "f3": 2.0}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("rollouts") / ".driftline"
    found = build_workspace(home)
    reset_default_workspace()
    return {**found, "home": home}


def apply(built: dict[str, Any], spec: dict[str, Any]) -> Any:
    with Workspace.from_settings(built["settings"]) as ws:
        return ws.service("serving", DeploymentService).apply(spec)


def service_call(built: dict[str, Any], fn: Callable[[DeploymentService], Any]) -> Any:
    with Workspace.from_settings(built["settings"]) as ws:
        return fn(ws.service("serving", DeploymentService))


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def ab_server(built: dict[str, Any]) -> Iterator[ServeProcess]:
    apply(built, {
        "name": "ab", "model": "churn", "stable": "champion",
        "canary": {"version": 2, "steps": [50], "interval": "1h"},
        "shadow": {"version": 2}, "routing_key": "customer_id", "variant_override": True,
    })  # fmt: skip
    proc = ServeProcess(built["home"], "--deployment=ab")
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


def test_sticky_routing_by_key_override_and_shadow(
    built: dict[str, Any], ab_server: ServeProcess
) -> None:
    seen: dict[str, str] = {}
    with httpx.Client(base_url=ab_server.url, timeout=30) as client:
        for round_ in range(2):
            for i in range(30):
                key = f"customer-{i}"
                if i % 2:  # the routing key as a header
                    r = client.post("/predict", json={"inputs": [ROW]},
                                    headers={"X-Routing-Key": key})  # fmt: skip
                else:  # the spec's routing_key field of the input
                    r = client.post("/predict", json={"inputs": [{**ROW, "customer_id": key}]})
                assert r.status_code == 200, r.text
                body = r.json()
                expected = "canary" if bucket_of("ab", key) < 5000 else "stable"
                assert body["variant"] == expected, key
                assert body["model"] == ("churn/2" if expected == "canary" else "churn/1")
                if round_:
                    assert seen[key] == body["variant"]  # sticky
                seen[key] = body["variant"]
        assert set(seen.values()) == {"stable", "canary"}
        forced = client.post(
            "/predict", json={"inputs": [ROW]},
            headers={"X-Variant": "canary", "X-Request-ID": "forced-1"},
        )  # fmt: skip
        assert forced.json()["variant"] == "canary"
        metrics = client.get("/metrics").text
        assert 'variant="canary"' in metrics
        assert 'variant="shadow"' in wait_for(
            lambda: 'variant="shadow"' in (m := client.get("/metrics").text) and m, 30, "shadow"
        )
        assert "driftline_serving_shadow_dropped_total" in metrics
        status = client.get("/status").json()
        assert status["routing"]["rollout"]["canary_weight"] == 50
        assert set(status["routing"]["variants"]) == {"stable", "canary", "shadow"}

    def logged() -> Any:
        table = service_call(built, lambda s: s.predictions("ab"))
        rows = table.select(["request_id", "variant"]).to_pylist()
        return rows if sum(r["variant"] == "shadow" for r in rows) >= 61 else None

    rows = wait_for(logged, 30, "the shadow's rows in the prediction log")
    shadowed = {r["request_id"] for r in rows if r["variant"] == "shadow"}
    primary = {r["request_id"] for r in rows if r["variant"] != "shadow"}
    assert "forced-1" in shadowed
    assert shadowed <= primary
    compared = service_call(built, lambda s: s.compare("ab"))
    pairs = {tuple(p["variants"]): p for p in compared["pairs"]}
    # v2 predicts the opposite of v1 (see conftest): stable and shadow disagree, canary
    # (also v2) and shadow agree.
    assert pairs[("canary", "shadow")]["agreement"] == 1.0
    assert pairs[("shadow", "stable")]["agreement"] < 0.5


class Traffic:
    """Clients sending requests with random routing keys until stopped."""

    def __init__(self, url: str, row: dict[str, Any], clients: int = 2) -> None:
        self.url, self.row = url, row  # f0 of the row, unless given, varies by request
        self.answers: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(clients)]

    def _run(self, n: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                row = {**self.row, "f0": self.row.get("f0", (i % 7) - 3.1)}
                r = client.post("/predict", json={"inputs": [row]},
                                headers={"X-Routing-Key": f"{n}-{i}"})  # fmt: skip
                self.answers.append((r.status_code, r.json().get("variant", "")))

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def test_two_workers_roll_a_canary_out_then_roll_a_bad_one_back(
    built: dict[str, Any], tmp_path: Path, webhook: WebhookReceiver
) -> None:
    with Workspace.from_settings(built["settings"]) as ws:
        ws.registry.set_alias("churn", "prod", 1)
    checks = {"error_rate": 0.05, "p99_ms_ratio": 20, "score_psi": 10}
    canary = {"steps": [20, 50, 100], "interval": "0.3s", "min_requests": 10,
              "max_failed_checks": 2, "checks": checks}  # fmt: skip
    alerts = [f"webhook:{webhook.url}"]  # told by whichever worker decides
    apply(built, {"name": "roll", "model": "churn", "stable": "prod", "alerts": alerts,
                  "canary": {"version": 2, **canary}})  # fmt: skip
    proc = ServeProcess(built["home"], "--deployment=roll", "--workers", "2")
    try:
        proc.wait_ready()
        varied = {k: v for k, v in ROW.items() if k != "f0"}  # both classes predicted
        with Traffic(proc.url, varied):
            promoted = wait_for(
                lambda: (d := service_call(built, lambda s: s.get_deployment("roll")))
                and d.rollout.state in ("promoted", "rolled_back") and d,
                90, "the canary's promotion",
            )  # fmt: skip
        assert promoted.rollout.state == "promoted", promoted.rollout.message
        history = service_call(built, lambda s: s.history("roll"))
        # Exactly one process drove each check: one entry per step, none twice.
        assert [e.action for e in history] == ["deploy_promote", "deploy_step", "deploy_apply"]
        with Workspace.from_settings(built["settings"]) as ws:
            assert ws.registry.get_model("churn").aliases["prod"] == 2
        # The servers follow the alias: every request is answered by v2 now.
        wait_for(
            lambda: httpx.post(f"{proc.url}/predict", json={"inputs": [ROW]}).json()["model"]
            == "churn/2", 30, "the stable variant to follow the alias",
        )  # fmt: skip
        # A bad canary: v1 raises on f0 == 13, which this traffic sends.
        apply(built, {"name": "roll", "model": "churn", "stable": "prod", "alerts": alerts,
                      "canary": {"version": 1, **canary}})  # fmt: skip
        with Traffic(proc.url, {**ROW, "f0": 13.0}) as traffic:
            rolled = wait_for(
                lambda: (d := service_call(built, lambda s: s.get_deployment("roll")))
                and d.rollout.state != "progressing" and d,
                90, "the bad canary's rollback",
            )  # fmt: skip
        assert rolled.rollout.state == "rolled_back"
        assert "error_rate" in rolled.rollout.message
        assert any(status == 500 and variant == "canary" for status, variant in traffic.answers)
        actions = [e.action for e in service_call(built, lambda s: s.history("roll", limit=3))]
        assert actions == ["deploy_rollback", "deploy_check_failed", "deploy_apply"]

        # Rolled back: the canary takes no traffic any more, once every worker has read
        # the record (the two workers refresh on their own clocks, so poll a whole batch).
        def all_stable() -> bool:
            answers = [
                httpx.post(
                    f"{proc.url}/predict",
                    json={"inputs": [{**ROW, "f0": 13.0}]},
                    headers={"X-Routing-Key": str(i)},
                )
                for i in range(20)
            ]
            return all(a.status_code == 200 and a.json()["variant"] == "stable" for a in answers)

        wait_for(all_stable, 30, "every worker to stop routing to the canary")
        # A canary that cannot even warm up (v3 raises on everything) is rolled back by
        # the first serving process that fails to load it; the old versions keep serving.
        apply(built, {"name": "roll", "model": "churn", "stable": "prod", "alerts": alerts,
                      "canary": {"version": 3, **canary}})  # fmt: skip
        broken = wait_for(
            lambda: (d := service_call(built, lambda s: s.get_deployment("roll")))
            and d.rollout.state == "rolled_back" and d.rollout.canary_version == 3 and d,
            60, "the unloadable canary's rollback",
        )  # fmt: skip
        assert "canary churn/3 could not be loaded" in broken.rollout.message
        entry = service_call(built, lambda s: s.history("roll", limit=1))[0]
        assert entry.action == "deploy_rollback"
        assert entry.after["version"] == "churn/3"
        assert httpx.post(f"{proc.url}/predict", json={"inputs": [ROW]}).status_code == 200
        with Workspace.from_settings(built["settings"]) as ws:
            assert ws.registry.verify_audit().ok
        # Each transition was sent once, by the process that won it, after its write.
        wait_for(lambda: len(webhook.bodies) >= 3, 30, "the three rollout notifications")
        events = [(b["event"], b["from_version"], b["to_version"]) for b in webhook.bodies]
        assert events == [
            ("deployment.promoted", 1, 2),
            ("deployment.rolled_back", 1, 2),
            ("deployment.rolled_back", 3, 2),
        ]
        assert "error_rate" in webhook.bodies[1]["failed_checks"]
        assert webhook.bodies[2]["failed_checks"] == ["load"]
        assert len(set(webhook.keys)) == 3
    finally:
        assert proc.stop() == 0
