"""Records on the wire: frozen dataclasses to JSON-ready values and back.

Every stage's records are frozen dataclasses; this one codec carries all of them, so a
new record needs no hand-written wire form. The rules:

- a dataclass is an object of its fields (by name);
- ``datetime`` is epoch milliseconds (an integer; driftline stores times in ms);
- an enum is its value; a tuple/list/set is an array; a mapping is an object;
- a float that is NaN or infinite is the string ``"NaN"``, ``"Infinity"`` or
  ``"-Infinity"`` (JSON has no such numbers; protobuf's JSON mapping does the same).

Decoding is driven by the dataclass's type hints and is strict: a value of the wrong
shape raises :class:`~driftline.errors.InvalidArgumentError` naming the field.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from driftline.core.clock import from_ms, to_ms
from driftline.core.values import check_float, check_int64, check_ms
from driftline.errors import InvalidArgumentError

__all__ = ["decode", "decode_float", "encode", "encode_float"]

T = TypeVar("T")

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float) -> float | str:
    """A float as JSON allows it: non-finite values become ``"NaN"``/``"Infinity"``."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: Any, where: str = "value") -> float:
    """The inverse of :func:`encode_float`; also accepts integers."""
    if isinstance(value, int | float):  # booleans too: check_float refuses them
        return check_float(value, where)
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    raise InvalidArgumentError(f"{where} must be a number, not {value!r}")


def encode(value: Any) -> Any:
    """A JSON-ready form of a record (or of any value records are built from)."""
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, datetime):
        return to_ms(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in _fields(type(value))}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__} for the wire")


def decode(cls: type[T], data: Any) -> T:
    """Build a ``cls`` record from its :func:`encode`-d form."""
    return typing.cast(T, _decode(cls, data, cls.__name__))


@functools.cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.init)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _decode(tp: Any, data: Any, where: str) -> Any:
    if tp is Any:
        return data
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        options = get_args(tp)
        if data is None:
            if type(None) in options:
                return None
            raise InvalidArgumentError(f"{where} must not be null")
        inner = [o for o in options if o is not type(None)]
        if len(inner) == 1:
            return _decode(inner[0], data, where)
        for option in inner:  # e.g. int | str: the first that accepts the value
            try:
                return _decode(option, data, where)
            except InvalidArgumentError:
                continue
        raise InvalidArgumentError(f"{where}: {data!r} matches none of {tp}")
    if origin is typing.Literal:
        if data not in get_args(tp):
            raise InvalidArgumentError(f"{where} must be one of {get_args(tp)}, not {data!r}")
        return data
    if data is None:
        raise InvalidArgumentError(f"{where} must not be null")
    if origin in (list, tuple, set, frozenset, Sequence) or origin is typing.Sequence:
        if not isinstance(data, list):
            raise InvalidArgumentError(f"{where} must be an array")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(data):
                raise InvalidArgumentError(f"{where} must have {len(args)} items")
            return tuple(
                _decode(a, v, f"{where}[{i}]")
                for i, (a, v) in enumerate(zip(args, data, strict=True))
            )
        item = args[0] if args else Any
        items = [_decode(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
        return (tuple if origin in (tuple, Sequence) else origin)(items)
    if origin in (dict, Mapping) or origin is typing.Mapping:
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"{where} must be an object")
        _key, value_type = get_args(tp) or (str, Any)
        return {k: _decode(value_type, v, f"{where}.{k}") for k, v in data.items()}
    if isinstance(tp, type):
        return _decode_scalar(tp, data, where)
    raise TypeError(f"cannot decode {tp!r}")


def _decode_scalar(tp: type, data: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"{where} must be an object")
        hints = _hints(tp)
        values = {}
        for f in _fields(tp):
            if f.name in data:
                values[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InvalidArgumentError(f"{where}.{f.name} is required")
        return tp(**values)
    if tp is datetime:
        if isinstance(data, bool) or not isinstance(data, int):
            raise InvalidArgumentError(f"{where} must be epoch milliseconds (an integer)")
        return from_ms(check_ms(data, where))
    if issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError:
            known = ", ".join(str(m.value) for m in tp)
            raise InvalidArgumentError(f"{where} must be one of {known}, not {data!r}") from None
    if tp is float:
        return decode_float(data, where)
    if tp is bool:
        if not isinstance(data, bool):
            raise InvalidArgumentError(f"{where} must be true or false")
        return data
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise InvalidArgumentError(f"{where} must be an integer")
        return check_int64(data, where)
    if tp is str:
        if not isinstance(data, str):
            raise InvalidArgumentError(f"{where} must be a string")
        return data
    if isinstance(data, tp):
        return data
    raise InvalidArgumentError(f"{where} must be a {tp.__name__}")
