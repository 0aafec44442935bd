"""Free-form JSON values (evaluation metrics, alias-move details, audit entries, ...).

Every free-form value driftline stores as JSON text is checked (and normalized) by
:func:`check_json_value` before it is written, so it can always be read back and sent
on the wire: readers, the JSON encoders of the server and clients, and PostgreSQL all
have nesting limits, and a value they cannot handle would break every listing that
includes it.

The rules:

- at most :data:`MAX_JSON_DEPTH` levels of nested objects and arrays;
- at most :data:`MAX_JSON_BYTES` bytes once encoded;
- object keys are strings; values are null, booleans, strings, numbers, arrays and
  objects (tuples become arrays; numpy-style integers and floats become plain ones);
- integers fit in signed 64 bits; floats may be NaN or infinite (driftline's JSON
  writes them as ``NaN``/``Infinity`` and reads them back);
- strings are valid Unicode (no lone surrogates) without NUL characters.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from typing import Any

from driftline.core.values import INT64_MAX, INT64_MIN
from driftline.errors import InvalidArgumentError

__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "check_json_value"]

MAX_JSON_DEPTH = 32
"""The deepest nesting of objects and arrays a stored JSON value may have."""

MAX_JSON_BYTES = 1024 * 1024
"""The largest encoded size (bytes) of a stored JSON value."""


def check_json_value(
    value: Any,
    what: str,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_bytes: int = MAX_JSON_BYTES,
) -> Any:
    """``value`` as plain JSON data, if it can be stored and read back.

    Args:
        value: The value to check.
        what: What the value is, for the error message (``"evaluation metrics"``).
        max_depth: The deepest nesting allowed (a scalar is depth 0).
        max_bytes: The largest encoded size allowed.

    Returns:
        A copy made of ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` and
        ``None`` only.

    Raises:
        InvalidArgumentError: naming ``what`` and the rule the value breaks.

    Example:
        >>> check_json_value({"auc": 0.9, "sizes": (1, 2)}, "metrics")
        {'auc': 0.9, 'sizes': [1, 2]}
    """
    clean = _plain(value, what, 0, max_depth)
    size = len(json.dumps(clean, separators=(",", ":")).encode())
    if size > max_bytes:
        raise InvalidArgumentError(
            f"{what} is {size} bytes as JSON; at most {max_bytes} are stored"
        )
    return clean


def _plain(value: Any, what: str, depth: int, max_depth: int) -> Any:
    # Recursion is bounded by max_depth (checked before descending), never by the input.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value, what)
    if isinstance(value, numbers.Integral):
        number = int(value)
        if not INT64_MIN <= number <= INT64_MAX:
            raise InvalidArgumentError(f"{what} holds the integer {number}, beyond 64 bits")
        return number
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping | list | tuple):
        if depth >= max_depth:
            raise InvalidArgumentError(
                f"{what} nests deeper than {max_depth} levels of objects and arrays; flatten it"
            )
        if isinstance(value, Mapping):
            result = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidArgumentError(
                        f"{what} has the key {key!r}: object keys must be strings"
                    )
                result[_text(key, what)] = _plain(item, what, depth + 1, max_depth)
            return result
        return [_plain(item, what, depth + 1, max_depth) for item in value]
    raise InvalidArgumentError(
        f"{what} holds a {type(value).__name__}, which is not JSON: use objects, arrays, "
        "strings, numbers, booleans and null"
    )


def _text(text: str, what: str) -> str:
    if "\x00" in text:
        raise InvalidArgumentError(f"{what} holds a string with a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(
            f"{what} holds a string that is not valid Unicode (a lone surrogate)"
        ) from None
    return text
