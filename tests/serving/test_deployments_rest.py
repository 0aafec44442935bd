"""Deployments through the team server's REST API, with ``--auth`` grants checked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.serving.conftest import build_workspace, reset_default_workspace

pytestmark = [pytest.mark.server]

SPEC = {
    "name": "churn-api", "model": "churn", "stable": "champion",
    "canary": {"version": 2, "steps": [10, 50], "interval": "1h"},
}  # fmt: skip


@dataclass
class Team:
    url: str
    tokens: dict[str, str]

    def call(self, method: str, path: str, who: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=60,
                             **kwargs)  # fmt: skip


@pytest.fixture(scope="module")
def team(server_factory: Callable[..., Any]) -> Iterator[Team]:
    from driftline.auth import auth_service
    from driftline.core.metadata import Database

    # A team server allows public webhooks only by default; these tests post to loopback.
    server = server_factory(args=("--auth",), env={"DRIFTLINE_WEBHOOK_ALLOW": "127.0.0.1"})
    build_workspace(server.root / ".driftline", uri=server.uri)
    reset_default_workspace()
    database = Database(server.uri)
    auth = auth_service(database, actor="bootstrap")
    tokens = {}
    try:
        for name, role in (("ada", "admin"), ("vic", "viewer"), ("max", "viewer")):
            auth.create_user(name, role=role)
            tokens[name] = auth.create_token(name).secret
        auth.grant("max", model="churn", permission="manage")
    finally:
        auth.close()
        database.dispose()
    return Team(server.url, tokens)


def test_deployments_over_rest_with_grants(team: Team) -> None:
    refused = team.call("PUT", "/deployments", "vic", json=SPEC)
    assert refused.status_code == 403, refused.text
    made = team.call("PUT", "/deployments", "ada", json=SPEC)
    assert made.status_code == 200, made.text
    assert made.json()["rollout"]["state"] == "progressing"
    assert made.json()["updated_by"] == "ada"
    listed = team.call("GET", "/deployments", "vic").json()["deployments"]
    assert [d["spec"]["name"] for d in listed] == ["churn-api"]
    status = team.call("GET", "/deployments/churn-api/status", "vic").json()
    assert status["weights"] == {"stable": 90, "canary": 10}
    assert team.call("POST", "/deployments/churn-api/pause", "vic").status_code == 403
    paused = team.call("POST", "/deployments/churn-api/pause", "max")  # a manage grant
    assert paused.status_code == 200, paused.text
    assert paused.json()["rollout"]["state"] == "paused"
    conflict = team.call("POST", "/deployments/churn-api/pause", "max")
    assert conflict.status_code == 409
    assert "only a progressing rollout" in conflict.json()["error"]["message"]
    back = team.call("POST", "/deployments/churn-api/rollback", "ada", params={"reason": "api"})
    assert back.json()["rollout"]["state"] == "rolled_back"
    entries = team.call("GET", "/deployments/churn-api/history", "vic").json()["entries"]
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("ada", "deploy_rollback"), ("max", "deploy_pause"), ("ada", "deploy_apply"),
    ]  # fmt: skip
    bad = team.call("PUT", "/deployments", "ada", json={**SPEC, "canary": {"version": 2,
                    "steps": [50, 5]}})  # fmt: skip
    assert bad.status_code == 400
    assert "canary.steps must rise" in bad.json()["error"]["message"]
    missing = team.call("GET", "/deployments/nope", "ada")
    assert missing.status_code == 404
    unknown_version = team.call("PUT", "/deployments", "ada",
                                json={**SPEC, "canary": {"version": 42}})  # fmt: skip
    assert unknown_version.status_code == 404


def test_a_remote_workspace_uses_the_http_store(team: Team, tmp_path: Path) -> None:
    from driftline.errors import ConflictError, PermissionDeniedError
    from driftline.serving.deployments import DeploymentService
    from driftline.workspace import Workspace

    def remote(who: str) -> Workspace:
        return Workspace.from_settings(
            home=tmp_path / who, uri=team.url, token=team.tokens[who], capture_environment=False
        )

    spec = {
        **SPEC, "name": "remote", "shadow": {"version": 2, "sample": 0.5},
        "batching": {"max_batch_size": 4}, "gates": {"gates": [{"signature": "compatible"}]},
    }  # fmt: skip
    with remote("ada") as ws:
        service = ws.service("serving", DeploymentService)
        made = service.apply(spec)  # the rules here, the compare-and-set on the server
        assert made.rollout.canary_version == 2
        assert service.get_deployment("remote") == made
        assert service.apply(spec).generation == made.generation  # unchanged
        stale = service.pause("remote")
        with pytest.raises(ConflictError, match="changed meanwhile"):
            service.store.save_deployment(made, expected=made.generation, actor="x", action=None)
        assert [e.action for e in service.history("remote")] == ["deploy_pause", "deploy_apply"]
        assert service.history("remote")[0].actor == "ada"  # the server names the caller
        assert stale.rollout.state == "paused"
    with remote("vic") as ws:
        service = ws.service("serving", DeploymentService)
        assert service.get_deployment("remote").rollout.state == "paused"
        with pytest.raises(PermissionDeniedError):
            service.resume("remote")
    bad = team.call("PUT", "/deployments/remote/record", "ada",
                    json={"deployment": {"spec": {}}, "expected": 1})  # fmt: skip
    assert bad.status_code == 400
    forged = team.call("PUT", "/deployments/remote/record", "ada",
                       json={"deployment": {}, "action": "deploy_whatever"})  # fmt: skip
    assert forged.status_code == 400


def test_a_missed_notification_of_a_remote_process_is_noted_on_the_server(
    team: Team, tmp_path: Path
) -> None:
    from tests.conftest import free_port

    from driftline.core.notify import DeliveryPolicy
    from driftline.serving.deployments import DeploymentService
    from driftline.workspace import Workspace

    dead = f"webhook:http://127.0.0.1:{free_port()}/hook"
    spec = {**SPEC, "name": "remote-told", "alerts": [dead]}
    with Workspace.from_settings(
        home=tmp_path / "ada", uri=team.url, token=team.tokens["ada"], capture_environment=False
    ) as ws:
        service = ws.service("serving", DeploymentService)
        service.delivery = DeliveryPolicy(attempts=1, backoff=0.0, timeout=5.0)
        assert service.apply(spec).spec.alerts == (dead,)
        rolled = service.rollback("remote-told", reason="bad canary")
        assert rolled.rollout.state == "rolled_back"
        (noted, *_) = service.history("remote-told")
    assert (noted.actor, noted.action) == ("ada", "deploy_notify_failed")
    assert noted.after["event"] == "deployment.rolled_back"
    assert noted.after["failed"][0]["channel"] == dead
    note = {"action": "deploy_notify_failed", "details": {"event": "x"}}
    refused = team.call("POST", "/deployments/remote-told/notes", "vic", json=note)
    assert refused.status_code == 403
    forged = team.call("POST", "/deployments/remote-told/notes", "ada",
                       json={**note, "action": "deploy_promote"})  # fmt: skip
    assert forged.status_code == 400
    assert "Unknown action" in forged.json()["error"]["message"]


def test_the_server_refuses_a_webhook_its_setting_does_not_allow_whatever_the_clients_says(
    team: Team, tmp_path: Path
) -> None:
    from driftline.errors import InvalidArgumentError
    from driftline.serving.deployments import DeploymentService
    from driftline.workspace import Workspace

    metadata = "webhook:http://169.254.169.254/latest/meta-data/"
    elsewhere = "webhook:http://10.9.8.7/hook"  # not in the server's webhook_allow
    with Workspace.from_settings(
        home=tmp_path / "ada", uri=team.url, token=team.tokens["ada"],
        capture_environment=False, webhook_allow="*",
    ) as ws:  # fmt: skip
        service = ws.service("serving", DeploymentService)
        for channel in (metadata, elsewhere):
            with pytest.raises(InvalidArgumentError, match=r"alerts\[0\].*webhook_allow"):
                service.apply({**SPEC, "name": "aimed", "alerts": [channel]})
    spec = {**SPEC, "name": "aimed", "alerts": ["log", metadata]}
    refused = team.call("PUT", "/deployments", "ada", json=spec)
    assert refused.status_code == 400, refused.text
    message = refused.json()["error"]["message"]
    assert "alerts[1]" in message
    assert "metadata" in message
    assert "webhook_allow" in message
    assert team.call("GET", "/deployments/aimed", "ada").status_code == 404


def test_specs_round_trip_through_the_yaml_structure() -> None:
    from driftline.serving.spec import parse_spec, spec_from_dict, spec_to_dict

    spec = parse_spec(
        "name: churn\nmodel: churn\nstable: champion\n"
        "canary: {version: challenger, steps: [5, 25, 50, 100], interval: 60s,\n"
        "         min_requests: 200, max_failed_checks: 3,\n"
        "         checks: {error_rate: 0.01, p99_ms_ratio: 1.5, score_psi: 0.2}}\n"
        "shadow: {version: 7, sample: 1.0}\nbatching: {max_batch_size: 64, max_latency_ms: 5}\n"
        "prediction_log: {sample: 1.0}\nrouting_key: customer_id\n"
    )
    assert spec.canary is not None
    assert spec.canary.interval == 60.0
    assert spec_from_dict(spec_to_dict(spec)) == spec
