"""What a run records about its source automatically: git state, command line, platform.

Git is asked once per run with one ``git status --porcelain=v2 --branch`` (commit,
branch and dirtiness together) plus ``git diff HEAD`` only when the tree is dirty.
Installed packages rarely change within a process, so they are listed once per process.
Failures here never fail a run: a missing git or a non-repository just records less.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from driftline.tracking.models import SYSTEM_TAG_PREFIX

__all__ = ["SourceCapture", "capture_source"]

_GIT_TIMEOUT = 5.0
MAX_DIFF_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SourceCapture:
    """System tags to set on the run, and files (logical path -> bytes) to log with it."""

    tags: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)


def capture_source(cwd: Path | None = None) -> SourceCapture:
    """Collect git state, command line, Python, platform and packages for a new run."""
    p = SYSTEM_TAG_PREFIX
    tags = {
        p + "source.command": shlex.join(sys.orig_argv),
        p + "python": platform.python_version(),
        p + "platform": platform.platform(),
    }
    files = {"_driftline/requirements.txt": _installed_packages().encode()}
    git = _git_state(cwd or Path.cwd())
    if git is not None:
        commit, branch, dirty, diff = git
        tags[p + "git.commit"] = commit
        if branch:
            tags[p + "git.branch"] = branch
        tags[p + "git.dirty"] = "true" if dirty else "false"
        if diff:
            files["_driftline/git.diff"] = diff
    return SourceCapture(tags, files)


def _git(cwd: Path, *args: str) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=_GIT_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_state(cwd: Path) -> tuple[str, str | None, bool, bytes | None] | None:
    out = _git(cwd, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if out is None:
        return None
    commit = branch = None
    dirty = False
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2]
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2]
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    if commit is None or commit == "(initial)":
        return None
    diff = _git(cwd, "diff", "HEAD") if dirty else None
    if diff is not None and len(diff) > MAX_DIFF_BYTES:
        diff = diff[:MAX_DIFF_BYTES] + b"\n[driftline: diff truncated]\n"
    return commit, branch, dirty, diff


@functools.cache
def _installed_packages() -> str:
    """``name==version`` of every installed distribution, like ``pip freeze``.

    Read from the ``<name>-<version>.dist-info`` folder names on ``sys.path``, which
    carry both: parsing every distribution's METADATA file (``importlib.metadata``)
    took about a second in an environment of 200 packages, at every run's start.
    """
    seen: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if not folder.endswith(".dist-info"):
                continue
            name, _, version = folder.removesuffix(".dist-info").partition("-")
            key = re.sub(r"[-_.]+", "-", name).lower()
            if version and key not in seen:  # the first on sys.path is the one imported
                seen[key] = f"{key}=={version}"
    return "\n".join(seen[k] for k in sorted(seen)) + "\n"
