"""A monitor's over-time report in a real headless Chromium: it loads offline, logs no
console error, its time series, alert timeline and distributions render; a screenshot is
taken. Skipped without Chromium, except under ``CI=true`` (see test_report_browser)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from monitor_traffic import frame, write_traffic
from test_report_browser import browser, headless

import driftline as dl
from driftline.workspace import Workspace

START = datetime(2026, 4, 1, 12, tzinfo=UTC)


def history(ws: Workspace, tmp_path: Path, days: int = 5) -> str:
    frame(3_000, seed=1).to_parquet(tmp_path / "train.parquet")
    dl.data.commit("customers", tmp_path / "train.parquet")
    for day in range(days):
        shift = 0.0 if day < 3 else 0.6 * (day - 2)
        write_traffic(ws, "churn", frame(400, seed=10 + day, shift=shift),
                      at=START + timedelta(days=day))  # fmt: skip
    dl.monitoring.create_monitor(
        "churn-prod", deployment="churn", reference="customers@1", cooldown="1h", alerts=["log"]
    )
    for day in range(days):
        dl.monitoring.run_monitor("churn-prod", at=START + timedelta(days=day, minutes=1))
    page = tmp_path / "monitor.html"
    dl.monitoring.monitor_report("churn-prod", path=str(page))
    return str(page)


def test_the_report_holds_the_series_and_the_alerts(
    configure_default: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = configure_default(async_logging=False)
    html = Path(history(ws, tmp_path)).read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in html
    assert html.count("<circle class='alert'") == 2  # days 4 and 5, a cooldown of 1h
    # drift share and 4 column scores over 5 windows: 5 lines, 25 points
    assert html.count("<path class='series'") == 5
    assert html.count("<circle class='point'") == 25
    assert "id='distributions'" in html
    assert html.count("<line class='threshold'") == 1  # dataset drift at 50 %


@pytest.mark.slow
def test_the_monitor_report_renders_in_chromium(
    configure_default: Callable[..., Workspace], tmp_path: Path
) -> None:
    binary = browser()
    ws = configure_default(async_logging=False)
    url = Path(history(ws, tmp_path)).as_uri()

    shot = tmp_path / "monitor.png"
    done = headless(binary, tmp_path / "p1", f"--screenshot={shot}", "--window-size=1280,2400", url)
    assert shot.exists(), done.stderr[-2000:]
    assert shot.stat().st_size > 10_000

    dom = headless(binary, tmp_path / "p2", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    errors = [
        line
        for line in dom.stderr.splitlines()
        if "Uncaught" in line or "ERROR:CONSOLE" in line or ":CONSOLE(" in line
    ]
    assert errors == []
    html = dom.stdout
    assert len(re.findall(r'<path class="series"', html)) == 5
    assert len(re.findall(r'<circle class="alert"', html)) == 2
    assert len(re.findall(r'<rect class="bar"', html)) > 20
    assert len(re.findall(r'<path class="cdf"', html)) == 2 * 3  # three numeric columns
    assert 'id="alert-table"' in html
    assert 'id="evaluation-table"' in html
