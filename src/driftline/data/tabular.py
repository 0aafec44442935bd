"""Reading and writing tables: the only data module that touches pyarrow directly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "TABLE_FILE",
    "is_table_object",
    "read_table",
    "supported_formats",
    "table_format",
    "write_table",
]

TABLE_FILE = "data.parquet"
_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv"}


def table_format(path: str) -> str | None:
    """``parquet``, ``csv`` or ``tsv`` for a tabular file name, else ``None``."""
    return _FORMATS.get(Path(path).suffix.lower())


def supported_formats() -> str:
    """The tabular file kinds, for error messages."""
    return ", ".join(sorted(_FORMATS))


def is_table_object(value: Any) -> bool:
    """Whether ``value`` is a pandas DataFrame or a pyarrow Table (checked without importing)."""
    kind = type(value)
    return (kind.__module__.startswith("pandas") and kind.__name__ == "DataFrame") or (
        kind.__module__.startswith("pyarrow") and kind.__name__ == "Table"
    )


def write_table(value: Any, path: Path) -> None:
    """Write a DataFrame or Arrow table as Parquet (deterministic bytes for equal tables)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = value if isinstance(value, pa.Table) else pa.Table.from_pandas(value)
    pq.write_table(table, path, compression="zstd")


def read_table(paths: list[tuple[str, Path]], columns: list[str] | None = None) -> pa.Table:
    """Read ``(logical path, local file)`` pairs of Parquet/CSV files as one Arrow table."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    tables = []
    for logical, local in paths:
        kind = table_format(logical)
        if kind == "parquet":
            tables.append(pq.read_table(local, columns=columns))
        elif kind in ("csv", "tsv"):
            options = pacsv.ParseOptions(delimiter="\t" if kind == "tsv" else ",")
            convert = pacsv.ConvertOptions(include_columns=columns) if columns else None
            tables.append(pacsv.read_csv(local, parse_options=options, convert_options=convert))
        else:
            raise InvalidArgumentError(
                f"{logical} is not a table; tabular formats are {supported_formats()}"
            )
    if not tables:
        raise InvalidArgumentError("The version holds no tabular files")
    return pa.concat_tables(tables, promote_options="permissive")
