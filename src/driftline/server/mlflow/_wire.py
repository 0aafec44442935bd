"""MLflow's wire conventions: error bodies, request fields, numbers and times.

MLflow speaks "proto-JSON": the JSON form of its protobuf messages. A client reads an
error as ``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}`` with the HTTP
status MLflow uses for that code, and treats a JSON 404 as "the resource is missing"
(a non-JSON 404 means "the endpoint is missing"). Every MLflow route uses
:class:`MlflowRoute`, which turns driftline errors raised by handlers into such bodies,
so handlers simply raise ``NotFoundError``, ``InvalidArgumentError`` and so on.

Request fields are read leniently, the way protobuf's JSON parser does: an int64 may
come as a number or a string of digits, a double as a number or ``"NaN"``/``"Infinity"``.
A field of the wrong type is a 400 ``INVALID_PARAMETER_VALUE`` naming the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import Body
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from driftline.core.clock import to_ms
from driftline.core.values import check_float, check_int64, check_ms
from driftline.errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    DriftlineError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)

__all__ = [
    "JsonBody",
    "MlflowRoute",
    "double",
    "field_enum",
    "field_int",
    "field_list",
    "field_ms",
    "field_str",
    "field_strings",
    "json_double",
    "like",
    "mlflow_error",
    "ms",
    "pairs",
]

# driftline error class -> (HTTP status, MLflow error code), most specific first.
_ERRORS: tuple[tuple[type[DriftlineError], int, str], ...] = (
    (NotFoundError, 404, "RESOURCE_DOES_NOT_EXIST"),
    # MLflow answers "already exists" with 400, and its client looks for this code.
    (AlreadyExistsError, 400, "RESOURCE_ALREADY_EXISTS"),
    (ConflictError, 409, "RESOURCE_CONFLICT"),
    (InvalidArgumentError, 400, "INVALID_PARAMETER_VALUE"),
    (PermissionDeniedError, 403, "PERMISSION_DENIED"),
    (UnauthenticatedError, 401, "UNAUTHENTICATED"),
    (BackendError, 503, "TEMPORARILY_UNAVAILABLE"),
    (IntegrityError, 500, "DATA_LOSS"),
)


def mlflow_error(status: int, code: str, message: str) -> Response:
    """An error response in MLflow's format."""
    headers = {"WWW-Authenticate": 'Basic realm="driftline"'} if status == 401 else None
    return JSONResponse({"error_code": code, "message": message}, status, headers=headers)


def error_for(exc: DriftlineError) -> Response:
    """The MLflow error response for a driftline error."""
    for cls, status, code in _ERRORS:
        if isinstance(exc, cls):
            return mlflow_error(status, code, str(exc))
    return mlflow_error(500, "INTERNAL_ERROR", str(exc))


class MlflowRoute(APIRoute):
    """A route whose driftline errors and invalid requests answer in MLflow's format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except DriftlineError as exc:
                return error_for(exc)
            except RequestValidationError as exc:
                problems = "; ".join(_describe(error) for error in exc.errors())
                return mlflow_error(400, "INVALID_PARAMETER_VALUE", f"Invalid request: {problems}")

        return route


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = str(error.get("msg", "invalid"))
    return f"{where}: {message}" if where else message


# -- reading request fields --------------------------------------------------------------

JsonBody = Annotated[Any, Body()]
"""A handler's JSON body, any shape (checked by :func:`body_of`; absent means ``None``)."""

Fields = Mapping[str, Any]


def body_of(data: Any) -> Fields:
    """A JSON request body as a mapping (an absent body is an empty message)."""
    if data is None:
        return {}
    if isinstance(data, bytes | str):  # sent without a JSON content type
        try:
            data = json.loads(data) if data.strip() else {}
        except ValueError:
            raise InvalidArgumentError("The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"The request body must be a JSON object, not {type(data).__name__}"
        )
    return data


def query_of(request: Request) -> dict[str, Any]:
    """GET parameters as a message: repeated names become lists."""
    fields: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        fields[key] = values if len(values) > 1 else values[0]
    return fields


def field_str(fields: Fields, name: str, *, required: bool = False, default: str = "") -> str:
    """A string field; a missing one is ``default`` (or a 400 when ``required``)."""
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise InvalidArgumentError(f"Missing value for required parameter '{name}'")
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidArgumentError(f"Parameter '{name}' must be a string, got {value!r}")
    text = str(value)
    if "\x00" in text:
        # No database keeps NUL in text (PostgreSQL refuses it); refuse it up front.
        raise InvalidArgumentError(f"Parameter '{name}' contains a NUL character")
    return text


def field_enum(fields: Fields, name: str, names: tuple[str, ...], *, default: str = "") -> str:
    """An enum field: its name (any case), or its number (``names[0]`` is number 1)."""
    value = fields.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= len(names):
        return names[value - 1]
    text = field_str(fields, name, default=default).upper()
    if text and text not in names:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(names)}, got {value!r}")
    return text


def field_int(
    fields: Fields, name: str, *, required: bool = False, default: int | None = None
) -> int | None:
    """An integer field: a JSON number or a string of digits (int64 in proto-JSON)."""
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise InvalidArgumentError(f"Missing value for required parameter '{name}'")
        return default
    whole_float = isinstance(value, float) and value.is_integer()
    if whole_float or (isinstance(value, str) and re.fullmatch(r"[-+]?\d{1,19}", value.strip())):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"Parameter '{name}' must be an integer, got {value!r}")
    return check_int64(value, f"Parameter '{name}'")


def field_ms(fields: Fields, name: str) -> int | None:
    """A time field (epoch milliseconds) in the range driftline stores, or ``None``."""
    value = field_int(fields, name)
    return None if value is None else check_ms(value, f"Parameter '{name}'")


def field_list(fields: Fields, name: str) -> list[Any]:
    """A repeated field (a single value counts as a list of one)."""
    value = fields.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def field_strings(fields: Fields, name: str) -> list[str]:
    """A repeated string field (``experiment_ids``, ``order_by``...)."""
    return [field_str({name: value}, name, required=True) for value in field_list(fields, name)]


def pairs(fields: Fields, name: str) -> dict[str, str]:
    """A repeated ``{"key", "value"}`` field (tags, params) as a dict, in order."""
    result: dict[str, str] = {}
    for item in field_list(fields, name):
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"Each of '{name}' must be an object with key and value")
        key = field_str(item, "key", required=True)
        result[key] = field_str(item, "value")
    return result


def double(value: Any, name: str) -> float:
    """A proto-JSON double: a number, or ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    if isinstance(value, bool) or value is None:
        raise InvalidArgumentError(f"Parameter '{name}' must be a number, got {value!r}")
    if isinstance(value, int | float):
        return check_float(value, f"Parameter '{name}'")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidArgumentError(f"Parameter '{name}' must be a number, got {value!r}")


def json_double(value: float) -> float | str:
    """A float as proto-JSON writes it: non-finite values as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def ms(value: datetime | None) -> int | None:
    """Epoch milliseconds of a time (``None`` stays ``None``)."""
    return None if value is None else to_ms(value)


def like(text: str, pattern: str, *, ignore_case: bool) -> bool:
    """Whether ``text`` matches a SQL ``LIKE`` pattern (``%`` any run, ``_`` one character).

    Greedy two-pointer matching, linear in practice and at most O(len(text) *
    len(pattern)): a regex of ``.*`` runs backtracks exponentially on patterns such as
    ``%a%a%a%a%b``, which any reader could send to pin a server thread for minutes.
    """
    if ignore_case:
        text, pattern = text.casefold(), pattern.casefold()
    t = p = 0
    star_p, star_t = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] in ("_", text[t]) and pattern[p] != "%":
            t, p = t + 1, p + 1
        elif p < len(pattern) and pattern[p] == "%":
            star_p, star_t = p, t
            p += 1
        elif star_p >= 0:  # let the last % absorb one more character
            star_t += 1
            t, p = star_t, star_p + 1
        else:
            return False
    return all(char == "%" for char in pattern[p:])
