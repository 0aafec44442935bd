"""The run search language: parsing, positions of errors, types, and bound SQL parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from driftline.errors import InvalidArgumentError
from driftline.tracking import _tables as t
from driftline.tracking._search_sql import RunSearchCompiler
from driftline.tracking.search import (
    And,
    Comparison,
    Field,
    Not,
    Or,
    OrderBy,
    parse_filter,
    parse_order_by,
)

AUC = Field("metric", "auc")


def cmp(kind: str, key: str, op: str, value: object) -> Comparison:
    return Comparison(Field(kind, key), op, value)  # type: ignore[arg-type]


# -- the tree -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_no_filter(text: str | None) -> None:
    assert parse_filter(text) is None


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("metrics.auc > 0.8", Comparison(AUC, ">", 0.8)),
        ("metrics.auc>=1", Comparison(AUC, ">=", 1)),
        ("metrics.auc <= -2", Comparison(AUC, "<=", -2)),
        ("metrics.auc < .5", Comparison(AUC, "<", 0.5)),
        ("metrics.auc = 1e-3", Comparison(AUC, "=", 0.001)),
        ("metrics.auc != 3", Comparison(AUC, "!=", 3)),
        ("metrics.auc <> 3", Comparison(AUC, "!=", 3)),
        ("metric.auc in (1, 2.5)", Comparison(AUC, "in", (1, 2.5))),
        ("metrics.auc not in (1)", Not(Comparison(AUC, "in", (1,)))),
        ("metrics.auc is null", Comparison(AUC, "is null", None)),
        ("metrics.auc IS NOT NULL", Not(Comparison(AUC, "is null", None))),
        ("params.model = 'lr'", cmp("param", "model", "=", "lr")),
        ('parameters.model = "lr"', cmp("param", "model", "=", "lr")),
        ("params.model like 'l%'", cmp("param", "model", "like", "l%")),
        ("params.model not ilike 'L%'", Not(cmp("param", "model", "ilike", "L%"))),
        ("params.C > 0.5", cmp("param", "C", ">", 0.5)),
        ("tags.team = 'it''s'", cmp("tag", "team", "=", "it's")),
        ("tags.team = 'back\\\\slash'", cmp("tag", "team", "=", "back\\slash")),
        ("tags.team = 'a\\'b'", cmp("tag", "team", "=", "a'b")),
        ("tag.`my key` = 'v'", cmp("tag", "my key", "=", "v")),
        ("tags.\"quoted.key\" = 'v'", cmp("tag", "quoted.key", "=", "v")),
        ("metrics.val/loss-1:x > 0", cmp("metric", "val/loss-1:x", ">", 0)),
        ("attributes.status = 'finished'", cmp("attribute", "status", "=", "FINISHED")),
        (
            "attr.status in ('running', 'Failed')",
            cmp("attribute", "status", "in", ("RUNNING", "FAILED")),
        ),
        ("attributes.id = 'x'", cmp("attribute", "run_id", "=", "x")),
        ("attributes.run_name = 'x'", cmp("attribute", "name", "=", "x")),
        ("attributes.user_id = 'x'", cmp("attribute", "user", "=", "x")),
        ("attributes.parent_id is null", cmp("attribute", "parent_run_id", "is null", None)),
        (
            "attributes.start_time > 1700000000000",
            cmp("attribute", "start_time", ">", 1_700_000_000_000),
        ),
        (
            "attributes.end_time < '2024-01-01T00:00:00'",
            cmp("attribute", "end_time", "<", 1_704_067_200_000),
        ),
        (
            "attributes.end_time < '2024-01-01T00:00:00Z'",
            cmp("attribute", "end_time", "<", 1_704_067_200_000),
        ),
        (
            "attributes.end_time < '2024-01-01T02:00:00+02:00'",
            cmp("attribute", "end_time", "<", 1_704_067_200_000),
        ),
        (
            "attributes.end_time < '2024-01-01'",
            cmp("attribute", "end_time", "<", 1_704_067_200_000),
        ),
    ],
)
def test_comparisons(text: str, tree: object) -> None:
    assert parse_filter(text) == tree


def test_and_binds_tighter_than_or_and_parentheses_override() -> None:
    a = Comparison(AUC, ">", 1)
    b = cmp("param", "m", "=", "x")
    c = cmp("tag", "t", "=", "y")
    assert parse_filter("metrics.auc > 1 or params.m = 'x' and tags.t = 'y'") == Or(
        (a, And((b, c)))
    )
    assert parse_filter("(metrics.auc > 1 or params.m = 'x') and tags.t = 'y'") == And(
        (Or((a, b)), c)
    )
    assert parse_filter("metrics.auc > 1 and params.m = 'x' and tags.t = 'y'") == And((a, b, c))
    assert parse_filter("not metrics.auc > 1 or not (params.m = 'x')") == Or((Not(a), Not(b)))
    assert parse_filter("NOT NOT metrics.auc > 1") == Not(Not(a))
    assert parse_filter("((metrics.auc > 1))") == a


def test_keywords_are_whole_words() -> None:
    # 'order' starts with 'or', 'android' with 'and', 'notes' with 'not'
    tree = parse_filter("params.order = 'x' and params.android = 'y' or tags.notes is null")
    assert tree == Or(
        (
            And((cmp("param", "order", "=", "x"), cmp("param", "android", "=", "y"))),
            cmp("tag", "notes", "is null", None),
        )
    )


def test_order_by_terms() -> None:
    assert parse_order_by(None) == ()
    assert parse_order_by(["metrics.auc desc", "params.C", "attributes.start_time ASC"]) == (
        OrderBy(AUC, descending=True),
        OrderBy(Field("param", "C")),
        OrderBy(Field("attribute", "start_time")),
    )
    assert parse_order_by(["tags.`my key` DESC"]) == (OrderBy(Field("tag", "my key"), True),)


@pytest.mark.parametrize(
    ("term", "position"),
    [("metrics.auc descending", 13), ("foo.auc", 1), ("metrics.auc desc x", 18), ("", 1)],
)
def test_order_by_errors_name_the_position(term: str, position: int) -> None:
    with pytest.raises(InvalidArgumentError, match=f"position {position}:"):
        parse_order_by([term])


# -- syntax errors name their position ----------------------------------------------------


def at(text: str, marker: str, nth: int = 1) -> int:
    """1-based position of the ``nth`` occurrence of ``marker`` in ``text``."""
    index = -1
    for _ in range(nth):
        index = text.index(marker, index + 1)
    return index + 1


SYNTAX_ERRORS = [
    ("metrics.auc >", len("metrics.auc >") + 1, "expected a value"),
    ("metrics.auc > 0.8 and", len("metrics.auc > 0.8 and") + 1, "expected a field"),
    ("metrics.auc >> 0.8", at("metrics.auc >> 0.8", ">", 2), "expected a value"),
    ("metrics.auc ~ 1", at("metrics.auc ~ 1", "~"), "expected an operator"),
    ("metrics.auc", len("metrics.auc") + 1, "expected an operator"),
    ("foo.auc > 1", 1, "unknown field"),
    ("metrics > 1", 1, "unknown field"),
    ("  spaces.x > 1", 3, "unknown field"),
    (
        "metrics.auc > 1 params.x = 'a'",
        at("metrics.auc > 1 params.x = 'a'", "params"),
        "expected 'and', 'or'",
    ),
    (
        "metrics.auc > 1 and (params.x = 'a'",
        len("metrics.auc > 1 and (params.x = 'a'") + 1,
        "expected ')'",
    ),
    ("metrics.auc > 1)", at("metrics.auc > 1)", ")"), "expected 'and', 'or'"),
    ("params.x = 'abc", at("params.x = 'abc", "'"), "unterminated string"),
    ("attributes.colour = 'red'", 1, "unknown attribute"),
    ("params.x not = 'a'", at("params.x not = 'a'", "="), "after 'not'"),
    ("params.x in 'a'", at("params.x in 'a'", "'"), "expected '('"),
    ("params.x in ('a' 'b')", at("params.x in ('a' 'b')", "'b'"), "expected ',' or ')'"),
    ("params.x in ()", at("params.x in ()", ")"), "expected a value"),
    ("metrics.auc is nul", at("metrics.auc is nul", "nul"), "expected 'null'"),
    ("metrics. > 1", at("metrics. > 1", " >"), "expected a key"),
    ("metrics.`auc > 1", at("metrics.`auc > 1", "`"), "unterminated"),
    ("and metrics.auc > 1", 1, "unknown field 'and'"),
    ("(", 2, "expected a field"),
]


@pytest.mark.parametrize(
    ("text", "position", "message"), SYNTAX_ERRORS, ids=[text for text, _, _ in SYNTAX_ERRORS]
)
def test_syntax_errors_name_the_position(text: str, position: int, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse_filter(text)
    error = str(info.value)
    assert f"position {position}:" in error
    assert message in error
    # The message repeats the filter and points at the position with a caret.
    lines = error.splitlines()
    assert lines[1] == f"  {text}"
    assert lines[2] == "  " + " " * (position - 1) + "^"


TYPE_ERRORS = [
    ("metrics.auc = 'high'", "'", "numbers, not strings"),
    ("metrics.auc like '0.%'", "like", "metrics are numbers"),
    ("metrics.auc ilike 'x'", "ilike", "metrics are numbers"),
    ("metrics.auc in (1, 'a')", "(", "mixes numbers and strings"),
    ("tags.team < 'm'", "<", "tags are text"),
    ("tags.team >= 'm'", ">=", "tags are text"),
    ("tags.team = 3", "3", "quote the value"),
    ("params.model > 'a'", ">", "only against numbers"),
    ("params.model like 3", "3", "quoted pattern"),
    ("attributes.status = 'DONE'", "'", "status is one of"),
    ("attributes.status in ('FINISHED', 'NOPE')", "(", "status is one of"),
    ("attributes.status > 'A'", ">", "compares with = != like ilike in"),
    ("attributes.name = 3", "3", "quote the value"),
    ("attributes.start_time like '2024%'", "like", "is a time"),
    ("attributes.start_time > 'yesterday'", "'", "ISO-8601"),
]


@pytest.mark.parametrize(
    ("text", "marker", "message"), TYPE_ERRORS, ids=[text for text, _, _ in TYPE_ERRORS]
)
def test_type_errors_name_the_position(text: str, marker: str, message: str) -> None:
    position = at(text, marker)
    with pytest.raises(InvalidArgumentError) as info:
        parse_filter(text)
    assert f"position {position}:" in str(info.value)
    assert message in str(info.value)


def test_errors_are_value_errors_too() -> None:
    with pytest.raises(ValueError, match="position"):
        parse_filter("metrics.auc >")


# -- naive times are UTC ------------------------------------------------------------------


@pytest.mark.usefixtures("new_york_time")
def test_naive_iso_times_in_filters_are_utc_whatever_tz_says() -> None:
    expected = int(datetime(2024, 7, 1, 12, tzinfo=UTC).timestamp() * 1000)
    assert parse_filter("attributes.start_time >= '2024-07-01T12:00:00'") == cmp(
        "attribute", "start_time", ">=", expected
    )
    offset = datetime(2024, 7, 1, 8, tzinfo=timezone(timedelta(hours=-4))).isoformat()
    assert parse_filter(f"attributes.start_time >= '{offset}'") == cmp(
        "attribute", "start_time", ">=", expected
    )


# -- compiled SQL binds every user value --------------------------------------------------


def compile_filter(text: str, dialect: sa.engine.Dialect) -> sa.engine.interfaces.Compiled:
    node = parse_filter(text)
    assert node is not None
    compiler = RunSearchCompiler()
    where = compiler.where(node)
    order = compiler.order_by(parse_order_by(["params.C desc"]))
    select = compiler.select_from(sa.select(t.runs.c.run_id)).where(where).order_by(*order)
    return select.compile(dialect=dialect)


MALICIOUS = "x' OR 1=1 --"


@pytest.mark.parametrize(
    "dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"]
)
@pytest.mark.parametrize(
    "text",
    [
        "params.model = 'x'' OR 1=1 --'",
        "tags.team like 'x'' OR 1=1 --'",
        "attributes.name in ('a', 'x'' OR 1=1 --')",
        "params.`x' OR 1=1 --` = 'a'",
        "metrics.`x' OR 1=1 --` > 1",
    ],
)
def test_user_values_and_keys_are_bound_parameters(text: str, dialect: sa.engine.Dialect) -> None:
    compiled = compile_filter(text, dialect)
    sql = str(compiled)
    assert MALICIOUS not in sql
    assert "1=1" not in sql
    values = [v for v in compiled.params.values()]
    flattened = [x for v in values for x in (v if isinstance(v, (list, tuple)) else [v])]
    assert MALICIOUS in flattened


def test_numbers_are_bound_too() -> None:
    compiled = compile_filter("metrics.auc > 0.123456 and params.C < 42", sqlite.dialect())
    assert "0.123456" not in str(compiled)
    assert "42" not in str(compiled)
    assert {0.123456, 42} <= set(compiled.params.values())


def test_each_field_is_joined_once_however_often_it_is_used() -> None:
    compiled = compile_filter(
        "params.C > 1 and params.C < 5 or params.C = 'x' and metrics.auc > 0", sqlite.dialect()
    )
    sql = str(compiled).lower()
    # params.C: once in the filter (and reused by ORDER BY), metrics.auc: once.
    assert sql.count("left outer join") == 2
