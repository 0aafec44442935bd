"""The LIKE matcher of the MLflow search filters: right answers, in linear time."""

from __future__ import annotations

import re
import time

import pytest

from driftline.server.mlflow._wire import like

CASES = [
    ("abc", "a%", True),
    ("abc", "%c", True),
    ("abc", "a_c", True),
    ("abc", "a_", False),
    ("", "%", True),
    ("", "", True),
    ("a", "", False),
    ("a%c", "a%c", True),
    ("axxbyyc", "a%b%c", True),
    ("axxbyy", "a%b%c", False),
    ("aaa", "a%a%a%a", False),
    ("aaaa", "a%a%a%a", True),
    ("line\nbreak", "line%", True),
]


@pytest.mark.parametrize(("text", "pattern", "expected"), CASES)
def test_like_agrees_with_the_regex_it_replaces(text: str, pattern: str, expected: bool) -> None:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    assert bool(re.fullmatch(regex, text, re.DOTALL)) is expected
    assert like(text, pattern, ignore_case=False) is expected


def test_ilike_ignores_case() -> None:
    assert like("Champion", "champ%", ignore_case=True)
    assert not like("Champion", "champ%", ignore_case=False)


def test_a_pathological_pattern_does_not_backtrack() -> None:
    # As a regex, this takes minutes (each % multiplies the work).
    started = time.perf_counter()
    assert not like("a" * 2000, "%a%a%a%a%a%a%a%a%b", ignore_case=False)
    assert time.perf_counter() - started < 1.0
