"""Any table a user hands over, read column by column as numpy arrays or value counts.

A pandas DataFrame, an Arrow table, a Parquet/CSV/TSV file or folder, or a dataset version
(``customers@7``, resolved by the data stage). Only the columns drift needs are converted,
each once: numbers to float64 (null -> NaN), everything counted as text to Arrow value
counts, which hash the strings once instead of mapping them in Python.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv"}


class Source:
    """A table, where it came from (a label for reports) and its identity when known.

    The table is read on first use, so that a stored reference can be found by the
    data's identity (a dataset version id) without reading the data.
    """

    def __init__(
        self, label: str, key: str | None, load: Callable[[], Any] | None = None, table: Any = None
    ) -> None:
        self.label = label
        self.key = key  # dataset version id or file digest; None for in-memory frames
        self._load = load
        self._table = table

    @property
    def table(self) -> Any:
        """The pandas DataFrame or Arrow table (read now if it was not yet)."""
        if self._table is None:
            assert self._load is not None
            self._table = self._load()
        return self._table


def open_source(data: Any, *, columns: list[str] | None = None) -> Source:
    """A :class:`Source` for a frame, a Parquet/CSV path, or a dataset version reference."""
    kind = type(data)
    if kind.__module__.startswith("pandas") and kind.__name__ == "DataFrame":
        return Source("dataframe", None, table=data)
    if kind.__module__.startswith("pyarrow") and kind.__name__ == "Table":
        return Source("arrow table", None, table=data)
    if isinstance(data, Path) or (isinstance(data, str) and Path(data).exists()):
        return _path_source(Path(data), columns)
    if isinstance(data, str):
        import driftline.data

        version = driftline.data.resolve_source(data)
        return Source(version.ref, str(version.id), lambda: version.to_arrow(columns=columns))
    raise InvalidArgumentError(
        f"Cannot read a {kind.__name__} as a table: give a pandas DataFrame, an Arrow table, "
        "a Parquet/CSV path, or a dataset version such as customers@7"
    )


def _path_source(path: Path, columns: list[str] | None) -> Source:
    from driftline.core.hashing import hash_bytes, hash_file

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    bad = [f for f in files if f.suffix.lower() not in _FORMATS]
    if bad or not files:
        raise InvalidArgumentError(
            f"{bad[0] if bad else path} is not a table; tabular formats are "
            f"{', '.join(sorted(_FORMATS))}"
        )
    digests = [hash_file(f)[0] for f in files]
    key = digests[0] if len(digests) == 1 else "files:" + hash_bytes(",".join(digests).encode())
    return Source(os.fspath(path), key, lambda: _read_files(files, columns))


def _read_files(files: list[Path], columns: list[str] | None) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    tables = []
    for f in files:
        if _FORMATS[f.suffix.lower()] == "parquet":
            tables.append(pq.read_table(f, columns=columns))
        else:
            parse = pacsv.ParseOptions(delimiter="\t" if f.suffix.lower() == ".tsv" else ",")
            convert = pacsv.ConvertOptions(include_columns=columns) if columns else None
            tables.append(pacsv.read_csv(f, parse_options=parse, convert_options=convert))
    return pa.concat_tables(tables, promote_options="permissive")


def column_names(table: Any) -> list[str]:
    """Column names, as strings, in table order."""
    return [str(c) for c in (table.column_names if hasattr(table, "column_names") else table)]


def row_count(table: Any) -> int:
    """Rows of a DataFrame or Arrow table."""
    return int(table.num_rows if hasattr(table, "num_rows") else len(table))


def logical_type(table: Any, name: str) -> str:
    """``int``, ``float``, ``bool``, ``string`` or ``other`` for one column."""
    import pyarrow as pa

    if hasattr(table, "schema"):
        t = table.schema.field(name).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_integer(t):
            return "int"
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            return "float"
        if pa.types.is_boolean(t):
            return "bool"
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
            return "string"
        return "other"
    dtype = table[name].dtype
    kind = getattr(dtype, "kind", "O")
    if str(dtype) == "category":
        return "string"
    if str(dtype) == "boolean" or kind == "b":
        return "bool"
    return {"i": "int", "u": "int", "f": "float", "O": "string", "U": "string"}.get(kind, "other")


def numbers(table: Any, name: str) -> np.ndarray:
    """A numeric column as float64, null -> NaN."""
    import numpy as np

    if hasattr(table, "schema"):
        import pyarrow.compute as pc

        col = table.column(name)
        if col.type != "double":
            col = pc.cast(col, "float64")
        return np.asarray(col.to_numpy(), dtype=np.float64)
    series = table[name]
    return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def value_counts(table: Any, name: str) -> tuple[pa.Array, np.ndarray, int]:
    """Distinct non-null values as text, their counts, and the number of missing values.

    Booleans read as ``true``/``false`` whatever the input library.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if hasattr(table, "schema"):
        col = table.column(name)
    else:
        series = table[name]
        try:
            col = pa.chunked_array([pa.array(series, from_pandas=True)])
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: compare their text
            col = pa.chunked_array([pa.array(series.astype("string"), from_pandas=True)])
    missing = col.null_count
    counts = pc.value_counts(col)  # on dictionary columns this counts codes, no hashing
    values = counts.field("values")
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())  # only the distinct values, not every row
    n = np.asarray(counts.field("counts").to_numpy(), dtype=np.int64)
    mask = values.is_valid()
    if values.null_count:
        keep = np.asarray(mask.to_numpy(zero_copy_only=False))
        values, n = values.filter(mask), n[keep]
    return values, n, int(missing)
