"""Logical artifact paths: relative POSIX paths that cannot escape the artifact root."""

from __future__ import annotations

import pytest

from driftline.core.artifacts import validate_artifact_path
from driftline.errors import InvalidArgumentError


@pytest.mark.parametrize(
    ("path", "normalized"),
    [
        ("model.pkl", "model.pkl"),
        ("reports/2024/summary.html", "reports/2024/summary.html"),
        ("a/./b", "a/b"),
        ("a//b", "a/b"),
        ("dir/", "dir"),
        ("with space/ünïcode.txt", "with space/ünïcode.txt"),
        ("..hidden/x", "..hidden/x"),  # a name that merely starts with two dots is fine
        ("a/b..c", "a/b..c"),
    ],
)
def test_safe_paths_are_normalized(path: str, normalized: str) -> None:
    assert validate_artifact_path(path) == normalized


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "non-empty"),
        ("   ", "non-empty"),
        ("..", "'..'"),
        ("../secret", "'..'"),
        ("a/../../b", "'..'"),
        ("a/..", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/Windows", "absolute"),
        ("c:evil", "absolute"),
        ("a\\b", "backslash"),
        ("\\\\host\\share", "backslash"),
        ("..\\x", "backslash"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a\x7fb", "control character"),
        (".", "names no file"),
        ("./", "names no file"),
        ("x" * 1025, "longer than"),
    ],
)
def test_unsafe_paths_are_refused(path: str, reason: str) -> None:
    with pytest.raises(InvalidArgumentError, match=reason):
        validate_artifact_path(path)


def test_non_strings_are_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        validate_artifact_path(None)  # type: ignore[arg-type]
