"""Fixtures for model tests: a default workspace in the test's folder, and tiny datasets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import driftline
import driftline.models


@pytest.fixture
def model_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The default workspace, opened in the test's folder (no environment capture)."""
    home = tmp_path / ".driftline"
    monkeypatch.setenv("DRIFTLINE_HOME", str(home))
    workspace = driftline.configure(home=home, capture_environment=False)
    yield workspace
    from driftline import _fluent

    _fluent._at_exit()


@pytest.fixture(scope="session")
def iris() -> tuple[Any, Any]:
    """Iris as a DataFrame of four float columns and an integer target."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True, as_frame=True)
    return x, y


@pytest.fixture(scope="session")
def diabetes() -> tuple[Any, Any]:
    """Diabetes as a DataFrame of ten float columns and a float target."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    return x, y
