"""The audit log as a kernel service: one reader for every stage, embedded and remote.

Stores append in their own transactions; everything reads through ``Workspace.audit``
(the composition root's :class:`~driftline.core.auditlog.AuditLog`), which is the
database's in an embedded workspace and the server's in a remote one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftline.core.auditlog import HttpAuditLog, SqlAuditLog
from driftline.registry.service import MODEL_ENTITIES
from driftline.workspace import Workspace

pytestmark = pytest.mark.server


def fill(ws: Workspace, tmp_path: Path) -> None:
    """Entries of two stages: a dataset tag (data) and a model, version and alias."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    (folder / "a.csv").write_text("x\n1\n")
    ws.data.commit("customers", folder)
    ws.data.tag("customers@1", "october")
    package = tmp_path / "package"
    package.mkdir(exist_ok=True)
    (package / "driftline-model.json").write_text(json.dumps({"flavor": "sklearn"}))
    (package / "model.bin").write_bytes(b"weights")
    ws.registry.register_model(package, "churn")
    ws.registry.register_model(package, "churn-v2")
    ws.registry.set_alias("churn", "champion", 1)


def test_every_stage_is_read_through_the_one_audit_log(
    server: Any, open_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    remote = open_workspace(server.url)
    embedded = open_workspace(f"sqlite:///{tmp_path / 'embedded.db'}")
    assert isinstance(remote.audit, HttpAuditLog)
    assert isinstance(embedded.audit, SqlAuditLog)
    for ws in (remote, embedded):
        fill(ws, tmp_path / ("remote" if ws is remote else "embedded"))
        everything = ws.audit.entries(limit=None)
        assert {e.entity_type for e in everything} >= {"dataset", *MODEL_ENTITIES}
        tags = ws.audit.entries(entity_types={"dataset"})
        assert [(e.action, e.entity) for e in tags] == [("tag", "customers@october")]
        churn = ws.audit.entries(entity="churn", entity_types=MODEL_ENTITIES)
        assert [e.entity for e in churn] == ["churn@champion", "churn/1", "churn"]
        # The registry's model history is this same reader, narrowed to the model.
        assert ws.registry.audit_log(model="churn") == churn
        assert ws.audit.entries(limit=2) == everything[:2]
        assert everything.omitted == ()  # no auth: nothing left out
        # Left out before the limit, so a page is full of the other types.
        others = [e for e in everything if e.entity_type != "dataset"]
        assert ws.audit.entries(excluding={"dataset"}, limit=2) == others[:2]
        assert ws.audit.entries(entity="customers", excluding={"dataset"}) == []
        assert ws.audit.verify().ok
    remote_entities = [e.entity for e in remote.audit.entries(limit=None)]
    assert remote_entities == [e.entity for e in embedded.audit.entries(limit=None)]


def test_the_audit_routes_are_the_kernels(server: Any) -> None:
    url = f"{server.url}/api/v1/audit"
    answer = httpx.get(url, params={"entity_type": ["model", "alias"], "limit": 5}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"entries": [], "omitted": []}
    verified = httpx.get(f"{url}/verify", timeout=30)
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True


def test_a_server_without_the_registry_still_serves_its_audit_log(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from driftline.server.app import create_app
    from driftline.settings import Settings

    settings = Settings.load(
        home=tmp_path / ".driftline", capture_environment=False, async_logging=False
    )
    stages = ["driftline.tracking.stage:STAGE", "driftline.data.stage:STAGE"]
    with TestClient(create_app(settings, stages=stages)) as client:
        answer = client.get("/api/v1/audit/verify")
        assert answer.status_code == 200, answer.text
        assert answer.json()["ok"] is True
