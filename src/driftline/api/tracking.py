"""Wire schemas of the tracking routes (``/api/v1/experiments``, ``/runs``, ``/batches``).

Request bodies are strict pydantic models: a wrong type is a 400, never a silent
coercion, and unknown fields are refused so a typo does not pass unnoticed. Answers are
records encoded with :mod:`driftline.api.codec`.

The logging batch is the exception: it is the hot path (hundreds of thousands of metric
points per second), so it has no model. Its body is columnar JSON, parallel arrays per
kind of row, described by :data:`LOG_BATCH_SCHEMA` for the OpenAPI document and parsed
by :func:`encode_log_batch` / :func:`decode_log_batch` without a Python object per row.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from driftline.api.codec import decode_float, encode_float
from driftline.core.values import INT64_MAX, MAX_MS, MIN_MS, check_ms
from driftline.errors import InvalidArgumentError

__all__ = [
    "LOG_BATCH_SCHEMA",
    "MAX_LIST_PAGE",
    "ArtifactEntriesBody",
    "ArtifactEntryBody",
    "ExperimentCreateBody",
    "LifecycleBody",
    "RunCreateBody",
    "RunSearchBody",
    "RunStatusBody",
    "decode_log_batch",
    "encode_log_batch",
]

# A store page is asked for one more item than the service shows (to know if there is
# a next page), and experiment-name suggestions read up to 1000 names.
MAX_LIST_PAGE = 5001
_INT64 = INT64_MAX

Lifecycle = Literal["active", "deleted"]
Status = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]

# The schemas say what the server's checks (the service's rules) accept, so the OpenAPI
# document is honest: a name has a non-blank character, a key is what validate_key
# allows (bar the '..' rule, which a pattern without look-ahead cannot state). They only
# document: the tracking service enforces these rules, once for every entry point, so a
# bad name or tag gets the same error through the SDK, this API and the MLflow routes.
Name = Annotated[str, WithJsonSchema({"type": "string", "maxLength": 256, "pattern": r"\S"})]
TagKey = Annotated[
    str,
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z0-9_\-.: ][A-Za-z0-9_\-./: ]{0,249}$"}),
]
TagValue = Annotated[str, WithJsonSchema({"type": "string", "maxLength": 8000})]


def _only_valid_keys(schema: dict[str, Any]) -> None:
    schema["additionalProperties"] = False  # the keys are the patternProperties' only


def _whole(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer (and JSON encoders may write one): take it as
    # 3; a fraction still fails the strict integer check.
    if type(value) is float and value.is_integer():
        return int(value)
    return value


Int = Annotated[int, BeforeValidator(_whole)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class ExperimentCreateBody(_Body):
    """``POST /experiments``."""

    name: Name
    description: str | None = Field(default=None, max_length=100_000)
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, json_schema_extra=_only_valid_keys)


class LifecycleBody(_Body):
    """``PUT /experiments/{id}/lifecycle`` and ``PUT /runs/{id}/lifecycle``."""

    stage: Lifecycle


class RunCreateBody(_Body):
    """``POST /runs``: a RUNNING run in an experiment."""

    experiment_id: str = Field(max_length=64)
    name: Name
    user: str = Field(min_length=1, max_length=256)
    start_time: Int = Field(ge=MIN_MS, le=MAX_MS, description="Epoch milliseconds")
    parent_id: str | None = Field(default=None, max_length=64)
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, json_schema_extra=_only_valid_keys)


class RunStatusBody(_Body):
    """``POST /runs/{id}/status``: move a run from ``expected`` to ``status`` atomically."""

    status: Status
    # Constraints before the validator, or the schema shows them as unknown keywords.
    end_time: Annotated[int, Interval(ge=MIN_MS, le=MAX_MS), BeforeValidator(_whole)] | None = None
    expected: Status = "RUNNING"


class RunSearchBody(_Body):
    """``POST /runs/search``: the fields of a run query, the filter as its text."""

    experiment_ids: list[str] | None = Field(default=None, max_length=1000)
    filter: str | None = Field(
        default=None,
        max_length=100_000,
        description="The search language, e.g. \"metrics.auc > 0.8 and params.C = '1'\"",
    )
    order_by: list[str] = Field(
        default_factory=list, max_length=20, description='e.g. ["metrics.auc desc"]'
    )
    max_results: Int = Field(default=100, ge=1, le=MAX_LIST_PAGE)
    offset: Int = Field(default=0, ge=0, le=_INT64)
    lifecycle: Lifecycle | None = Field(
        default="active", description="Only runs in this stage; null for all"
    )


class ArtifactEntryBody(_Body):
    """A file logged to a run: where it is in the run and the content it points to."""

    path: str = Field(max_length=1024, pattern=r"^[^/\\\x00-\x1f\x7f][^\\\x00-\x1f\x7f]*$")
    digest: str = Field(pattern=r"^(blake3|sha256):[0-9a-f]{64}$")
    size: Int = Field(ge=0, le=_INT64)
    created_at: Int = Field(ge=MIN_MS, le=MAX_MS, description="Epoch milliseconds")


class ArtifactEntriesBody(_Body):
    """``POST /runs/{id}/artifacts``: record logged files (a path logged again moves)."""

    artifacts: list[ArtifactEntryBody]


# -- the logging batch --------------------------------------------------------------------

_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_METRIC_FIELDS = ("run_id", "key", "value", "step", "timestamp")
_TEXT_FIELDS = ("run_id", "key", "value")


def _columns_schema(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(fields),
        "properties": {name: {"type": "array", "items": item} for name, item in fields.items()},
    }


_NUMBER = {
    "oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]
}
_TEXT_COLUMNS = _columns_schema({f: {"type": "string"} for f in _TEXT_FIELDS})

LOG_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": (
        "Rows as parallel arrays (row i is the i-th item of every array of its kind). "
        "`key` is an idempotency key: a batch sent again with a key the server has seen "
        "is acknowledged without being written twice."
    ),
    "properties": {
        "key": {"type": "string", "pattern": _KEY.pattern},
        "metrics": _columns_schema(
            {
                "run_id": {"type": "string"},
                "key": {"type": "string"},
                "value": _NUMBER,
                "step": {"type": "integer"},
                "timestamp": {
                    "type": "integer",
                    "minimum": MIN_MS,
                    "maximum": MAX_MS,
                    "description": "Epoch milliseconds",
                },
            }
        ),
        "params": _TEXT_COLUMNS,
        "tags": _TEXT_COLUMNS,
        "heartbeats": {"type": "array", "items": {"type": "string"}},
    },
}

MetricColumns = tuple[list[str], list[str], list[float], list[int], list[int]]
TextColumns = tuple[list[str], list[str], list[str]]


def encode_log_batch(
    key: str,
    metrics: list[tuple[str, str, float, int, int]],
    params: list[tuple[str, str, str]],
    tags: list[tuple[str, str, str]],
    heartbeats: list[str],
) -> bytes:
    """The columnar JSON body of a logging batch (rows are the writer's tuples)."""
    import orjson

    body: dict[str, Any] = {"key": key}
    if metrics:
        run_ids, keys, values, steps, stamps = zip(*metrics, strict=True)
        # JSON has no NaN or infinities (orjson would write null): spell them out. The
        # sum is finite exactly when every value is (barring overflow, which only costs
        # the slow path).
        if not math.isfinite(sum(values)):
            values = tuple(encode_float(v) for v in values)
        body["metrics"] = dict(
            zip(_METRIC_FIELDS, (run_ids, keys, values, steps, stamps), strict=True)
        )
    if params:
        body["params"] = dict(zip(_TEXT_FIELDS, zip(*params, strict=True), strict=True))
    if tags:
        body["tags"] = dict(zip(_TEXT_FIELDS, zip(*tags, strict=True), strict=True))
    if heartbeats:
        body["heartbeats"] = heartbeats
    return orjson.dumps(body)


def decode_log_batch(
    raw: bytes,
) -> tuple[str, MetricColumns | None, TextColumns | None, TextColumns | None, list[str]]:
    """Parse and type-check a batch body: ``(key, metrics, params, tags, heartbeats)``.

    Columns are checked whole (one ``set(map(type, ...))`` each) rather than row by row.
    Raises:
        InvalidArgumentError: the body is not JSON or not a well-formed batch.
    """
    import orjson

    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgumentError(f"The batch body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError("The batch body must be a JSON object")
    unknown = set(data) - {"key", "metrics", "params", "tags", "heartbeats"}
    if unknown:
        raise InvalidArgumentError(
            f"Unknown field(s) in the batch: {', '.join(sorted(map(str, unknown)))}"
        )
    key = data.get("key", "")
    if key is None:
        key = ""
    if not isinstance(key, str) or (key and not _KEY.match(key)):
        raise InvalidArgumentError("key must be 1-64 letters, digits, '_', '.', ':' or '-'")
    metrics = None
    if data.get("metrics") is not None:
        run_ids, keys, values, steps, stamps = _columns(data["metrics"], "metrics", _METRIC_FIELDS)
        _check_types(run_ids, str, "metrics.run_id")
        _check_types(keys, str, "metrics.key")
        metrics = (run_ids, keys, _floats(values), _int64s(steps, "metrics.step"),
                   _stamps(stamps))  # fmt: skip
    params = _text_columns(data.get("params"), "params")
    tags = _text_columns(data.get("tags"), "tags")
    heartbeats = data.get("heartbeats") or []
    if not isinstance(heartbeats, list):
        raise InvalidArgumentError("heartbeats must be an array of run ids")
    _check_types(heartbeats, str, "heartbeats")
    return key, metrics, params, tags, heartbeats


def _columns(data: Any, kind: str, fields: tuple[str, ...]) -> list[list[Any]]:
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{kind} must be an object of arrays: {', '.join(fields)}")
    if set(data) != set(fields):
        raise InvalidArgumentError(f"{kind} must have exactly the arrays {', '.join(fields)}")
    columns = [data[name] for name in fields]
    for name, column in zip(fields, columns, strict=True):
        if not isinstance(column, list):
            raise InvalidArgumentError(f"{kind}.{name} must be an array")
    if len({len(column) for column in columns}) > 1:
        raise InvalidArgumentError(f"The arrays of {kind} must all have the same length")
    return columns


def _text_columns(data: Any, kind: str) -> TextColumns | None:
    if data is None:
        return None
    run_ids, keys, values = _columns(data, kind, _TEXT_FIELDS)
    for name, column in (("run_id", run_ids), ("key", keys), ("value", values)):
        _check_types(column, str, f"{kind}.{name}")
    return run_ids, keys, values


def _check_types(column: list[Any], expected: type, where: str) -> None:
    if column and set(map(type, column)) != {expected}:
        bad = next(v for v in column if type(v) is not expected)
        raise InvalidArgumentError(
            f"{where} must hold only {expected.__name__}s, found {type(bad).__name__} {bad!r}"
        )


def _floats(values: list[Any]) -> list[float]:
    if not values or set(map(type, values)) == {float}:
        return values
    # Integers, and non-finite values spelled as strings: convert them one by one.
    return [v if type(v) is float else decode_float(v, "metrics.value") for v in values]


def _int64s(values: list[Any], where: str) -> list[int]:
    if values and set(map(type, values)) != {int}:
        # Whole floats (3.0) are integers to JSON Schema; anything else is an error.
        bad = next((v for v in values if type(v) is not int and not _is_whole(v)), None)
        if bad is not None:
            raise InvalidArgumentError(
                f"{where} must hold only integers, found {type(bad).__name__} {bad!r}"
            )
        values = [v if type(v) is int else int(v) for v in values]
    if values and (min(values) < -_INT64 - 1 or max(values) > _INT64):
        raise InvalidArgumentError(f"{where} must fit in 64 bits")
    return values


def _stamps(values: list[Any]) -> list[int]:
    stamps = _int64s(values, "metrics.timestamp")
    # Whole columns are checked with min/max; only a bad one is looked at row by row.
    if stamps and (min(stamps) < MIN_MS or max(stamps) > MAX_MS):
        for stamp in stamps:
            check_ms(stamp, "metrics.timestamp")
    return stamps


def _is_whole(value: Any) -> bool:
    return type(value) is float and value.is_integer()
