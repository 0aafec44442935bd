"""Logical artifact paths: relative POSIX paths that cannot escape the artifact root."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.core.artifacts import validate_artifact_path
from driftline.core.artifacts.paths import validate_listed_paths
from driftline.data.scan import list_files
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


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a\\b", "backslash"),
        ("tab\there", "control character"),
        ("c:evil", "absolute"),
        ("   ", "non-empty"),
        ("x" * 1025, "longer than"),
    ],
)
def test_listed_paths_get_the_same_verdict_in_bulk(name: str, reason: str) -> None:
    """What a folder listing can hold is refused as the per-path check would, named."""
    top_level = ":" in name or name.isspace()  # refused only as a whole path
    listed = [f"file-{i}" for i in range(1000)] + [name if top_level else f"sub/{name}"]
    with pytest.raises(InvalidArgumentError, match=reason):
        validate_listed_paths(listed)
    validate_listed_paths(listed[:-1])  # the others alone pass
    validate_listed_paths([])


def test_a_folder_with_an_unsafe_file_name_is_not_committed(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "fine.txt").write_text("ok")
    (folder / "sub" / "bad\\name.txt").write_text("a backslash in a file name")
    with pytest.raises(InvalidArgumentError, match=r"backslash"):
        list_files(folder)
