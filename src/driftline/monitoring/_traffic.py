"""A deployment's traffic from the prediction log, one row per predicted row.

The prediction log (written by serving; layout and schema documented in
``driftline.serving.predlog``, which this stage reads but does not import: both stages
sit on the same layer) holds one Parquet row per *request*, with the inputs and outputs
as JSON. Monitoring needs one row per *predicted row*, with the inputs and predictions
as columns. :func:`flatten` does that with DuckDB (``json_transform`` with a structure
inferred from the file, then ``UNNEST``), for successful requests only.

Parsing JSON costs about 3 us a row, so each log file is flattened once and the result
kept beside it under ``<home>/monitoring/traffic`` (same deployment and date folders,
same file name). Log files are immutable (written whole under a new UUIDv7 name), so a
cached file is valid as long as its source exists; :func:`traffic` removes the cached
files whose source is gone (retention deleted it). Cached files are read into
:func:`window_memory_pool`, not Arrow's default pool.

Flattened columns: ``request_id``, ``row`` (position in the request), ``time``,
``model_version``, ``variant``, every input column of a table request, then the
predictions: ``prediction`` for one value per row, ``prediction_0``, ``prediction_1``,
... for a list per row (class probabilities), or ``prediction.<name>`` for records or
named outputs: every prediction column's name starts with ``prediction``. Requests
whose inputs are tensors (nested lists) contribute predictions only.
"""

from __future__ import annotations

import functools
import os
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = [
    "META",
    "deployments",
    "flatten",
    "is_prediction",
    "log_files",
    "log_root",
    "newest_model",
    "request_ids",
    "traffic",
    "window_memory_pool",
]

#: The columns that say which request a row is, not what it holds.
META = ("request_id", "row", "time", "model_version", "variant")


def is_prediction(name: str) -> bool:
    """Whether a flattened column holds predictions (module docstring)."""
    return name == "prediction" or name.startswith(("prediction_", "prediction."))


def log_root(home: Path, artifact_root: str) -> str:
    """Where serving writes a workspace's prediction log (``driftline.serving.predlog``)."""
    scheme = artifact_root.split("://", 1)[0] if "://" in artifact_root else ""
    if scheme in ("", "file"):
        return str(home / "predictions")
    return artifact_root.rstrip("/") + "/predictions"


def _fs(root: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(root)
    return fs, str(path)


def deployments(root: str) -> list[str]:
    """The deployments that have a prediction log, by name."""
    fs, base = _fs(root)
    if not fs.exists(base):
        return []
    names = (str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(base, detail=False))
    return sorted(n.removeprefix("deployment=") for n in names if n.startswith("deployment="))


def log_files(
    root: str, deployment: str, since: datetime | None = None, until: datetime | None = None
) -> list[tuple[str, str]]:
    """``(date folder name, file path)`` of the log files that may hold rows in range."""
    fs, base = _fs(f"{root.rstrip('/')}/deployment={deployment}")
    if not fs.exists(base):
        return []
    out = []
    for folder in sorted(fs.ls(base, detail=False)):
        name = str(folder).rstrip("/").rsplit("/", 1)[-1]
        try:
            day = date.fromisoformat(name.removeprefix("date="))
        except ValueError:
            continue
        if (since and day < since.date()) or (until and day > until.date()):
            continue
        for f in sorted(fs.ls(folder, detail=False)):
            leaf = str(f).rsplit("/", 1)[-1]
            if leaf.endswith(".parquet") and not leaf.startswith("."):
                out.append((name, str(f)))
    return out


def request_ids(root: str, deployment: str) -> Any:
    """Every logged request id of a deployment (an Arrow string array)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    files = [f for _, f in log_files(root, deployment)]
    if not files:
        return pa.array([], pa.string())
    fs, _ = _fs(root)
    table = ds.dataset(files, format="parquet", filesystem=fs).to_table(columns=["request_id"])
    return table.column("request_id").combine_chunks()


def newest_model(
    root: str, deployment: str, since: datetime, until: datetime
) -> tuple[str, int] | None:
    """``(model, version)`` that answered the newest successful request in ``[since,
    until)``, or None (the flattened rows keep the version only, not the model's name)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    files = [f for _, f in log_files(root, deployment, since, until)]
    if not files:
        return None
    fs, _ = _fs(root)
    ts = pa.timestamp("us", tz="UTC")
    table = ds.dataset(files, format="parquet", filesystem=fs).to_table(
        columns=["time", "model", "model_version", "status"]
    )
    times = table["time"].cast(ts)
    keep = pc.and_(
        pc.and_(
            pc.greater_equal(times, pa.scalar(since, ts)), pc.less(times, pa.scalar(until, ts))
        ),
        pc.less(table["status"], 400),
    )
    table = table.filter(keep)
    if table.num_rows == 0:
        return None
    newest = int(pc.index(table["time"], pc.max(table["time"])).as_py())
    return str(table["model"][newest].as_py()), int(table["model_version"][newest].as_py())


def traffic(
    root: str,
    cache: Path | None,
    deployment: str,
    since: datetime,
    until: datetime,
) -> Any:
    """Flattened rows of ``deployment`` with ``since <= time < until`` (an Arrow table)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    files = log_files(root, deployment, since, until)
    tables = [_cached(root, cache, deployment, day, f) for day, f in files]
    if cache is not None:
        _prune(cache / f"deployment={deployment}", {Path(f).name for _, f in files}, since, until)
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return _empty()
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        raise InvalidArgumentError(
            f"The prediction log of {deployment!r} changes a column's type between "
            f"{since:%Y-%m-%d} and {until:%Y-%m-%d} ({exc}); check a range with one "
            "input schema"
        ) from None
    ts = pa.timestamp("us", tz="UTC")
    bounds = pc.min_max(table["time"]).as_py()
    if bounds["min"] >= since and bounds["max"] < until:
        return table  # whole days inside the range: no copy
    mask = pc.and_(
        pc.greater_equal(table["time"], pa.scalar(since, ts)),
        pc.less(table["time"], pa.scalar(until, ts)),
    )
    return table.filter(mask)


def _empty() -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "request_id": pa.array([], pa.string()).dictionary_encode(),
            "row": pa.array([], pa.int64()),
            "time": pa.array([], pa.timestamp("us", tz="UTC")),
            "model_version": pa.array([], pa.int64()),
            "variant": pa.array([], pa.string()).dictionary_encode(),
        }
    )


@functools.cache
def window_memory_pool() -> Any:
    """The Arrow memory pool a window is read into: jemalloc where this pyarrow has it,
    else the system allocator.

    Arrow's default pool (mimalloc in its wheels) pays for fresh memory page by page:
    the first read of a 10M-row window (773 MB) took 3.5 s in a new process against
    1.25 s with jemalloc and 1.9 s with the system allocator (the same on later reads),
    which made the first ``monitor run`` of a cron job twice as slow as the next. A
    process that exists to check windows (the CLI's monitor commands) makes it Arrow's
    default, for the casts and joins that follow the read too (a cold check of 10M rows
    5.4 s -> 4.6 s, median of five); a library cannot choose for its host process, so
    elsewhere only the read uses it.
    """
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a build without jemalloc (Windows wheels)
        return pa.system_memory_pool()


def _read_flattened(target: Path) -> Any:
    import pyarrow.dataset as ds

    options = ds.ParquetReadOptions(dictionary_columns=list(_ENCODED))
    dataset = ds.dataset(target, format=ds.ParquetFileFormat(read_options=options))
    return dataset.to_table(memory_pool=window_memory_pool())


def _cached(root: str, cache: Path | None, deployment: str, day: str, path: str) -> Any:
    import pyarrow.parquet as pq

    if cache is None:
        return _encoded(flatten(root, path))
    target = cache / f"deployment={deployment}" / day / Path(path).name
    if target.exists():
        return _read_flattened(target)
    table = flatten(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per writer: two threads (or processes) may flatten one file at once.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, target)  # whole file or none, as the log itself
    return _encoded(table)


# A request's rows share its id and variant: kept dictionary-encoded, reading millions of
# rows decodes a few thousand strings instead of one per row.
_ENCODED = ("request_id", "variant")


def _encoded(table: Any) -> Any:
    import pyarrow as pa

    for name in _ENCODED:
        i = table.schema.get_field_index(name)
        if i >= 0 and not pa.types.is_dictionary(table.schema.field(i).type):
            table = table.set_column(i, name, table.column(i).dictionary_encode())
    return table


def _prune(folder: Path, live: set[str], since: datetime, until: datetime) -> None:
    """Drop cached files of days in range whose log file is gone."""
    if not folder.exists():
        return
    for day in folder.iterdir():
        try:
            d = date.fromisoformat(day.name.removeprefix("date="))
        except ValueError:
            continue
        if since.date() <= d <= until.date():
            for f in day.glob("*.parquet"):
                if f.name not in live:
                    f.unlink(missing_ok=True)


def flatten(root: str, path: str) -> Any:
    """One log file as one row per predicted row (module docstring)."""
    import duckdb
    import pyarrow.parquet as pq

    fs, _ = _fs(root)
    with fs.open(path, "rb") as f:
        log = pq.read_table(
            f,
            columns=["request_id", "time", "model_version", "variant", "inputs", "outputs"],
            filters=[("status", "<", 400), ("outputs", "!=", "null")],
        )
    log = log.filter(log["outputs"].is_valid())
    if not log.num_rows:
        return _empty()
    con = duckdb.connect()
    try:
        con.register("log", log)
        inputs = _structure(con, "inputs")
        outputs = _structure(con, "outputs")
        width = 0
        if isinstance(outputs, list) and outputs and isinstance(outputs[0], list):
            got = con.sql("SELECT max(json_array_length(outputs, '$[0]')) FROM log").fetchall()
            width = int(got[0][0] or 0)
        select, source = _select(inputs, outputs, width)
        query = f"SELECT request_id, time, model_version, variant, {select} FROM ({source})"
        return con.sql(query).to_arrow_table()
    finally:
        con.close()


def _structure(con: Any, column: str) -> Any:
    import json

    # The structure of the first rows (a file holds one deployment's requests, usually one
    # model version's); rows that do not fit it read as nulls rather than failing.
    raw = con.sql(
        f"SELECT json_group_structure({column}::JSON) FROM "
        f"(SELECT {column} FROM log WHERE {column} IS NOT NULL LIMIT 200)"
    ).fetchall()[0][0]
    return None if raw is None else json.loads(raw)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _select(inputs: Any, outputs: Any, width: int) -> tuple[str, str]:
    """The SELECT list unnesting inputs and outputs, and the subquery that parses them."""
    import json

    parsed = ["request_id", "time", "model_version", "variant"]
    cols: list[str] = []
    # The outputs decide the row count: one prediction per predicted row.
    if isinstance(outputs, list) and outputs:
        item = outputs[0]
        parsed.append(f"json_transform(outputs, '{json.dumps(outputs)}') AS o")
        cols.append("unnest(range(len(o))) AS row")
        if isinstance(item, list) and item and not isinstance(item[0], list | dict):
            cols += [
                f"unnest(list_transform(o, lambda x: x[{i + 1}])) AS prediction_{i}"
                for i in range(width)
            ]
        elif isinstance(item, dict):
            cols += [
                f"unnest(list_transform(o, lambda x: x.{_quote(k)})) AS {_quote(k)}" for k in item
            ]
        else:
            cols.append("unnest(o) AS prediction")
    elif isinstance(outputs, dict):
        parsed.append(f"json_transform(outputs, '{json.dumps(outputs)}') AS o")
        first = next(iter(outputs))
        cols.append(f"unnest(range(len(o.{_quote(first)}))) AS row")
        cols += [f"unnest(o.{_quote(k)}) AS {_quote('prediction.' + k)}" for k in outputs]
    else:  # one scalar per request
        parsed.append(f"json_transform(outputs, '{json.dumps(outputs)}') AS o")
        cols += ["0 AS row", "o AS prediction"]
    if isinstance(inputs, dict):
        spec = {k: v for k, v in inputs.items() if isinstance(v, list)}
        if spec:
            parsed.append(f"json_transform(inputs, '{json.dumps(spec)}') AS i")
            taken = {c.rsplit(" AS ", 1)[-1].strip('"') for c in cols}
            cols += [
                f"unnest(i.{_quote(k)}) AS {_quote(k)}"
                for k in spec
                if k not in taken and k not in META
            ]
    return ", ".join(cols), f"SELECT {', '.join(parsed)} FROM log"
