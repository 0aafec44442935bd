"""MLflow search strings: run filters translated to driftline's search language, and the
small ``AND``-joined filters of experiments, logged models and the registry evaluated here.

MLflow's run filter (``metrics.loss < 1 and params.lr = '0.1' and tags.`k` = 'v'``) is
close to driftline's (``driftline.tracking.search``), which is a superset with ``or``,
``not`` and parentheses. The differences are in identifiers, so the text is tokenized,
its identifiers rewritten, and the result parsed by driftline's own parser, which checks
types once for every backend:

- an identifier without a prefix is an attribute (``status = 'FINISHED'``);
- MLflow's prefixes ``run.``, ``parameter.`` and ``created`` (= ``start_time``) map to
  driftline's; ``datasets.*`` has no driftline equivalent and is refused;
- tags MLflow keeps as run fields map to attributes: ``tags.mlflow.runName`` ->
  ``attributes.name``, ``mlflow.user`` -> ``user``, ``mlflow.parentRunId`` ->
  ``parent_run_id``; git tags map to driftline's (see ``_views.TAG_ALIASES``).

Every search string here has the limits of driftline's language (see
``driftline.tracking.search``): its length, its number of comparisons and values, and
the number of ordering terms, so the filters evaluated in Python are bounded as well.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from driftline.errors import InvalidArgumentError
from driftline.server.mlflow._views import TAG_ALIASES, TAG_ATTRIBUTES
from driftline.server.mlflow._wire import like
from driftline.tracking.search import (
    MAX_COMPARISONS,
    MAX_FILTER_LENGTH,
    MAX_ORDER_TERMS,
    MAX_VALUES,
    Node,
    OrderBy,
    parse_filter,
    parse_order_by,
)

__all__ = [
    "Condition",
    "check_order_by",
    "evaluate",
    "parse_conditions",
    "run_filter",
    "run_order_by",
]

_KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "is", "null", "asc", "desc"}
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_BARE = re.compile(r"[A-Za-z0-9_\-./:]+")
_OPERATORS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_PREFIXES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_ATTRIBUTE_ALIASES = {"created": "start_time"}


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical unit: ``kind`` is ident, word, string, number, op or punct."""

    kind: str
    text: str
    position: int
    prefix: str | None = None  # identifiers: the part before the first dot


def tokenize(text: str) -> list[Token]:
    """Split an MLflow search string into tokens (identifiers keep prefix and key)."""
    if len(text) > MAX_FILTER_LENGTH:
        _fail(
            text,
            MAX_FILTER_LENGTH,
            f"the search string is longer than {MAX_FILTER_LENGTH:,} characters",
        )
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
        elif char == "'":
            value, pos = _quoted(text, pos, "'")
            tokens.append(Token("string", value, pos))
        elif char in '`"':
            value, end = _quoted(text, pos, char)
            tokens.append(Token("ident", value, pos))
            pos = end
        elif char in "(),":
            tokens.append(Token("punct", char, pos))
            pos += 1
        elif any(text.startswith(op, pos) for op in _OPERATORS):
            op = next(op for op in _OPERATORS if text.startswith(op, pos))
            tokens.append(Token("op", "!=" if op == "<>" else op, pos))
            pos += len(op)
        elif (number := _NUMBER.match(text, pos)) and not _continues_bare(text, number.end()):
            tokens.append(Token("number", number.group(0), pos))
            pos = number.end()
        elif bare := _BARE.match(text, pos):
            pos = bare.end()
            tokens.append(_word(text, bare.group(0), bare.start(), pos))
            if tokens[-1].kind == "ident" and tokens[-1].text == "" and pos < len(text):
                # ``tags.`key``` / ``metrics."a b"``: the key is the quoted part.
                quote = text[pos]
                if quote not in '`"':
                    _fail(text, pos, "expected a key after the prefix")
                key, pos = _quoted(text, pos, quote)
                tokens[-1] = Token("ident", key, tokens[-1].position, tokens[-1].prefix)
        else:
            _fail(text, pos, f"unexpected character {char!r}")
    return tokens


def _continues_bare(text: str, end: int) -> bool:
    """``1a`` or ``0.5x`` is not a number followed by a word."""
    return end < len(text) and bool(re.match(r"[A-Za-z_]", text[end]))


def _word(text: str, word: str, start: int, end: int) -> Token:
    prefix, dot, key = word.partition(".")
    if dot:
        if not key and (end >= len(text) or text[end] not in '`"'):
            _fail(text, end, "expected a key after the prefix")
        return Token("ident", key, start, prefix)
    if word.lower() in _KEYWORDS:
        return Token("word", word.lower(), start)
    return Token("ident", word, start)


def _quoted(text: str, pos: int, quote: str) -> tuple[str, int]:
    out = []
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif char == quote:
            if text.startswith(quote, i + 1):  # SQL-style doubled quote
                out.append(quote)
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    _fail(text, pos, "unterminated quote")
    raise AssertionError("unreachable")


def _fail(text: str, pos: int, message: str) -> None:
    raise InvalidArgumentError(
        f"Invalid search string at position {pos + 1}: {message}: {_shown(text)}"
    )


def _shown(text: str, limit: int = 200) -> str:
    """``text`` quoted for an error message, cut short so a huge filter is not echoed."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text):,} chars)"


# -- run search -------------------------------------------------------------------------


def _run_field(token: Token, text: str) -> tuple[str, str]:
    """``(driftline prefix, key)`` of an MLflow identifier in a run search."""
    raw_prefix = (token.prefix or "attributes").lower()
    if raw_prefix in ("dataset", "datasets"):
        _fail(text, token.position, "driftline does not search runs by dataset inputs")
    prefix = _PREFIXES.get(raw_prefix)
    if prefix is None:
        _fail(
            text,
            token.position,
            f"unknown prefix {token.prefix!r}; use metrics., params., tags. or attributes.",
        )
    assert prefix is not None
    key = token.text
    if prefix == "attributes":
        key = _ATTRIBUTE_ALIASES.get(key.lower(), key)
    elif prefix == "tags" and key in TAG_ATTRIBUTES:
        prefix, key = "attributes", TAG_ATTRIBUTES[key]
    elif prefix == "tags" and key in TAG_ALIASES:
        key = TAG_ALIASES[key]
    return prefix, key


def _render_key(key: str) -> str:
    if "`" not in key:
        return f"`{key}`"
    if '"' not in key:
        return f'"{key}"'
    raise InvalidArgumentError(f'A key cannot contain both ` and ": {key!r}')


def _translate(text: str) -> str:
    parts = []
    for token in tokenize(text):
        if token.kind == "ident":
            prefix, key = _run_field(token, text)
            parts.append(f"{prefix}.{_render_key(key)}")
        elif token.kind == "string":
            parts.append("'" + token.text.replace("'", "''") + "'")
        else:
            parts.append(token.text)
    return " ".join(parts)


def run_filter(text: str | None) -> Node | None:
    """Parse an MLflow run filter into driftline's search tree (``None`` for no filter)."""
    if text is None or not text.strip():
        return None
    translated = _translate(text)
    try:
        return parse_filter(translated)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"Invalid filter {_shown(text)}: {exc}") from None


def check_order_by(terms: list[Any]) -> list[Any]:
    """``terms`` if there are at most ``MAX_ORDER_TERMS`` of them, else a 400."""
    if len(terms) > MAX_ORDER_TERMS:
        raise InvalidArgumentError(
            f"order_by has at most {MAX_ORDER_TERMS} terms, got {len(terms)}"
        )
    return terms


def run_order_by(terms: list[str]) -> tuple[OrderBy, ...]:
    """Parse MLflow ``order_by`` terms (``metrics.loss DESC``, ``start_time``)."""
    check_order_by(terms)
    translated = []
    for term in terms:
        if not isinstance(term, str) or not term.strip():
            raise InvalidArgumentError(f"Invalid order_by term {term!r}")
        translated.append(_translate(term))
    try:
        return parse_order_by(translated)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"Invalid order_by {_shown(repr(terms))}: {exc}") from None


# -- small AND-joined filters, evaluated in Python --------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """``<prefix>.<key> <op> <value>``; ``prefix`` is ``None`` for a bare attribute."""

    prefix: str | None
    key: str
    op: str
    value: Any


def parse_conditions(text: str | None) -> list[Condition]:
    """Parse ``a = 'x' AND tags.k LIKE 'y%' AND n IN ('p', 'q')`` into conditions."""
    if text is None or not text.strip():
        return []
    tokens = tokenize(text)
    conditions = []
    values = 0
    i = 0
    while True:
        if i >= len(tokens) or tokens[i].kind != "ident":
            _fail(text, tokens[i].position if i < len(tokens) else len(text), "expected a field")
        field = tokens[i]
        i += 1
        op, i = _operator(tokens, i, text)
        value, i = _value(tokens, i, text, op)
        prefix = field.prefix.lower() if field.prefix else None
        conditions.append(Condition(prefix, field.text, op, value))
        values += len(value) if isinstance(value, tuple) else 1
        if len(conditions) > MAX_COMPARISONS or values > MAX_VALUES:
            _fail(
                text,
                field.position,
                f"a search string has at most {MAX_COMPARISONS} conditions "
                f"and {MAX_VALUES:,} values",
            )
        if i >= len(tokens):
            return conditions
        if tokens[i].kind != "word" or tokens[i].text != "and":
            _fail(text, tokens[i].position, "expected AND (only AND joins conditions here)")
        i += 1


def _operator(tokens: list[Token], i: int, text: str) -> tuple[str, int]:
    if i < len(tokens) and tokens[i].kind == "op":
        return tokens[i].text, i + 1
    if i < len(tokens) and tokens[i].kind == "word":
        word = tokens[i].text
        if word == "not" and i + 1 < len(tokens) and tokens[i + 1].text in ("in", "like", "ilike"):
            return f"not {tokens[i + 1].text}", i + 2
        if word in ("in", "like", "ilike"):
            return word, i + 1
    _fail(text, tokens[i].position if i < len(tokens) else len(text), "expected an operator")
    raise AssertionError("unreachable")


def _value(tokens: list[Token], i: int, text: str, op: str) -> tuple[Any, int]:
    def scalar(j: int) -> tuple[Any, int]:
        if j < len(tokens) and tokens[j].kind == "string":
            return tokens[j].text, j + 1
        if j < len(tokens) and tokens[j].kind == "number":
            number = float(tokens[j].text)
            return (int(number) if number.is_integer() else number), j + 1
        _fail(text, tokens[j].position if j < len(tokens) else len(text), "expected a value")
        raise AssertionError("unreachable")

    if not op.endswith("in"):
        return scalar(i)
    if i >= len(tokens) or tokens[i].text != "(":
        _fail(text, tokens[i].position if i < len(tokens) else len(text), "expected '('")
    values = []
    i += 1
    while True:
        value, i = scalar(i)
        values.append(value)
        if i < len(tokens) and tokens[i].text == ",":
            i += 1
            continue
        if i < len(tokens) and tokens[i].text == ")":
            return tuple(values), i + 1
        _fail(text, tokens[i].position if i < len(tokens) else len(text), "expected ',' or ')'")


def evaluate(conditions: list[Condition], lookup: Callable[[Condition], Any]) -> bool:
    """Whether every condition holds; ``lookup`` gives the compared value (``None``: absent)."""
    return all(_holds(condition, lookup(condition)) for condition in conditions)


def _holds(condition: Condition, actual: Any) -> bool:
    op, expected = condition.op, condition.value
    if actual is None:
        # A missing field matches only negations: the client adds
        # "tags.`mlflow.prompt.is_prompt` != 'true'" to model searches, meaning "not a prompt".
        return op in ("!=", "not in", "not like", "not ilike")
    if op in ("like", "ilike", "not like", "not ilike"):
        matched = like(str(actual), str(expected), ignore_case="ilike" in op)
        return matched != op.startswith("not")
    if op in ("in", "not in"):
        found = any(_equal(actual, value) for value in expected)
        return found != (op == "not in")
    if op == "=":
        return _equal(actual, expected)
    if op == "!=":
        return not _equal(actual, expected)
    try:
        left, right = float(actual), float(expected)
    except (TypeError, ValueError):
        left, right = str(actual), str(expected)  # type: ignore[assignment]
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, int | float) and not isinstance(actual, str):
        return float(actual) == float(expected)
    return str(actual) == str(expected)
