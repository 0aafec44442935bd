"""The HTML report in a real headless Chromium: it loads offline, logs no console error,
and its plots exist as rendered elements; a screenshot is taken.

Skipped when no Chromium is installed, except under ``CI=true``, where it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from drift_frames import mixed

import driftline as dl

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI must test the drift report in Chromium: apt-get install chromium")
        pytest.skip("no Chromium here (apt-get install chromium); CI runs this test")
    return found


def headless(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_the_report_renders_in_chromium(tmp_path: Path) -> None:
    binary = browser()
    rep = dl.monitoring.drift(
        reference=mixed(5_000, seed=1), current=mixed(1_000, seed=2, shift=0.8)
    )
    page = tmp_path / "drift.html"
    rep.to_html(str(page))
    url = page.as_uri()

    shot = tmp_path / "drift.png"
    done = headless(binary, tmp_path / "p1", f"--screenshot={shot}", "--window-size=1280,2000", url)
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
    assert html.count("<svg") == len(re.findall(r"class=\"plot\"", html)) >= 20 + 15
    assert len(re.findall(r"<rect class=\"bar\"", html)) > 200
    assert len(re.findall(r"<path class=\"cdf\"", html)) == 2 * 15
    assert 'id="scores"' in html
    assert "dataset drift" in html
