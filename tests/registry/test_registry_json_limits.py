"""Free-form JSON of the registry (evaluation metrics, alias-move details, audit entries)
at the depth limit is stored and read back on every backend; one level more is refused
and nothing of the refused write is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from driftline.core.clock import utcnow
from driftline.core.ids import new_id
from driftline.core.jsonvalues import MAX_JSON_DEPTH
from driftline.errors import InvalidArgumentError
from driftline.registry import Evaluation
from driftline.workspace import Workspace


def nested(depth: int) -> Any:
    value: Any = 0.5
    for _ in range(depth):
        value = {"a": value}
    return value


def _registered(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "driftline-model.json").write_text(json.dumps({"flavor": "sklearn"}))
    (folder / "model.bin").write_bytes(b"model")
    run = ws.tracking.create_run("train")
    ws.tracking.log_artifacts(run.id, folder, "model")
    ws.registry.register_model(f"runs:/{run.id}/model", "churn")


def _evaluation(metrics: dict[str, Any]) -> Evaluation:
    return Evaluation(
        id=new_id()[:32], name="churn", version=1, dataset=None, target="y",
        task="binary", rows=10, metrics=metrics, slices={}, created_at=utcnow(),
    )  # fmt: skip


def test_evaluation_metrics_at_the_depth_limit_are_read_back(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    _registered(ws, tmp_path)
    # The metrics object is one level; its value may nest the remaining ones.
    at_limit = {"auc": nested(MAX_JSON_DEPTH - 1)}
    ws.registry.store.add_evaluation(_evaluation(at_limit))
    with pytest.raises(InvalidArgumentError, match="metrics of an evaluation nests deeper"):
        ws.registry.store.add_evaluation(_evaluation({"auc": nested(MAX_JSON_DEPTH)}))
    stored = ws.registry.store.list_evaluations("churn", 1)
    assert [e.metrics for e in stored] == [at_limit]
    assert ws.registry.card_facts("churn/1") is not None


def test_alias_details_one_level_too_deep_are_refused_and_the_audit_reads(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    _registered(ws, tmp_path)
    with pytest.raises(InvalidArgumentError, match="details of an alias move"):
        ws.registry.store.move_alias(
            "churn", "champion", 1, expected=None, actor="a", reason="set",
            details={"gates": nested(MAX_JSON_DEPTH)},
        )  # fmt: skip
    assert "champion" not in ws.registry.get_model("churn").aliases
    details = {"gates": nested(MAX_JSON_DEPTH - 1)}
    ws.registry.store.move_alias(
        "churn", "champion", 1, expected=None, actor="a", reason="set",
        details=details,
    )  # fmt: skip
    moves = [e for e in ws.registry.audit_log() if e.action == "alias_set"]
    assert [e.after for e in moves] == [{"version": 1, **details}]
    assert ws.registry.verify_audit().ok
