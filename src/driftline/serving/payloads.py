"""Request bodies to model inputs, model outputs to JSON: ``/predict`` and MLflow's protocol.

``/predict`` takes ``{"inputs": [records]}`` or ``{"inputs": {column: [values]}}``.
``/invocations`` takes what MLflow's scoring server takes: a JSON object with exactly
one of ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs`` (and an
optional ``params``), or a ``text/csv`` body.

Inputs are only shaped here (records or columns become a table); checking them
against the signature is the models stage's job (``LoadedModel.check_input``), so a
wrong type is reported the same way in a notebook and over HTTP.

The fast path: when every value is a JSON number and the model's columns are all
numeric, rows go straight into one 2-D float array and then one single-block frame,
which the signature check passes without a copy (~10x cheaper than a frame built from
records). Anything else (a string, a boolean, a missing or extra key) takes the
general path, where the signature check names the offending column.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from driftline.errors import InvalidArgumentError, PayloadTooLargeError
from driftline.models import NumericRows

__all__ = [
    "InputShaper",
    "decode_csv",
    "decode_invocations",
    "decode_predict",
    "jsonable",
    "row_count",
]

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_NUMERIC = frozenset({"integer", "long", "float", "double"})


class InputShaper:
    """Builds model inputs for one signature (records, columns, rows).

    With ``rows=True`` (a model predicted by a numpy stand-in, see
    ``driftline.models.LinearPredictor``) the fast path gives :class:`NumericRows`
    instead of a DataFrame, and pandas is imported only for an input off that path.
    """

    def __init__(self, signature: Any, *, rows: bool = False) -> None:
        import numpy as np

        self._np = np
        self.signature = signature
        self.tensor = signature is not None and signature.is_tensor
        columns = [] if signature is None or self.tensor else list(signature.inputs)
        self.names: list[str] = [str(c.name) for c in columns]
        self.numeric = bool(columns) and all(c.type in _NUMERIC for c in columns)
        self.as_rows = rows and self.numeric
        self._index: Any = None

    @property
    def _pd(self) -> Any:
        import pandas as pd

        return pd

    def _table(self, values: Any) -> Any:
        """Rows of floats (in signature order) as the model's input."""
        if self.as_rows:
            return NumericRows(self.names, values)
        if self._index is None:
            # One column index for every request: building it from names costs ~70 us.
            self._index = self._pd.Index(self.names, dtype=object)
        return self._pd.DataFrame(values, columns=self._index, copy=False)

    def _array(self, rows: list[list[Any]]) -> Any:
        return self._table(self._np.array(rows, dtype="float64"))

    def records(self, records: list[Any]) -> Any:
        """A table from ``[{"col": value, ...}, ...]``."""
        if not records:
            raise InvalidArgumentError("The input has no rows")
        if not all(isinstance(r, Mapping) for r in records):
            raise InvalidArgumentError("Records must be JSON objects {column: value}")
        if self.numeric:
            width = len(self.names)
            try:
                rows = [[r[n] for n in self.names] for r in records]
            except KeyError:
                rows = None
            if rows is not None and all(len(r) == width for r in records) and _numbers(rows):
                return self._array(rows)
        return self._pd.DataFrame.from_records(records)

    def columns(self, columns: Mapping[str, Any]) -> Any:
        """A table from ``{"col": [values], ...}`` (or one record ``{"col": value}``)."""
        if not columns:
            raise InvalidArgumentError("The input has no columns")
        values = list(columns.values())
        if all(not isinstance(v, list) for v in values):
            return self.records([dict(columns)])
        if not all(isinstance(v, list) for v in values) or len({len(v) for v in values}) != 1:
            raise InvalidArgumentError("Columns must be lists of one length each")
        if self.numeric and list(columns) == self.names:
            cols = [columns[n] for n in self.names]
            if _numbers(cols):
                return self._table(self._np.array(cols, dtype="float64").T)
        return self._pd.DataFrame(dict(columns))

    def rows(self, rows: list[Any]) -> Any:
        """Rows of values (``[[1.0, 2.0], ...]``): a tensor, or columns in signature order."""
        if not rows:
            raise InvalidArgumentError("The input has no rows")
        if isinstance(rows[0], Mapping):
            return self.records(rows)
        if self.tensor or not self.names:
            return self._np.asarray(rows)
        if not all(isinstance(r, list) and len(r) == len(self.names) for r in rows):
            raise InvalidArgumentError(
                f"Each row must be a list of {len(self.names)} values (the columns "
                f"{', '.join(map(repr, self.names))})"
            )
        if self.numeric and _numbers(rows):
            return self._array(rows)
        return self._pd.DataFrame(rows, columns=self.names)

    def any_form(self, value: Any) -> Any:
        """Records, rows or columns, whichever ``value`` is (MLflow's ``instances``/``inputs``)."""
        if isinstance(value, Mapping):
            if self.tensor and len(self.signature.inputs) > 1:
                return {k: self._np.asarray(v) for k, v in value.items()}
            return self.columns(value)
        if isinstance(value, list):
            return self.rows(value)
        raise InvalidArgumentError(
            "inputs must be a list of records or rows, or an object of columns"
        )


def loaded_pandas() -> Any:
    """pandas if this process imported it, else ``None``: enough to ask whether a value
    is a pandas object (none exists without it) without importing it (~75 MB in a
    worker serving a model that never needs it)."""
    return sys.modules.get("pandas")


def _numbers(rows: Sequence[Sequence[Any]]) -> bool:
    # Exact type checks: bool is an int subclass, and booleans are not numbers here.
    return all(type(v) is float or type(v) is int for row in rows for v in row)


def row_count(data: Any) -> int:
    """Rows in a shaped input (the first dimension)."""
    if isinstance(data, Mapping):
        first = next(iter(data.values()), ())
        return len(first)
    return len(data)


def check_rows(data: Any, max_rows: int) -> int:
    """The row count; ``PayloadTooLargeError`` (413) beyond ``max_rows``."""
    rows = row_count(data)
    if rows > max_rows:
        raise PayloadTooLargeError(
            f"The request has {rows} rows; this server takes at most {max_rows} per request "
            "(split it, or use `driftline predict` for batch scoring)"
        )
    return rows


def decode_predict(payload: Any, shaper: InputShaper) -> Any:
    """``{"inputs": [records] | {columns}}`` -> a model input."""
    if not isinstance(payload, Mapping):
        raise InvalidArgumentError('The body must be a JSON object {"inputs": ...}')
    unknown = sorted(set(payload) - {"inputs"})
    if unknown:
        raise InvalidArgumentError(
            f"Unknown field(s) {', '.join(map(repr, unknown))}: the body is "
            '{"inputs": [records] | {columns}}'
        )
    if "inputs" not in payload:
        raise InvalidArgumentError('The body needs "inputs": a list of records or columns')
    return shaper.any_form(payload["inputs"])


def decode_invocations(payload: Any, shaper: InputShaper) -> tuple[Any, Any]:
    """MLflow's JSON forms -> ``(model input, params)``."""
    if not isinstance(payload, Mapping):
        raise InvalidArgumentError(
            f"The body must be a JSON object with one of {', '.join(MLFLOW_KEYS)}"
        )
    given = [k for k in MLFLOW_KEYS if k in payload]
    unknown = sorted(set(payload) - {*MLFLOW_KEYS, "params"})
    if len(given) != 1 or unknown:
        # MLflow's own wording, which its users search for.
        raise InvalidArgumentError(
            "Invalid input. The input must contain exactly one of the following keys: "
            f"{', '.join(MLFLOW_KEYS)} (and optionally params); got "
            f"{', '.join(map(repr, sorted(payload))) or 'none'}"
        )
    key = given[0]
    value = payload[key]
    params = payload.get("params")
    if params is not None and not isinstance(params, Mapping):
        raise InvalidArgumentError("params must be a JSON object")
    if key == "dataframe_split":
        return _split(value, shaper), params
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise InvalidArgumentError("dataframe_records must be a list of records")
        return shaper.records(value), params
    return shaper.any_form(value), params


def _split(value: Any, shaper: InputShaper) -> Any:
    if not isinstance(value, Mapping):
        raise InvalidArgumentError('dataframe_split must be {"columns": [...], "data": [[...]]}')
    unknown = sorted(set(value) - {"columns", "data", "index"})
    if unknown:
        raise InvalidArgumentError(f"Unknown field(s) in dataframe_split: {', '.join(unknown)}")
    data = value.get("data")
    if not isinstance(data, list) or not data:
        raise InvalidArgumentError("dataframe_split needs data: a non-empty list of rows")
    columns = value.get("columns")
    if columns is None:
        return shaper.rows(data)
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidArgumentError("dataframe_split columns must be a list of names")
    if any(not isinstance(row, list) or len(row) != len(columns) for row in data):
        raise InvalidArgumentError(f"Every row of dataframe_split has {len(columns)} values")
    if columns == shaper.names:
        return shaper.rows(data)
    import pandas as pd

    return pd.DataFrame(data, columns=columns)


def decode_csv(body: bytes) -> Any:
    """A ``text/csv`` body (header row first) -> a table."""
    import io

    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except Exception as exc:  # pandas raises several parser errors
        raise InvalidArgumentError(f"Cannot read the CSV body: {exc}") from None
    if frame.empty:
        raise InvalidArgumentError("The CSV body has no rows")
    return frame


def jsonable(output: Any) -> Any:
    """Predictions as JSON values: arrays as (nested) lists, tables as records."""
    import numpy as np

    if isinstance(output, np.ndarray):
        return output.tolist()
    pd = loaded_pandas()
    if pd is not None and isinstance(output, pd.DataFrame):
        return output.to_dict(orient="records")
    if pd is not None and isinstance(output, pd.Series):
        return output.tolist()
    if isinstance(output, Mapping):
        return {str(k): jsonable(v) for k, v in output.items()}
    if isinstance(output, list | tuple):
        return [jsonable(v) if isinstance(v, np.ndarray) else v for v in output]
    if isinstance(output, np.generic):
        return output.item()
    return output
