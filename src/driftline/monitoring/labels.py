"""Labels (ground truth) of served requests: read, checked, and keyed like the prediction log.

A label names the request it belongs to by ``request_id`` (the id serving answered with
and wrote to the prediction log) and, for a request that carried several rows, ``row``
(its position in the request, default 0). ``label`` is a number (regression targets,
0/1 or integer classes, booleans as 0/1) or text (class names). ``time`` is when the
outcome became known (default: when it is ingested); a label joins a prediction only when
it came within the join window after it (:mod:`.scoring`).

Every column is checked before anything is stored: a wrong type is an
``InvalidArgumentError`` naming the column, never a half-written batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "LABEL_COLUMNS",
    "MAX_BODY_ROWS",
    "LabelBatch",
    "LabelIngest",
    "read_label_body",
    "read_label_table",
]

#: The columns a label table may have (``request_id`` and ``label`` are required).
LABEL_COLUMNS = ("request_id", "label", "row", "time")
_MAX_ID = 128  # serving's request ids are at most 128 characters
#: The most label rows one REST body may hold (a compressed Parquet body can be small).
MAX_BODY_ROWS = 5_000_000


@dataclass(frozen=True, slots=True)
class LabelBatch:
    """Checked labels as columns, the last of duplicate keys kept (``duplicates`` counts
    the others)."""

    request_id: list[str]
    row: np.ndarray  # int64
    value_num: np.ndarray | None  # float64, when the labels are numbers
    value_text: list[str] | None  # when the labels are text
    time: np.ndarray  # int64 epoch milliseconds
    duplicates: int

    def __len__(self) -> int:
        return len(self.request_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelIngest:
    """What one ingestion did.

    Attributes:
        deployment: The deployment the labels belong to.
        received: Label rows given.
        inserted: Requests (rows) labelled for the first time.
        replaced: Labels that replaced an earlier label of the same request row (a
            duplicate key within the batch counts too: the last one is kept).
        unknown: Labels whose request id is not in the deployment's prediction log (kept:
            a replica may not have flushed its log yet; they join once it does).
        unknown_examples: Up to 10 of those request ids.
    """

    deployment: str
    received: int
    inserted: int
    replaced: int
    unknown: int
    unknown_examples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "deployment": self.deployment,
            "received": self.received,
            "inserted": self.inserted,
            "replaced": self.replaced,
            "unknown": self.unknown,
            "unknown_examples": list(self.unknown_examples),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelIngest:
        """Rebuild an ingestion from :meth:`to_dict` output."""
        return cls(
            deployment=d["deployment"],
            received=d["received"],
            inserted=d["inserted"],
            replaced=d["replaced"],
            unknown=d["unknown"],
            unknown_examples=tuple(d.get("unknown_examples", ())),
        )

    def __add__(self, other: LabelIngest) -> LabelIngest:
        """Two ingestions of one deployment as one (a table sent in several bodies)."""
        return LabelIngest(
            deployment=self.deployment,
            received=self.received + other.received,
            inserted=self.inserted + other.inserted,
            replaced=self.replaced + other.replaced,
            unknown=self.unknown + other.unknown,
            unknown_examples=(self.unknown_examples + other.unknown_examples)[:10],
        )


def read_label_body(body: bytes, kind: str) -> Any:
    """The Arrow table of a REST labels body: ``json`` (``{"labels": [{"request_id":
    ..., "label": ...}, ...]}``), ``arrow`` (an IPC stream or file) or ``parquet``.

    Raises:
        InvalidArgumentError: The body cannot be read as that kind (the columns are
            checked by :func:`read_label_table`).
        PayloadTooLargeError: More than :data:`MAX_BODY_ROWS` rows.
    """
    import io

    import pyarrow as pa

    from driftline.errors import PayloadTooLargeError

    try:
        if kind == "json":
            table = _json_labels(body)
        elif kind == "parquet":
            import pyarrow.parquet as pq

            found = pq.ParquetFile(io.BytesIO(body))
            if found.metadata.num_rows > MAX_BODY_ROWS:
                raise PayloadTooLargeError(_too_many(found.metadata.num_rows))
            table = found.read()
        else:
            import pyarrow.ipc as ipc

            source = io.BytesIO(body)
            reader = ipc.open_file(source) if body[:6] == b"ARROW1" else ipc.open_stream(source)
            table = reader.read_all()
    except (pa.ArrowException, OSError, ValueError, TypeError, UnicodeError) as exc:
        raise InvalidArgumentError(f"Cannot read the labels body as {kind}: {exc}") from None
    if table.num_rows > MAX_BODY_ROWS:
        raise PayloadTooLargeError(_too_many(table.num_rows))
    return table


def _too_many(rows: int) -> str:
    return f"{rows:,} labels in one body; send at most {MAX_BODY_ROWS:,} per request"


def _json_labels(body: bytes) -> Any:
    import orjson
    import pyarrow as pa

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgumentError(f"The labels body is not JSON: {exc}") from None
    records = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidArgumentError(
            'A JSON labels body is {"labels": [{"request_id": "...", "label": 1}, ...]}'
        )
    if len(records) > MAX_BODY_ROWS:
        from driftline.errors import PayloadTooLargeError

        raise PayloadTooLargeError(_too_many(len(records)))
    if not records:
        return pa.table({"request_id": pa.array([], pa.string()), "label": pa.array([], pa.int8())})
    names = list(dict.fromkeys(k for r in records for k in r))
    columns = {}
    for name in names:
        values = [r.get(name) for r in records]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowException, OverflowError) as exc:
            raise InvalidArgumentError(
                f"Column {name!r} of the labels body holds mixed or invalid values: {exc}"
            ) from None
    return pa.table(columns)


def read_label_table(data: Any, *, now_ms: int) -> LabelBatch:
    """Check a labels table (DataFrame, Arrow table, Parquet/CSV path) and take its columns.

    Raises:
        InvalidArgumentError: A column is missing, unexpected, or of the wrong type (the
            message names it), or a label is missing.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _arrow(data)
    names = list(table.column_names)
    extra = [c for c in names if c not in LABEL_COLUMNS]
    missing = [c for c in ("request_id", "label") if c not in names]
    if missing or extra:
        problem = f"missing {missing}" if missing else f"unexpected {extra}"
        raise InvalidArgumentError(
            f"A labels table has the columns request_id, label and optionally row and time; "
            f"{problem} (it has {names})"
        )
    table = table.combine_chunks()
    ids = _request_ids(table.column("request_id"))
    num, text = _labels(table.column("label"))
    n = table.num_rows
    row = _rows(table.column("row")) if "row" in names else np.zeros(n, dtype=np.int64)
    when = _times(table.column("time"), now_ms) if "time" in names else None
    if when is None:
        when = np.full(n, now_ms, dtype=np.int64)
    # The last of duplicate keys wins, as a later ingestion would.
    keys = pa.table({"id": ids, "row": row, "i": np.arange(n)})
    last = keys.group_by(["id", "row"]).aggregate([("i", "max")]).column("i_max")
    keep = np.sort(np.asarray(last.to_numpy()))
    ids_kept = pc.take(ids, pa.array(keep)).to_pylist()
    return LabelBatch(
        request_id=ids_kept,
        row=row[keep],
        value_num=None if num is None else num[keep],
        value_text=None if text is None else [text[i] for i in keep],
        time=when[keep],
        duplicates=n - len(keep),
    )


def _arrow(data: Any) -> Any:
    from driftline.monitoring._frames import open_source

    source = open_source(data)
    table = source.table
    if not hasattr(table, "schema"):
        import pyarrow as pa

        try:
            table = pa.Table.from_pandas(table, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidArgumentError(f"Cannot read the labels table: {exc}") from None
    return table


def _request_ids(col: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    # A CSV reader turns numeric-looking ids into numbers.
    if pa.types.is_integer(t) or (pa.types.is_dictionary(t) and _is_text(t.value_type)):
        col = pc.cast(col, pa.string())
    elif not _is_text(t):
        raise InvalidArgumentError(f"Column 'request_id' must hold text request ids, not {t}")
    if col.null_count:
        raise InvalidArgumentError(f"Column 'request_id' has {col.null_count} missing ids")
    _no_nul(col, "request_id")
    lengths = pc.utf8_length(col)
    if len(col) and (pc.max(lengths).as_py() > _MAX_ID or pc.min(lengths).as_py() == 0):
        raise InvalidArgumentError(f"Column 'request_id' holds ids of 1-{_MAX_ID} characters")
    return pc.cast(col, pa.string())


def _labels(col: Any) -> tuple[np.ndarray | None, list[str] | None]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if col.null_count:
        raise InvalidArgumentError(f"Column 'label' has {col.null_count} missing labels")
    if pa.types.is_dictionary(t):
        col, t = pc.cast(col, t.value_type), t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        values = np.asarray(pc.cast(col, pa.float64()).to_numpy(), dtype=np.float64)
        if not np.isfinite(values).all():
            raise InvalidArgumentError("Column 'label' holds NaN or infinite values")
        return values, None
    if _is_text(t):
        _no_nul(col, "label")
        return None, col.to_pylist()
    raise InvalidArgumentError(f"Column 'label' must hold numbers, booleans or text, not {t}")


def _rows(col: Any) -> np.ndarray:
    import numpy as np
    import pyarrow as pa

    if not pa.types.is_integer(col.type) or col.null_count:
        raise InvalidArgumentError(
            f"Column 'row' must hold the row's position in its request (0, 1, ...), not {col.type}"
        )
    rows = np.asarray(col.to_numpy(), dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= 2**31):
        raise InvalidArgumentError("Column 'row' holds positions below 0 or too large")
    return rows


def _times(col: Any, now_ms: int) -> np.ndarray:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if _is_text(t):
        try:
            col = pc.cast(col, pa.timestamp("us", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InvalidArgumentError(
                "Column 'time' holds text that is not an ISO timestamp (2025-01-31T12:00:00Z)"
            ) from None
        t = col.type
    if not pa.types.is_timestamp(t):
        raise InvalidArgumentError(f"Column 'time' must hold timestamps, not {t}")
    # Naive timestamps are UTC, as everywhere in driftline.
    ms = pc.cast(pc.cast(col, pa.timestamp("ms", tz=t.tz), safe=False), pa.int64())
    return np.asarray(pc.fill_null(ms, now_ms).to_numpy(), dtype=np.int64)


def _no_nul(col: Any, name: str) -> None:
    """Refuse NUL characters (PostgreSQL cannot store them in text)."""
    import pyarrow.compute as pc

    if len(col) and pc.any(pc.match_substring(col, "\x00")).as_py():
        raise InvalidArgumentError(f"Column {name!r} holds a NUL character (\\u0000)")


def _is_text(t: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))
