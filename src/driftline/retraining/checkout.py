"""Where a reproduction runs: a temporary git worktree at the recorded commit.

The worktree is made in a temporary folder from the repository the reproduction is
started in, the recorded diff of a dirty run applied on top when asked, and removed
afterwards whatever happens (``git worktree remove --force``, then ``prune``). The
re-run starts in the worktree's folder matching the folder the reproduction was
started from inside the repository.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.errors import UserCodeError
from driftline.retraining.models import MissingLineageError, RunLineage

if TYPE_CHECKING:
    from driftline.registry import ModelVersion

__all__ = ["Checkout", "checkout"]

_GIT_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Checkout:
    """Where the re-run starts, what code it is, and what a reader must know about it."""

    folder: Path  # where the child process starts
    code: str  # what ReproduceReport.code says
    notes: tuple[str, ...]


@contextmanager
def checkout(
    version: ModelVersion,
    run: RunLineage,
    start: Path,
    code: str,
    diff: bytes | None,
    apply_diff: bool,
) -> Iterator[Checkout]:
    """The checkout to run ``run``'s code in (``code``: recorded or current)."""
    if code == "current":
        note = "Ran the current checkout, not a recorded commit"
        if run.code.commit:
            note += f" (the run recorded {run.code.commit[:12]})"
        yield Checkout(start, "current checkout", (note,))
        return
    commit = run.code.commit
    if commit is None:
        raise MissingLineageError(
            f"Run {run.id} behind {version.ref} recorded no code commit (it was not "
            "started in a git repository, or capture_environment was off). Re-run the "
            "current checkout instead with --code current",
            link="code commit",
        )
    top = _git(start, "rev-parse", "--show-toplevel")
    if top is None:
        raise MissingLineageError(
            f"{start} is not inside a git repository, so commit {commit[:12]} cannot be "
            "checked out: run reproduce from a clone of the repository the model was "
            "trained in (or pass --repo)",
            link="repository",
        )
    if _git(start, "cat-file", "-e", f"{commit}^{{commit}}") is None:
        raise MissingLineageError(
            f"The repository at {top.strip()} has no commit {commit[:12]}: fetch it "
            "(git fetch) and try again",
            link="repository",
        )
    prefix = (_git(start, "rev-parse", "--show-prefix") or "").strip()
    with tempfile.TemporaryDirectory(prefix="driftline-reproduce-") as tmp:
        tree = Path(tmp) / "tree"
        if _git(start, "worktree", "add", "--detach", str(tree), commit) is None:
            raise UserCodeError(f"git could not make a worktree at commit {commit[:12]}")
        try:
            notes: list[str] = [f"Ran commit {commit[:12]} in a temporary git worktree"]
            label = "recorded commit"
            if run.code.dirty:
                label, note = _apply(tree, diff, apply_diff)
                notes.append(note)
            yield Checkout(tree / prefix, label, tuple(notes))
        finally:
            _git(start, "worktree", "remove", "--force", str(tree))
            _git(start, "worktree", "prune")


def _apply(tree: Path, diff: bytes | None, apply_diff: bool) -> tuple[str, str]:
    if diff is None:
        return "recorded commit", (
            "The run had uncommitted changes and recorded no diff: the re-run uses the "
            "commit without them"
        )
    if not apply_diff:
        return "recorded commit", (
            "The run had uncommitted changes (the recorded diff is shown); they were not "
            "applied, as asked"
        )
    done = subprocess.run(
        ["git", "apply", "--whitespace=nowarn", "-"],
        cwd=tree,
        input=diff,
        capture_output=True,
        timeout=_GIT_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip()
        return "recorded commit", (
            f"The run had uncommitted changes; their recorded diff did not apply ({reason}), "
            "so the re-run uses the commit without them"
        )
    return "recorded commit + diff", (
        "The run had uncommitted changes: their recorded diff was applied to the commit"
    )


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=_GIT_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None
