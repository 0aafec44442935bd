"""Reading a deployment's prediction log (the Parquet files serving writes).

The layout and schema are serving's stable contract (see ``driftline.serving.predlog``):
``<root>/deployment=<name>/date=<YYYY-MM-DD>/<id>.parquet``, with ``<root>`` the
workspace's ``<home>/predictions`` on a local artifact store and ``<artifact
root>/predictions`` on an object store. Serving sits beside monitoring in the layering
(neither imports the other), so monitoring reads the files by that contract here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

__all__ = ["deployments", "log_root", "read_window"]


def log_root(home: Path, artifact_root: str) -> str:
    """Where a workspace's prediction log lives (a folder or an fsspec URL)."""
    scheme = artifact_root.split("://", 1)[0] if "://" in artifact_root else ""
    if scheme in ("", "file"):
        return str(home / "predictions")
    return artifact_root.rstrip("/") + "/predictions"


def deployments(root: str) -> list[str]:
    """The deployments that have a prediction log, by name."""
    fs, base = _fs(root)
    if not fs.exists(base):
        return []
    names = (str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(base, detail=False))
    return sorted(n.removeprefix("deployment=") for n in names if n.startswith("deployment="))


def read_window(root: str, deployment: str, since: datetime, until: datetime) -> Any:
    """The rows of ``deployment`` with ``since <= time < until`` as an Arrow table (only
    the day folders in the range are listed and read)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    since, until = since.astimezone(UTC), until.astimezone(UTC)
    fs, base = _fs(f"{root.rstrip('/')}/deployment={deployment}")
    files: list[str] = []
    if fs.exists(base):
        for folder in sorted(fs.ls(base, detail=False)):
            text = str(folder).rstrip("/").rsplit("/", 1)[-1].removeprefix("date=")
            try:
                day = date.fromisoformat(text)
            except ValueError:
                continue
            if since.date() <= day <= until.date():
                files += [
                    str(f)
                    for f in sorted(fs.ls(folder, detail=False))
                    if str(f).endswith(".parquet") and not str(f).rsplit("/", 1)[-1].startswith(".")
                ]
    if not files:
        return _empty()
    table = ds.dataset(files, format="parquet", filesystem=fs).to_table()
    stamp = pa.timestamp("us", tz="UTC")
    times = table["time"].cast(stamp)
    mask = pc.and_(
        pc.greater_equal(times, pa.scalar(since, stamp)), pc.less(times, pa.scalar(until, stamp))
    )
    return table.filter(mask).sort_by("time")


def _empty() -> Any:
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
    ).empty_table()


def _fs(root: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(root)
    return fs, str(path)
