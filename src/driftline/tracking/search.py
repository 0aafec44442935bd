"""The run search language: parsing filters and orderings into a small AST.

Grammar (keywords are case-insensitive)::

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := field op value | field "is" ["not"] "null"
    op         := = | != | <> | < | <= | > | >= | [not] like | [not] ilike | [not] in
    field      := prefix "." key         prefix: metrics params tags attributes (or singular)
    key        := bare characters [A-Za-z0-9_-./:] | `back-quoted` | "double-quoted"
    value      := 'string' | number | "(" value ("," value)* ")"

Examples::

    metrics.auc > 0.8 and (params.penalty = 'l2' or tags.team like 'ri%')
    attributes.status in ('FINISHED', 'RUNNING') and not params.C < 0.1
    metrics.`val loss` is not null

Type rules are checked here, once, so every backend sees a valid tree: metrics compare
with numbers; params compare as text, or as numbers when the literal is a number; tags
compare as text; time attributes take epoch milliseconds or ISO-8601 strings (naive
means UTC). A syntax error names its 1-based position and points at it.

Limits: a filter is bounded so that every one that parses also compiles and runs on
every backend (SQLite's parser overflows at about 18 nested groups, and SQLite refuses
expression trees deeper than 1,000 and joins of more than 64 tables) and no input can
exhaust the parser's stack. A filter holds at most
:data:`MAX_FILTER_LENGTH` characters, nests at most :data:`MAX_DEPTH` levels of
parentheses and ``not``, compares at most :data:`MAX_COMPARISONS` times, names at most
:data:`MAX_FIELDS` distinct metrics, params and tags (each one is a join), and holds at
most :data:`MAX_VALUES` literal values; a string literal holds at most
:data:`MAX_LITERAL_LENGTH` characters, a key at most :data:`MAX_KEY_LENGTH`, an integer
fits in 64 bits and a time is within the 64-bit range of epoch milliseconds (a float
literal beyond the double range is an infinity, as in JSON readers). An ordering has at
most :data:`MAX_ORDER_TERMS` terms. Going past a limit is an
:class:`~driftline.errors.InvalidArgumentError` that names the limit and the position.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from driftline.core.clock import to_ms
from driftline.errors import InvalidArgumentError
from driftline.tracking.models import RunStatus

__all__ = [
    "ATTRIBUTES",
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_FIELDS",
    "MAX_FILTER_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_LITERAL_LENGTH",
    "MAX_ORDER_TERMS",
    "MAX_VALUES",
    "And",
    "Comparison",
    "Field",
    "Node",
    "Not",
    "Or",
    "OrderBy",
    "parse_filter",
    "parse_order_by",
]

Kind = Literal["metric", "param", "tag", "attribute"]
Value = str | float | int | tuple[str | float | int, ...] | None

_PREFIXES: dict[str, Kind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
}
# Attribute names users may write -> canonical name.
ATTRIBUTES: dict[str, str] = {
    "run_id": "run_id",
    "id": "run_id",
    "name": "name",
    "run_name": "name",
    "status": "status",
    "user": "user",
    "user_id": "user",
    "start_time": "start_time",
    "end_time": "end_time",
    "experiment_id": "experiment_id",
    "parent_run_id": "parent_run_id",
    "parent_id": "parent_run_id",
}
_TIME_ATTRIBUTES = {"start_time", "end_time"}

MAX_FILTER_LENGTH = 100_000
"""Characters in one filter (and in one ordering term)."""
MAX_DEPTH = 16
"""Levels of parentheses and ``not`` (each ``not`` is a level, as each makes the SQL deeper).

SQLite's parser overflows its stack at about 18 levels of ``(a or b and (...))``."""
MAX_COMPARISONS = 100
"""Comparisons in one filter: an ``and`` of 1,000 would pass SQLite's expression depth."""
MAX_FIELDS = 40
"""Distinct metrics, params and tags in one filter: each is a join, and SQLite joins at most
64 tables (the runs table, these, and :data:`MAX_ORDER_TERMS` more for the ordering)."""
MAX_VALUES = 5_000
"""Literal values in one filter, ``in`` lists included (each is a bound SQL parameter)."""
MAX_LITERAL_LENGTH = 8_000
"""Characters in one string literal: the longest param or tag value driftline stores."""
MAX_KEY_LENGTH = 250
"""Characters in one metric, param or tag key: the longest key driftline stores."""
MAX_ORDER_TERMS = 20
"""Terms in one ordering."""
_INT64 = 2**63 - 1
_EXCERPT = 60  # characters shown either side of an error's position in a long filter
_ORDER_OPS = {"<", "<=", ">", ">="}
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_BARE_KEY = re.compile(r"[A-Za-z0-9_\-./:]+")
_WORD = re.compile(r"[A-Za-z_]+")


@dataclass(frozen=True, slots=True)
class Field:
    """A searchable field: ``kind`` plus ``key`` (a canonical attribute name for attributes)."""

    kind: Kind
    key: str

    def __str__(self) -> str:
        return f"{self.kind}s.{self.key}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """``field op value``. ``op`` is one of ``= != < <= > >= like ilike in`` (``not`` forms
    are :class:`Not` nodes) or ``is null``; numbers for params mean numeric comparison."""

    field: Field
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class And:
    """All of ``items``."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Any of ``items``."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The negation of ``item``."""

    item: Node


Node = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One ordering term; missing values always sort last."""

    field: Field
    descending: bool = False


def parse_filter(text: str | None) -> Node | None:
    """Parse a filter string; ``None`` or blank means no filter.

    Raises:
        InvalidArgumentError: naming the position of the first error.
    """
    if text is None or not text.strip():
        return None
    parser = _Parser(text)
    node = parser.or_expr(depth=0)
    parser.skip_space()
    if not parser.at_end():
        parser.fail("expected 'and', 'or' or the end of the filter")
    return node


def parse_order_by(terms: list[str] | tuple[str, ...] | None) -> tuple[OrderBy, ...]:
    """Parse ordering terms such as ``"metrics.auc desc"`` or ``"attributes.start_time"``.

    Raises:
        InvalidArgumentError: naming the position of the first error, or the limit passed.
    """
    terms = tuple(terms or ())
    if len(terms) > MAX_ORDER_TERMS:
        raise InvalidArgumentError(
            f"An ordering has at most {MAX_ORDER_TERMS} terms, got {len(terms)}"
        )
    result = []
    for term in terms:
        parser = _Parser(term)
        field = parser.field()
        parser.skip_space()
        word = parser.peek_word()
        descending = False
        if word in ("asc", "desc"):
            parser.pos += len(word)
            descending = word == "desc"
        parser.skip_space()
        if not parser.at_end():
            parser.fail("expected 'asc', 'desc' or the end of the ordering term")
        result.append(OrderBy(field, descending))
    return tuple(result)


class _Parser:
    """Recursive descent straight over the text, so every error knows its position.

    The recursion is bounded by :data:`MAX_DEPTH` (checked before each level), so no
    input reaches Python's recursion limit; the other limits are counted as it goes.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.comparisons = 0
        self.values = 0
        self.fields: set[tuple[str, str]] = set()
        if len(text) > MAX_FILTER_LENGTH:
            self.fail(
                f"the filter is longer than {MAX_FILTER_LENGTH:,} characters "
                f"({len(text):,}); narrow it down or search in several requests",
                at=MAX_FILTER_LENGTH,
            )

    # -- scanning -----------------------------------------------------------------

    def fail(self, message: str, at: int | None = None) -> None:
        at = self.pos if at is None else at
        # A long filter is shown around the position only, so the message stays short.
        start = max(0, at - _EXCERPT) if len(self.text) > 2 * _EXCERPT else 0
        end = start + 2 * _EXCERPT if len(self.text) > 2 * _EXCERPT else len(self.text)
        before = "..." if start > 0 else ""
        after = "..." if end < len(self.text) else ""
        excerpt = f"{before}{self.text[start:end]}{after}"
        pointer = " " * (len(before) + at - start) + "^"
        raise InvalidArgumentError(
            f"Invalid filter at position {at + 1}: {message}\n  {excerpt}\n  {pointer}"
        )

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek_word(self) -> str:
        match = _WORD.match(self.text, self.pos)
        return match.group(0).lower() if match else ""

    def accept_word(self, word: str) -> bool:
        self.skip_space()
        match = _WORD.match(self.text, self.pos)
        if match and match.group(0).lower() == word:
            self.pos = match.end()
            return True
        return False

    def accept(self, symbol: str) -> bool:
        self.skip_space()
        if self.text.startswith(symbol, self.pos):
            self.pos += len(symbol)
            return True
        return False

    # -- grammar ------------------------------------------------------------------

    def or_expr(self, depth: int) -> Node:
        items = [self.and_expr(depth)]
        while self.accept_word("or"):
            items.append(self.and_expr(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self, depth: int) -> Node:
        items = [self.not_expr(depth)]
        while self.accept_word("and"):
            items.append(self.not_expr(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self, depth: int) -> Node:
        start = self.pos
        if self.accept_word("not"):
            self.enter(depth + 1, start)
            return Not(self.not_expr(depth + 1))
        if self.accept("("):
            self.enter(depth + 1, start)
            node = self.or_expr(depth + 1)
            if not self.accept(")"):
                self.fail("expected ')' to close the parenthesis")
            return node
        return self.comparison()

    def enter(self, depth: int, at: int) -> None:
        """Refuse a level past :data:`MAX_DEPTH` (before recursing into it)."""
        if depth > MAX_DEPTH:
            self.fail(
                f"the filter nests deeper than {MAX_DEPTH} levels of parentheses and 'not'; "
                "simplify it",
                at=self.skip_space_from(at),
            )

    def skip_space_from(self, at: int) -> int:
        while at < len(self.text) and self.text[at].isspace():
            at += 1
        return at

    def field(self) -> Field:
        self.skip_space()
        start = self.pos
        match = _WORD.match(self.text, self.pos)
        if not match:
            self.fail(
                "expected a field such as metrics.auc, params.C, tags.team or attributes.status"
            )
        assert match is not None
        prefix = match.group(0).lower()
        kind = _PREFIXES.get(prefix)
        if kind is None or not self.text.startswith(".", match.end()):
            self.fail(
                f"unknown field {self.text[start : match.end()]!r}; fields start with "
                "metrics., params., tags. or attributes.",
                at=start,
            )
        assert kind is not None
        self.pos = match.end() + 1
        key = self.key()
        if kind == "attribute":
            canonical = ATTRIBUTES.get(key.lower())
            if canonical is None:
                known = ", ".join(sorted(set(ATTRIBUTES.values())))
                self.fail(f"unknown attribute {key!r}; known: {known}", at=start)
            key = canonical or key
        elif (kind, key) not in self.fields:
            self.fields.add((kind, key))
            if len(self.fields) > MAX_FIELDS:
                self.fail(
                    f"the filter names more than {MAX_FIELDS} distinct metrics, params "
                    "and tags; split the search",
                    at=start,
                )
        return Field(kind, key)

    def key(self) -> str:
        start = self.pos
        quote = self.text[self.pos : self.pos + 1]
        if quote in ("`", '"'):
            end = self.text.find(quote, self.pos + 1)
            if end < 0:
                self.fail(f"unterminated {quote}quoted{quote} key")
            key = self.text[self.pos + 1 : end]
            self.pos = end + 1
        else:
            match = _BARE_KEY.match(self.text, self.pos)
            if not match:
                self.fail("expected a key after the field prefix")
            assert match is not None
            key = match.group(0)
            self.pos = match.end()
        if not key:
            self.fail("empty key")
        if len(key) > MAX_KEY_LENGTH:
            self.fail(f"a key is at most {MAX_KEY_LENGTH} characters", at=start)
        return key

    def comparison(self) -> Node:
        self.skip_space()
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            self.fail(f"the filter has more than {MAX_COMPARISONS} comparisons; split the search")
        field = self.field()
        self.skip_space()
        op_at = self.pos
        if self.accept_word("is"):
            negate = self.accept_word("not")
            if not self.accept_word("null"):
                self.fail("expected 'null' after 'is'")
            node: Node = Comparison(field, "is null", None)
            return Not(node) if negate else node
        negate = self.accept_word("not")
        op = self.operator(negated=negate)
        self.skip_space()
        value_at = self.pos
        value = self.value_list() if op == "in" else self.value()
        node = self.check_types(Comparison(field, op, value), op_at, value_at)
        return Not(node) if negate else node

    def operator(self, *, negated: bool) -> str:
        self.skip_space()
        for word in ("like", "ilike", "in"):
            if self.accept_word(word):
                return word
        if negated:
            self.fail("expected 'like', 'ilike' or 'in' after 'not'")
        for symbol in ("<=", ">=", "!=", "<>", "=", "<", ">"):
            if self.accept(symbol):
                return "!=" if symbol == "<>" else symbol
        self.fail("expected an operator (= != < <= > >= like ilike in is)")
        raise AssertionError("unreachable")

    def value(self) -> str | float | int:
        self.skip_space()
        start = self.pos
        self.values += 1
        if self.values > MAX_VALUES:
            self.fail(f"the filter has more than {MAX_VALUES:,} values; split the search")
        char = self.text[self.pos : self.pos + 1]
        if char in ("'", '"'):
            text = self.string(char)
            if len(text) > MAX_LITERAL_LENGTH:
                self.fail(f"a string is at most {MAX_LITERAL_LENGTH:,} characters", at=start)
            return text
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            literal = match.group(0)
            if not literal.lstrip("+-").isdigit():
                return float(literal)  # past the double range: an infinity, as JSON reads it
            # Checked before int(): Python refuses to convert more than 4,300 digits.
            digits = literal.lstrip("+-").lstrip("0")
            if len(digits) > 19 or abs(int(literal)) > _INT64:
                self.fail(
                    f"number out of range: integers are within +-{_INT64} "
                    "(write a float such as 1e30 for larger numbers)",
                    at=start,
                )
            return int(literal)
        self.fail("expected a value: a 'quoted string' or a number")
        raise AssertionError("unreachable")

    def string(self, quote: str) -> str:
        out = []
        i = self.pos + 1
        while i < len(self.text):
            char = self.text[i]
            if char == "\\" and i + 1 < len(self.text):
                out.append(self.text[i + 1])
                i += 2
            elif char == quote:
                if self.text.startswith(quote, i + 1):  # SQL-style doubled quote
                    out.append(quote)
                    i += 2
                else:
                    self.pos = i + 1
                    return "".join(out)
            else:
                out.append(char)
                i += 1
        self.fail("unterminated string")
        raise AssertionError("unreachable")

    def value_list(self) -> tuple[str | float | int, ...]:
        if not self.accept("("):
            self.fail("expected '(' to start the list after 'in'")
        values = [self.value()]
        while self.accept(","):
            values.append(self.value())
        if not self.accept(")"):
            self.fail("expected ',' or ')' in the list")
        return tuple(values)

    # -- types --------------------------------------------------------------------

    def check_types(self, node: Comparison, op_at: int, value_at: int) -> Comparison:
        values = node.value if isinstance(node.value, tuple) else (node.value,)
        numeric = [isinstance(v, int | float) for v in values]
        if len(set(numeric)) > 1:
            self.fail("a list mixes numbers and strings", at=value_at)
        is_number = numeric[0]
        kind, key, op = node.field.kind, node.field.key, node.op
        if kind == "metric":
            if op in ("like", "ilike"):
                self.fail(f"metrics are numbers; {op!r} applies to params and tags", at=op_at)
            if not is_number:
                self.fail("metrics compare with numbers, not strings", at=value_at)
        elif kind == "param":
            if op in _ORDER_OPS and not is_number:
                self.fail(
                    "params compare with < <= > >= only against numbers; "
                    "use = != like ilike in for text",
                    at=op_at,
                )
            if op in ("like", "ilike") and is_number:
                self.fail(f"{op!r} needs a 'quoted pattern'", at=value_at)
        elif kind == "tag":
            if op in _ORDER_OPS:
                self.fail("tags are text; compare them with = != like ilike in", at=op_at)
            if is_number:
                self.fail("tags are text; quote the value", at=value_at)
        else:
            node = self.check_attribute(node, key, op, values, op_at, value_at)
        return node

    def check_attribute(
        self,
        node: Comparison,
        key: str,
        op: str,
        values: tuple[Value, ...],
        op_at: int,
        value_at: int,
    ) -> Comparison:
        if key in _TIME_ATTRIBUTES:
            if op in ("like", "ilike"):
                self.fail(f"{key} is a time; compare it with = != < <= > >= in", at=op_at)
            converted = tuple(self.time_value(v, value_at) for v in values)
            value: Value = converted if op == "in" else converted[0]
            return Comparison(node.field, op, value)
        if any(not isinstance(v, str) for v in values):
            self.fail(f"attribute {key} is text; quote the value", at=value_at)
        if op in _ORDER_OPS and key != "name":
            self.fail(f"attribute {key} compares with = != like ilike in", at=op_at)
        if key == "status":
            statuses = {s.value for s in RunStatus}
            upper = tuple(str(v).upper() for v in values)
            if op not in ("like", "ilike") and any(v not in statuses for v in upper):
                self.fail(f"status is one of {', '.join(sorted(statuses))}", at=value_at)
            return Comparison(node.field, op, upper if op == "in" else upper[0])
        return node

    def time_value(self, value: Value, value_at: int) -> int:
        if isinstance(value, int | float):
            # Infinities and NaN have no integer; beyond int64 no database column holds it.
            if not math.isfinite(value) or abs(value) > _INT64:
                self.fail(
                    f"number out of range: times are epoch milliseconds within +-{_INT64}",
                    at=value_at,
                )
            return int(value)
        try:
            return to_ms(datetime.fromisoformat(str(value)))
        except ValueError:
            self.fail("times are epoch milliseconds or ISO-8601 strings", at=value_at)
            raise AssertionError("unreachable") from None
