"""A team server decides where webhooks may go (its ``webhook_allow`` setting, by
default public hosts only): a monitor aimed at the cloud metadata service or at the
server's own loopback is a 400 naming the setting, on a real ``driftline server``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

MONITORS = "/api/v1/monitoring/monitors"


@pytest.mark.server
def test_a_monitor_webhook_at_an_internal_address_is_a_400(server: Any) -> None:
    def create(alert: str) -> httpx.Response:
        body = {"name": "aimed", "deployment": "churn", "alerts": ["log", alert]}
        return httpx.post(server.url + MONITORS, json=body, timeout=60)

    for aimed, why in (
        ("webhook:http://169.254.169.254/latest/meta-data/", "link-local or cloud metadata"),
        ("webhook:http://[fd00:ec2::254]/latest/", "link-local or cloud metadata"),
        ("webhook:http://127.0.0.1:5432/", "not allowed by webhook_allow"),
        ("webhook:http://localhost:8080/admin", "not allowed by webhook_allow"),
        ("webhook:http://10.0.0.7/hook", "not allowed by webhook_allow"),
    ):
        refused = create(aimed)
        assert refused.status_code == 400, (aimed, refused.text)
        message = refused.json()["error"]["message"]
        assert why in message, message
        assert "DRIFTLINE_WEBHOOK_ALLOW" in message, message
    # A public address passes the check: what stops it is the unknown deployment.
    allowed = create("webhook:https://93.184.216.34/hook")
    assert allowed.status_code == 404, allowed.text
    assert "Unknown deployment 'churn'" in allowed.json()["error"]["message"]
    assert httpx.get(server.url + MONITORS, timeout=60).json()["monitors"] == []
