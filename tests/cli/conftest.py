"""Shared fixtures for CLI tests: an isolated project folder and an in-process runner."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftline.cli import main


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh project folder with nothing configured.

    DRIFTLINE_HOME pins the workspace here: discovery would otherwise walk up the
    parents of the temporary folder and could find someone else's `.driftline`.
    """
    for key in list(os.environ):
        if key.startswith("DRIFTLINE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / ".driftline"))
    monkeypatch.setenv("DRIFTLINE_CAPTURE_ENVIRONMENT", "false")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    from driftline import _fluent

    _fluent._at_exit()  # end runs and close the default workspace a test opened


class Cli:
    """Runs ``driftline ARGS`` in-process, as the console script would."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        """Exit code, stdout and stderr."""
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = self._capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> Any:
        """The parsed ``--json`` output of a command that must succeed."""
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI runner."""
    return Cli(capsys)
