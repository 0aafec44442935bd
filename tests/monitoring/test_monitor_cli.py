"""``driftline monitor``: create, run (exit codes for cron), status, list, history, alerts,
report, and one-line typed errors for bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from monitor_traffic import frame, receiver, write_traffic

import driftline as dl
from driftline.cli import main

DAY1 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def run(capsys: Any, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from driftline.core.session import default_workspace

    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / ".driftline"))
    monkeypatch.setenv("DRIFTLINE_CAPTURE_ENVIRONMENT", "false")
    frame(3_000, seed=1).to_parquet(tmp_path / "train.parquet")
    dl.data.commit("customers", tmp_path / "train.parquet")
    ws: Any = default_workspace()
    write_traffic(ws, "churn", frame(500, seed=2), at=DAY1)
    write_traffic(ws, "churn", frame(500, seed=3, shift=1.0), at=DAY1 + timedelta(days=1))
    return tmp_path


def test_monitor_commands_from_create_to_report(project: Path, capsys: Any) -> None:
    with receiver() as hook:
        code, out, err = run(
            capsys, "monitor", "create", "churn-prod", "--deployment", "churn", "--window",
            "1d", "--checks", "drift", "--reference", "customers@1",
            "--alert", f"webhook:{hook.url}", "--alert", "log",
        )  # fmt: skip
        assert code == 0, err
        assert "driftline monitor run churn-prod" in out

        code, out, err = run(capsys, "monitor", "run", "churn-prod", "--at", "2026-03-01T12:01")
        assert code == 0, err
        assert "healthy" in out

        at = "2026-03-02T12:01:00+00:00"
        code, out, err = run(capsys, "monitor", "run", "churn-prod", "--at", at, "--json")
        assert code == 1
        result = json.loads(out)
        assert result["healthy"] is False
        (alert,) = result["raised"]
        assert "age" in alert["message"]
        assert "driftline alert [warning] monitor churn-prod" in err  # the log channel
        assert [b["alert"]["id"] for b in hook.bodies] == [alert["id"]]
        states = {d["channel"].split(":")[0]: d["state"] for d in result["deliveries"]}
        assert states == {"webhook": "delivered", "log": "delivered"}

    code, out, _ = run(capsys, "monitor", "status", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["latest"]["status"] == "alert"
    code, out, _ = run(capsys, "monitor", "list", "--json")
    assert [m["name"] for m in json.loads(out)] == ["churn-prod"]
    code, out, _ = run(capsys, "monitor", "history", "churn-prod", "--json")
    assert [e["status"] for e in json.loads(out)] == ["healthy", "alert"]
    code, out, _ = run(capsys, "monitor", "history", "churn-prod")
    assert code == 0
    assert "drift.drift_share" in out
    code, out, _ = run(capsys, "monitor", "alerts", "--monitor", "churn-prod", "--json")
    assert [a["id"] for a in json.loads(out)] == [alert["id"]]
    code, out, err = run(
        capsys, "monitor", "report", "churn-prod", "--since", "3650d", "--html", "report.html"
    )
    assert code == 0, err
    page = (project / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<circle class='alert'" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--deployment", "nope"], "Unknown deployment 'nope'"),
        (["--deployment", "churn", "--checks", "drift,qualty"], "known checks are drift"),
        (["--deployment", "churn", "--window", "1x"], "Invalid window '1x'"),
        (["--deployment", "churn", "--alert", "webhook:ftp://h/x"], "http:// or https://"),
        (["--deployment", "churn", "--cooldown", "soon"], "Invalid cooldown 'soon'"),
    ],
)
def test_bad_input_is_a_one_line_typed_error(
    project: Path, capsys: Any, args: list[str], message: str
) -> None:
    code, _, err = run(capsys, "monitor", "create", "m", *args)
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "monitor", "run", "nope")
    assert code == 1
    assert "NotFoundError" in err
    code, _, err = run(capsys, "monitor", "history", "nope", "--since", "yesterday")
    assert code == 1
    assert "Invalid --since" in err


def test_a_failing_check_exits_1_and_says_why(project: Path, capsys: Any) -> None:
    code, _, err = run(
        capsys, "monitor", "create", "m", "--deployment", "churn", "--reference", "customers@9"
    )
    assert code == 0, err
    code, out, _ = run(capsys, "monitor", "run", "m", "--at", "2026-03-01T12:01")
    assert code == 1
    assert "error" in out
    assert "NotFoundError" in " ".join(out.split())
    code, out, _ = run(capsys, "monitor", "run", "m", "--at", "2026-01-01T00:00")
    assert code == 0  # an empty window: insufficient data, not an alert
    assert "insufficient data" in out
