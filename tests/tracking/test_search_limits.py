"""The search language's limits: exactly at each limit parses (and runs on every backend),
one past it is an InvalidArgumentError naming the limit and the position."""

from __future__ import annotations

import re

import pytest

from driftline.errors import InvalidArgumentError
from driftline.server.mlflow._filters import parse_conditions, run_filter, run_order_by
from driftline.tracking._http import filter_text
from driftline.tracking.search import (
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_FIELDS,
    MAX_FILTER_LENGTH,
    MAX_KEY_LENGTH,
    MAX_LITERAL_LENGTH,
    MAX_ORDER_TERMS,
    MAX_VALUES,
    And,
    Comparison,
    Field,
    Node,
    Not,
    Or,
    parse_filter,
    parse_order_by,
)
from driftline.workspace import Workspace

try:  # `python -m pytest` from the repository root, as CI runs it
    from tests.conftest import ALL_BACKENDS
except ImportError:  # pragma: no cover - only tests/ on sys.path
    from conftest import ALL_BACKENDS

INT64 = 2**63 - 1


def parens(depth: int) -> str:
    return "(" * depth + "metrics.a > 1" + ")" * depth


def nots(depth: int) -> str:
    return "not " * depth + "metrics.a > 1"


def mixed(depth: int, inner: str = "metrics.a > 1") -> str:
    """Groups of `or` and `and`, each a level (in the SQL too: the worst shape for SQLite)."""
    text = inner
    for _ in range(depth):
        text = f"(metrics.b is null or metrics.b is null and {text})"
    return text


def comparisons(count: int) -> str:
    return " and ".join(f"metrics.m{i % MAX_FIELDS} > {i}" for i in range(count))


def fields(count: int) -> str:
    return " or ".join(f"params.p{i} = 'x'" for i in range(count))


def values(count: int) -> str:
    return "params.p in (" + ", ".join("'v'" for _ in range(count)) + ")"


def error_of(text: str) -> str:
    with pytest.raises(InvalidArgumentError) as info:
        parse_filter(text)
    return str(info.value)


def position_of(error: str) -> int:
    match = re.search(r"position (\d+):", error)
    assert match, error
    return int(match.group(1))


# -- at the limit parses, one past it is a 400 that says which limit --------------------

AT_AND_PAST = [
    ("parentheses", parens, MAX_DEPTH, f"nests deeper than {MAX_DEPTH} levels"),
    ("not", nots, MAX_DEPTH, f"nests deeper than {MAX_DEPTH} levels"),
    ("and/or groups", mixed, MAX_DEPTH, f"nests deeper than {MAX_DEPTH} levels"),
    ("comparisons", comparisons, MAX_COMPARISONS, f"more than {MAX_COMPARISONS} comparisons"),
    ("fields", fields, MAX_FIELDS, f"more than {MAX_FIELDS} distinct metrics"),
    ("values", values, MAX_VALUES, f"more than {MAX_VALUES:,} values"),
]


@pytest.mark.parametrize(
    ("build", "limit", "message"),
    [case[1:] for case in AT_AND_PAST],
    ids=[case[0] for case in AT_AND_PAST],
)
def test_a_filter_at_a_limit_parses_and_one_past_it_names_the_limit(
    build: object, limit: int, message: str
) -> None:
    assert callable(build)
    assert parse_filter(build(limit)) is not None
    error = error_of(build(limit + 1))
    assert message in error
    assert position_of(error) >= 1


def test_the_depth_error_points_at_the_level_past_the_limit() -> None:
    text = nots(MAX_DEPTH + 1)
    assert position_of(error_of(text)) == len("not " * MAX_DEPTH) + 1
    text = parens(MAX_DEPTH + 1)
    assert position_of(error_of(text)) == MAX_DEPTH + 1


@pytest.mark.parametrize(
    "text", [parens(500), nots(2000), comparisons(3000)], ids=["parens", "not", "and"]
)
def test_the_inputs_that_crashed_the_server_are_refused(text: str) -> None:
    error = error_of(text)
    assert "nests deeper" in error or "comparisons" in error
    # A long filter is shown around the position, not whole.
    assert len(error) < 600


def test_the_filter_length_is_bounded() -> None:
    padding = " " * (MAX_FILTER_LENGTH - len("metrics.a > 1"))
    assert parse_filter("metrics.a > 1" + padding) is not None
    error = error_of("metrics.a > 1" + padding + " ")
    assert f"longer than {MAX_FILTER_LENGTH:,} characters" in error
    assert position_of(error) == MAX_FILTER_LENGTH + 1


def test_a_string_literal_is_bounded() -> None:
    assert parse_filter(f"tags.t = '{'x' * MAX_LITERAL_LENGTH}'") is not None
    error = error_of(f"tags.t = '{'x' * (MAX_LITERAL_LENGTH + 1)}'")
    assert f"at most {MAX_LITERAL_LENGTH:,} characters" in error
    assert position_of(error) == len("tags.t = ") + 1


@pytest.mark.parametrize("quote", ["", "`"])
def test_a_key_is_bounded(quote: str) -> None:
    key = "k" * MAX_KEY_LENGTH
    assert parse_filter(f"tags.{quote}{key}{quote} = 'x'") is not None
    error = error_of(f"tags.{quote}{key}k{quote} = 'x'")
    assert f"key is at most {MAX_KEY_LENGTH} characters" in error
    assert position_of(error) == len("tags.") + 1


@pytest.mark.parametrize("field", ["metrics.a", "params.p"])
def test_integers_are_int64(field: str) -> None:
    assert parse_filter(f"{field} > {INT64}") is not None
    assert parse_filter(f"{field} > -{INT64}") is not None
    for literal in (str(INT64 + 1), "99999999999999999999999", "1" * 5000):
        error = error_of(f"{field} > {literal}")
        assert "number out of range" in error
        assert position_of(error) == len(f"{field} > ") + 1


def test_a_float_past_the_double_range_is_an_infinity() -> None:
    assert parse_filter("metrics.a < 1e999") == Comparison(Field("metric", "a"), "<", float("inf"))


@pytest.mark.parametrize(
    "literal", ["99999999999999999999999", str(INT64 + 1), "1e999", "-1e999", "1e19"]
)
def test_times_are_within_int64_milliseconds(literal: str) -> None:
    assert parse_filter(f"attributes.start_time > {INT64}") is not None
    error = error_of(f"attributes.start_time > {literal}")
    assert "number out of range" in error
    assert position_of(error) == len("attributes.start_time > ") + 1


def test_an_ordering_is_bounded() -> None:
    assert len(parse_order_by([f"metrics.m{i}" for i in range(MAX_ORDER_TERMS)])) == 20
    with pytest.raises(InvalidArgumentError, match=f"at most {MAX_ORDER_TERMS} terms"):
        parse_order_by([f"metrics.m{i}" for i in range(MAX_ORDER_TERMS + 1)])
    with pytest.raises(InvalidArgumentError, match="key is at most"):
        parse_order_by(["metrics." + "k" * (MAX_KEY_LENGTH + 1)])
    with pytest.raises(InvalidArgumentError, match="longer than"):
        parse_order_by(["metrics.a" + " " * MAX_FILTER_LENGTH])


# -- the MLflow dialect has the same limits -------------------------------------------


def test_mlflow_run_filters_have_the_same_limits() -> None:
    assert run_filter(comparisons(MAX_COMPARISONS)) is not None
    with pytest.raises(InvalidArgumentError, match="more than 100 comparisons"):
        run_filter(comparisons(3000))
    with pytest.raises(InvalidArgumentError, match="number out of range"):
        run_filter("attributes.start_time > 99999999999999999999999")
    with pytest.raises(InvalidArgumentError, match="nests deeper"):
        run_filter(parens(500))
    with pytest.raises(InvalidArgumentError, match=f"at most {MAX_ORDER_TERMS} terms"):
        run_order_by(["start_time"] * (MAX_ORDER_TERMS + 1))
    with pytest.raises(InvalidArgumentError, match="longer than") as info:
        run_filter("metrics.a > 1" + " " * MAX_FILTER_LENGTH)
    assert len(str(info.value)) < 1000


def test_mlflow_conditions_are_bounded() -> None:
    at_limit = " and ".join(f"tags.t{i} = 'x'" for i in range(MAX_COMPARISONS))
    assert len(parse_conditions(at_limit)) == MAX_COMPARISONS
    with pytest.raises(InvalidArgumentError, match="at most 100 conditions"):
        parse_conditions(at_limit + " and name = 'x'")
    many = "name in (" + ", ".join("'v'" for _ in range(MAX_VALUES + 1)) + ")"
    with pytest.raises(InvalidArgumentError, match="values"):
        parse_conditions(many)


# -- a filter at every limit runs on every backend --------------------------------------


def at_every_limit() -> str:
    """Deepest nesting, most comparisons and fields, and a long value list, in one filter.

    A run with ``metrics.a = 2`` and nothing else matches it.
    """
    deep = mixed(MAX_DEPTH - 4, nots(4))  # groups, then `not`s
    rest = [f"metrics.m{i} is null" for i in range(MAX_FIELDS - 2)]  # a and b are used
    spare = MAX_COMPARISONS - (2 * (MAX_DEPTH - 4) + 1) - len(rest) - 1
    more = [f"metrics.a > {-i}" for i in range(spare)]
    in_list = "attributes.run_id not in (" + ", ".join(f"'r{i}'" for i in range(4000)) + ")"
    return " and ".join([deep, *rest, *more, in_list])


def test_the_filter_at_every_limit_really_is_at_them() -> None:
    node = parse_filter(at_every_limit())
    assert node is not None
    assert _comparisons(node) == MAX_COMPARISONS
    assert "nests deeper" in error_of(f"({at_every_limit()})")
    assert "comparisons" in error_of(f"{at_every_limit()} and metrics.a > 0")
    assert parse_filter(filter_text(node)) == node  # the remote backend sends it as is


def _children(node: Node) -> list[Node]:
    if isinstance(node, And | Or):
        return list(node.items)
    return [node.item] if isinstance(node, Not) else []


def _comparisons(node: Node) -> int:
    children = _children(node)
    return sum(_comparisons(item) for item in children) if children else 1


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_a_filter_at_every_limit_runs_on_every_backend(workspace: Workspace) -> None:
    tracking = workspace.tracking
    run = tracking.create_run("limits")
    tracking.log_batch(run.id, metrics=[("a", 2.0, 0, None)])
    order = [f"metrics.o{i} desc" for i in range(MAX_ORDER_TERMS)]
    page = tracking.search_runs(experiments="limits", filter=at_every_limit(), order_by=order)
    assert [found.id for found in page.items] == [run.id]
