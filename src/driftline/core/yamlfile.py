"""Strict YAML files whose errors name the field and the line it is on.

A file is composed into YAML nodes first and every value's line is remembered under
its dotted path (``canary.steps``, ``triggers[0].drift.monitor``), so a checker can
raise ``deploy.yaml line 4: canary.steps must rise ...`` with :meth:`Located.error`.
Used by ``deploy.yaml`` (serving) and ``retrain.yaml`` (retraining).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = ["Located", "check_keys", "compose", "mapping"]


class Located:
    """Where each value of a file came from (``error("canary.steps", ...)``)."""

    def __init__(self, source: str, lines: Mapping[str, int]) -> None:
        self.source = source
        self.lines = lines

    def where(self, field: str) -> str:
        """``source line N`` for ``field`` (or its nearest parent); ``source`` alone if unknown."""
        line = self.lines.get(field)
        while line is None and ("." in field or "[" in field):
            field = field[: max(field.rfind("."), field.rfind("["))]
            line = self.lines.get(field)
        return f"{self.source} line {line}" if line else self.source

    def error(self, field: str, message: str) -> InvalidArgumentError:
        """An error naming the source and the line of ``field`` (or of its nearest parent)."""
        return InvalidArgumentError(f"{self.where(field)}: {message}")


def compose(text: str, source: str) -> tuple[Any, Located]:
    """Parse YAML ``text`` into plain values and where each one is."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source} line {mark.line + 1}" if mark is not None else source
        raise InvalidArgumentError(f"{where}: not valid YAML: {exc}") from None
    lines: dict[str, int] = {}
    data = _value(node, "", lines, set(), source) if node is not None else None
    return data, Located(source, lines)


def _value(node: Any, path: str, lines: dict[str, int], seen: set[int], source: str) -> Any:
    import yaml

    # An alias (*name) is the node of its anchor met again: refused, because a few bytes
    # of nested aliases expand into billions of values (a "billion laughs" document).
    if id(node) in seen:
        raise InvalidArgumentError(
            f"{source} line {node.start_mark.line + 1}: YAML anchors and aliases "
            "(&name, *name) are not accepted; write the value out"
        )
    seen.add(id(node))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            lines[child] = key_node.start_mark.line + 1
            out[key] = _value(value_node, child, lines, seen, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _value(item, f"{path}[{i}]", lines, seen, source) for i, item in enumerate(node.value)
        ]
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def check_keys(data: Mapping[str, Any], known: tuple[str, ...], where: str, at: Located) -> None:
    """Refuse a key not in ``known`` (a typo must never turn a setting off)."""
    for key in data:
        if key not in known:
            field = f"{where}.{key}" if where else key
            raise at.error(field, f"unknown key {field!r}; known: {', '.join(known)}")


def mapping(value: Any, field: str, at: Located) -> dict[str, Any]:
    """``value`` when it is a mapping, else an error naming ``field``."""
    if not isinstance(value, dict):
        raise at.error(field, f"{field} must be a mapping, got {value!r}")
    return value
