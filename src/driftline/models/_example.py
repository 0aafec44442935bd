"""Input examples on disk: JSON, never pickle.

A table is stored as ``{"type": "dataframe", "columns": [...], "dtypes": [...],
"data": [[row], ...]}`` and an array as ``{"type": "ndarray", "dtype": ..., "data":
nested lists}``. Missing values become ``null``; datetimes ISO 8601 strings.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["EXAMPLE_FILE", "read_example", "write_example"]

EXAMPLE_FILE = "input_example.json"


def write_example(example: Any, folder: Path) -> str | None:
    """Write ``example`` (a DataFrame, an ndarray or a dict of arrays); ``None`` if it can't."""
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        rows = example.astype(object).where(example.notna(), None).to_numpy().tolist()
        payload: dict[str, Any] = {
            "type": "dataframe",
            "columns": [str(c) for c in example.columns],
            "dtypes": [str(dt) for dt in example.dtypes],
            "data": rows,
        }
    elif isinstance(example, np.ndarray):
        if example.dtype.kind not in "biufUS":
            return None
        payload = {"type": "ndarray", "dtype": example.dtype.str, "data": _nan_free(example)}
    elif isinstance(example, Mapping):
        payload = {
            "type": "tensors",
            "data": {
                str(k): {"dtype": np.asarray(v).dtype.str, "data": _nan_free(np.asarray(v))}
                for k, v in example.items()
            },
        }
    else:
        return None
    try:
        text = json.dumps(payload, default=_json_default, allow_nan=False)
    except (TypeError, ValueError):
        return None
    (folder / EXAMPLE_FILE).write_text(text, encoding="utf-8")
    return EXAMPLE_FILE


def read_example(path: Path) -> Any:
    """Read an example written by :func:`write_example`."""
    import numpy as np
    import pandas as pd

    payload = json.loads(path.read_text(encoding="utf-8"))
    kind = payload.get("type")
    if kind == "dataframe":
        frame = pd.DataFrame(payload["data"], columns=payload["columns"])
        for column, dtype in zip(payload["columns"], payload["dtypes"], strict=True):
            # On failure keep what JSON gave (e.g. a nullable column that became object).
            with contextlib.suppress(TypeError, ValueError):
                frame[column] = frame[column].astype(dtype)
        return frame
    if kind == "ndarray":
        return np.asarray(_with_nan(payload["data"]), dtype=np.dtype(payload["dtype"]))
    if kind == "tensors":
        return {
            name: np.asarray(_with_nan(spec["data"]), dtype=np.dtype(spec["dtype"]))
            for name, spec in payload["data"].items()
        }
    return payload


def _nan_free(array: Any) -> Any:
    import numpy as np

    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return np.asarray(np.where(np.isnan(array), None, array.astype(object))).tolist()
    return array.tolist()


def _with_nan(data: Any) -> Any:
    if isinstance(data, list):
        return [_with_nan(v) for v in data]
    return float("nan") if data is None else data


def _json_default(value: Any) -> Any:
    import datetime as dt

    import numpy as np

    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
