"""The tracking stage's commands: ``driftline experiments``, ``runs`` and ``artifacts``."""

from __future__ import annotations

import typer

__all__ = ["install_commands"]


def install_commands(root_app: typer.Typer) -> None:
    """Add the tracking commands to the root command (the tracking stage's ``cli`` hook)."""
    from driftline.cli import artifacts, experiments, runs

    root_app.add_typer(experiments.app, name="experiments")
    root_app.add_typer(runs.app, name="runs")
    root_app.add_typer(artifacts.app, name="artifacts")
