"""Schemathesis hooks: besides what it generates from the schema, send hostile values.

Loaded by the fuzz test through ``SCHEMATHESIS_HOOKS``. Each generated body (and query)
may have its strings and numbers swapped for inputs that once ended in a 500: lone
surrogates (JSON-escaped in the body), NUL, filters past every limit of the search
language, integers past int64 and floats at the double range's end.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

_DEEP = "(" * 500 + "metrics.a > 1" + ")" * 500
_HOSTILE_TEXT = [
    "metrics.a > 1 and params.p = 'x'",
    _DEEP,
    "not " * 2000 + "metrics.a > 1",
    " and ".join(["metrics.a > 1"] * 3000),
    "attributes.start_time > 99999999999999999999999",
    "metrics.a > " + "9" * 5000,
    "tags.t = '" + "x" * 9000 + "'",
    "a\x00b",
    "x" * 20_000,
]
_SURROGATES = ["x\ud800", "\udc00", "\ud83d\ude00 ok", "\ud800\ud800\udc00"]
_HOSTILE_NUMBERS: list[Any] = [2**63, -(2**63) - 1, 10**30, 1e308, -1e308, 2**53 + 1]


def _hostile(value: Any, texts: list[str]) -> st.SearchStrategy[Any]:
    """``value`` with each string and number possibly replaced by a hostile one."""
    if isinstance(value, dict):
        return st.fixed_dictionaries({k: _hostile(v, texts) for k, v in value.items()})
    if isinstance(value, list):
        return st.tuples(*(_hostile(v, texts) for v in value)).map(list)
    if isinstance(value, str):
        return st.one_of(st.just(value), st.sampled_from(texts))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return st.one_of(st.just(value), st.sampled_from(_HOSTILE_NUMBERS))
    return st.just(value)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    """Bodies are JSON: lone surrogates travel as ``\\ud800`` escapes."""
    return _hostile(body, _HOSTILE_TEXT + _SURROGATES)


@schemathesis.hook
def flatmap_query(context: Any, query: Any) -> st.SearchStrategy[Any]:
    """A query is UTF-8 on the wire, so it cannot carry a surrogate; and it stays short:
    a request line past the HTTP server's own limit is refused before the app sees it."""
    if not isinstance(query, dict):
        return st.just(query)
    return _hostile(query, [text for text in _HOSTILE_TEXT if len(text) < 1000])
