"""The prediction log: every served request as one row of Parquet, written in the background.

Layout (one folder per deployment and UTC day; each file written whole, then renamed
into place on a local disk, so a reader never sees half a file)::

    <root>/deployment=<name>/date=<YYYY-MM-DD>/<uuid7>.parquet

``<root>`` is ``<home>/predictions`` when the workspace's artifact store is a local
folder, and ``<artifact root>/predictions`` (written through fsspec) when it is an
object store. These files are not content-addressed objects: they live outside the
``blake3/`` and ``sha256/`` keys the garbage collector lists, so ``driftline gc``
never sweeps them (they are roots by construction; deleting old days is retention,
which is the operator's call).

Schema (stable: the monitoring stage reads it; add columns, never change these)::

    request_id     string     the request's id (X-Request-ID, OIP id, or a new UUIDv7)
    deployment     string     the deployment that answered
    model          string     the registered model's name
    model_version  int64      the registered version that answered
    variant        string     stable | canary | shadow
    time           timestamp[us, UTC]   when the request arrived
    endpoint       string     predict | invocations | v2
    inputs         string     JSON: {column: [values]} for tables, nested lists for
                              tensors ({name: nested list} for named tensors)
    outputs        string     JSON: the predictions as the response carried them
                              (null when the request failed)
    n_rows         int32      rows in the request
    latency_ms     float64    time from arrival to response
    status         int16      the HTTP status answered
    error          string     "<ErrorClass>: message" when status >= 400, else null

The ``date`` of the folder is the UTC date of ``time``. Read with
:func:`read_predictions` (``dl.serving.predictions``) or any Parquet reader, e.g.
DuckDB: ``SELECT * FROM read_parquet('<root>/deployment=churn/*/*.parquet')``.

Writing never blocks a request: :meth:`PredictionLog.append` puts a row in a bounded
buffer (``capacity`` rows) and returns; when the buffer is full the row is dropped and
counted (``dropped``), never waited for. A daemon thread writes a file every
``flush_rows`` rows or ``flush_seconds`` seconds; :meth:`PredictionLog.close` (called on
SIGTERM, when the server shuts down) writes what is left. A file that cannot be written
(a full disk, a store that is briefly down) is logged and its rows go back to the buffer
to be tried with the next file, as far as the buffer has room; the rest, and what still
fails when the log is closed, are dropped and counted. ``written + dropped`` equals the
rows appended once it is closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from driftline.models import NumericRows
from driftline.serving.payloads import loaded_pandas

__all__ = ["PredictionLog", "prediction_root", "read_predictions"]

log = logging.getLogger("driftline.serving")

COLUMNS = (
    "request_id", "deployment", "model", "model_version", "variant", "time", "endpoint",
    "inputs", "outputs", "n_rows", "latency_ms", "status", "error",
)  # fmt: skip


def schema() -> Any:
    """The Arrow schema of a prediction-log file."""
    import pyarrow as pa

    return pa.schema(
        [
            ("request_id", pa.string()),
            ("deployment", pa.string()),
            ("model", pa.string()),
            ("model_version", pa.int64()),
            ("variant", pa.string()),
            ("time", pa.timestamp("us", tz="UTC")),
            ("endpoint", pa.string()),
            ("inputs", pa.string()),
            ("outputs", pa.string()),
            ("n_rows", pa.int32()),
            ("latency_ms", pa.float64()),
            ("status", pa.int16()),
            ("error", pa.string()),
        ]
    )


def prediction_root(home: Any, artifact_root: str) -> str:
    """Where a workspace's prediction log lives (see the module docstring)."""
    scheme = artifact_root.split("://", 1)[0] if "://" in artifact_root else ""
    if scheme in ("", "file"):
        return str(home / "predictions")
    return artifact_root.rstrip("/") + "/predictions"


def _fs(root: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(root)
    return fs, str(path)


def _compact(data: Any) -> Any:
    """A frame of one numeric dtype as the buffer keeps it: its columns and one array
    (a few hundred bytes for a row, where the DataFrame holds a few kilobytes)."""
    pd = loaded_pandas()
    if pd is None or not isinstance(data, pd.DataFrame):
        return data
    if len(data.columns) and _one_numeric_dtype(data):
        return NumericRows(data.columns, data.to_numpy())
    return data


def _inputs_json(data: Any) -> str:
    import numpy as np
    import orjson

    data = _compact(data)
    pd = loaded_pandas()
    if isinstance(data, NumericRows):
        # One array for the frame, one list per column (~10x cheaper than a Series each).
        data = dict(zip(map(str, data.columns), data.array.T.tolist(), strict=True))
    elif pd is not None and isinstance(data, pd.DataFrame):
        data = {str(c): data[c].to_numpy() for c in data.columns}
    elif isinstance(data, dict):
        data = {str(k): np.asarray(v) for k, v in data.items()}
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY, default=_default).decode()


def _one_numeric_dtype(frame: Any) -> bool:
    """Whether every column of ``frame`` has one numeric dtype. The frame's block manager
    answers in ~1 us; ``frame.dtypes`` builds a Series (~80 us, per logged row)."""
    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)
    if blocks is not None:
        return len(blocks) == 1 and blocks[0].dtype.kind in "fiub"
    dtypes = set(frame.dtypes)
    return len(dtypes) == 1 and next(iter(dtypes)).kind in "fiub"


# Arrow columns built without ``pa.array``: for a list of Python values, ``pa.array``
# imports pandas to ask whether it is a pandas object (~75 MB in a serving worker that
# otherwise never needs pandas). Builders and buffers do not.


def _strings(values: Sequence[str | None]) -> Any:
    import pyarrow as pa

    builder = pa.lib.StringBuilder()
    builder.append_values(values)
    return builder.finish()


def _numbers(values: Sequence[Any], type_: Any, dtype: str) -> Any:
    import numpy as np
    import pyarrow as pa

    if any(v is None for v in values):  # nulls need a validity bitmap: the general way
        return pa.array(list(values), type_)
    data = np.asarray(values, dtype=dtype)
    return pa.Array.from_buffers(type_, len(data), [None, pa.py_buffer(data)])


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _timestamps(values: Sequence[datetime]) -> Any:
    """UTC microseconds (a naive time is taken as UTC, as ``pa.array`` takes it)."""
    import pyarrow as pa

    micros = [
        ((v if v.tzinfo is not None else v.replace(tzinfo=UTC)) - _EPOCH) // _MICROSECOND
        for v in values
    ]
    return _numbers(micros, pa.timestamp("us", tz="UTC"), "int64")


def _outputs_json(value: Any) -> str | None:
    import orjson

    if value is None:
        return None
    option = orjson.OPT_SERIALIZE_NUMPY
    return orjson.dumps(value, option=option, default=_default).decode()


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class PredictionLog:
    """A bounded buffer of prediction rows and the thread that writes them to Parquet.

    Example:
        >>> plog = PredictionLog("/srv/home/predictions", "churn")      # doctest: +SKIP
        >>> plog.append(row)                                             # doctest: +SKIP
        >>> plog.close()                                                 # doctest: +SKIP
    """

    def __init__(
        self,
        root: str,
        deployment: str,
        *,
        flush_rows: int = 5_000,
        flush_seconds: float = 2.0,
        capacity: int = 100_000,
        on_written: Any = None,
        on_dropped: Any = None,
    ) -> None:
        self.root = root.rstrip("/")
        self.deployment = deployment
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.capacity = capacity
        self.written = 0
        self.dropped = 0
        self.files = 0
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._pending: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="driftline-predlog", daemon=True)
        self._thread.start()

    def append(self, row: tuple[Any, ...]) -> bool:
        """Queue one row (the fields of :data:`COLUMNS` but ``deployment``, inputs and
        outputs as Python values); ``False`` when it was dropped (buffer full or closed)."""
        if row[6] is not None:
            row = (*row[:6], _compact(row[6]), *row[7:])
        with self._lock:
            if self._closing or len(self._pending) >= self.capacity:
                self.dropped += 1
                if self._on_dropped is not None:
                    self._on_dropped(1)
                return False
            self._pending.append(row)
            full = len(self._pending) >= self.flush_rows
        if full:
            self._wake.set()
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            with self._lock:
                rows, self._pending = self._pending, []
                closing = self._closing
            if rows:
                self._write(rows)
            if closing:
                with self._lock:
                    rows, self._pending = self._pending, []
                if rows:
                    self._write(rows)
                return

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        by_day: dict[date, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_day.setdefault(row[4].date(), []).append(row)
        failed: list[tuple[Any, ...]] = []
        for day, group in by_day.items():  # a file per day: each one is written or not
            try:
                self._write_file(day, group)
            except Exception:
                log.exception("could not write %d prediction-log rows of %s", len(group), day)
                failed += group
        done = len(rows) - len(failed)
        if done:
            with self._lock:
                self.written += done
            if self._on_written is not None:
                self._on_written(done)
        if failed:
            self._retry_later(failed)

    def _retry_later(self, rows: list[tuple[Any, ...]]) -> None:
        """Put rows whose file failed back at the front of the buffer, as many as it has
        room for (none once closing); drop and count the rest."""
        with self._lock:
            room = 0 if self._closing else max(self.capacity - len(self._pending), 0)
            self._pending[:0] = rows[:room]
            lost = len(rows) - min(room, len(rows))
            self.dropped += lost
        if lost:
            log.warning("%d prediction-log rows dropped: their file could not be written", lost)
            if self._on_dropped is not None:
                self._on_dropped(lost)

    def _write_file(self, day: date, rows: list[tuple[Any, ...]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from driftline.core.ids import new_id

        (request_ids, models, versions, variants, times, endpoints, inputs, outputs,
         n_rows, latencies, statuses, errors) = zip(*rows, strict=True)  # fmt: skip
        table = pa.Table.from_arrays(
            [
                _strings(request_ids),
                _strings([self.deployment] * len(rows)),
                _strings(models),
                _numbers(versions, pa.int64(), "int64"),
                _strings(variants),
                _timestamps(times),
                _strings(endpoints),
                _strings([None if i is None else _inputs_json(i) for i in inputs]),
                _strings([_outputs_json(o) for o in outputs]),
                _numbers(n_rows, pa.int32(), "int32"),
                _numbers(latencies, pa.float64(), "float64"),
                _numbers(statuses, pa.int16(), "int16"),
                _strings(errors),
            ],
            schema=schema(),
        )
        folder = f"{self.root}/deployment={self.deployment}/date={day.isoformat()}"
        name = f"{new_id()}.parquet"
        fs, path = _fs(folder)
        fs.makedirs(path, exist_ok=True)
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        if "file" in protocols or "local" in protocols:
            # Whole file, then rename: a reader listing the folder never sees half of one.
            tmp = f"{path}/.{name}.tmp"
            pq.write_table(table, tmp, filesystem=fs)
            fs.mv(tmp, f"{path}/{name}")
        else:  # object stores publish an object whole when its upload completes
            pq.write_table(table, f"{path}/{name}", filesystem=fs)
        self.files += 1

    def flush(self, timeout: float = 30.0) -> None:
        """Write what waits now (used by tests and the quickstart); returns when done."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    break
            self._wake.set()
            time.sleep(0.005)

    def close(self, timeout: float = 60.0) -> None:
        """Stop taking rows, write every buffered one, stop the thread."""
        with self._lock:
            self._closing = True
        self._wake.set()
        self._thread.join(timeout)

    def stats(self) -> dict[str, int]:
        """``{"written", "dropped", "buffered", "files"}``."""
        with self._lock:
            return {
                "written": self.written,
                "dropped": self.dropped,
                "buffered": len(self._pending),
                "files": self.files,
            }


def read_predictions(
    root: str,
    deployment: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Any:
    """The rows of ``deployment`` with ``since <= time < until``, as an Arrow table.

    Naive datetimes are read as UTC. Only the day folders in the range are opened, and
    of those only the files written after ``since`` (see :func:`_written_before`).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    since = _utc(since)
    until = _utc(until)
    fs, base = _fs(f"{root.rstrip('/')}/deployment={deployment}")
    files: list[str] = []
    if fs.exists(base):
        for folder in sorted(fs.ls(base, detail=False)):
            day_text = str(folder).rstrip("/").rsplit("/", 1)[-1].removeprefix("date=")
            try:
                day = date.fromisoformat(day_text)
            except ValueError:
                continue
            if (since and day < since.date()) or (until and day > until.date()):
                continue
            files += [
                str(f)
                for f in sorted(fs.ls(folder, detail=False))
                if str(f).endswith(".parquet")
                and not str(f).rsplit("/", 1)[-1].startswith(".")
                and not _written_before(str(f), since)
            ]
    if not files:
        return schema().empty_table()
    table = ds.dataset(files, schema=schema(), format="parquet", filesystem=fs).to_table()
    mask = None
    if since is not None:
        mask = pc.greater_equal(table["time"], pa.scalar(since, pa.timestamp("us", tz="UTC")))
    if until is not None:
        upper = pc.less(table["time"], pa.scalar(until, pa.timestamp("us", tz="UTC")))
        mask = upper if mask is None else pc.and_(mask, upper)
    if mask is not None:
        table = table.filter(mask)
    return table.sort_by("time")


#: Files named before ``since`` by more than this are skipped (writers on other hosts
#: may have clocks a little behind the reader's).
CLOCK_SKEW_MS = 60_000


def _written_before(path: str, since: datetime | None) -> bool:
    """Whether a file was written before ``since``: its name is the UUIDv7 of its writing,
    and a file holds only rows that arrived before it was written, so none is in range.
    (A reader polling every few seconds, the rollout controller, then opens only the
    newest files of the day.)"""
    if since is None:
        return False
    stem = path.rsplit("/", 1)[-1].removesuffix(".parquet")
    try:
        written_ms = int(stem[:12], 16)
    except ValueError:
        return False
    return written_ms < since.timestamp() * 1000 - CLOCK_SKEW_MS


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
