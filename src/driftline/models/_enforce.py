"""Turning what a caller passes to ``predict`` into what the model was trained on.

``predict`` accepts a DataFrame, a list of record dicts, a dict of columns, a numpy
array, or a list of lists (rows). With a signature, the input is checked and cast:

- a missing column is an :class:`~driftline.errors.InvalidArgumentError` naming the
  column and its expected type; extra columns are dropped with a warning naming them;
  columns are put in the signature's order;
- safe casts are applied: integers to floats, float widths to each other, floats to
  integers only when every value is a whole number (no NaN), integer widths when the
  values fit; Python objects holding only numbers become numbers;
- nothing else is cast: numeric *strings* are not parsed, booleans are not numbers.

The common case, a DataFrame whose columns and dtypes already match, returns the same
object without copying (one ``columns`` and one ``dtypes`` comparison), so single-row
predictions pay a few microseconds here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from driftline.errors import InvalidArgumentError
from driftline.models.signature import COLUMN_TYPES, ColSpec, Signature, TensorSpec

__all__ = ["as_table_or_array", "build_adapter", "plain_input"]

_ACCEPTED = "a DataFrame, a list of record dicts, a dict of columns or a numpy array"


def as_table_or_array(data: Any) -> Any:
    """A DataFrame, an ndarray or a dict of named arrays for ``data`` (used for examples)."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame | np.ndarray):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, Mapping):
        if data and all(isinstance(v, np.ndarray) and v.ndim >= 2 for v in data.values()):
            return dict(data)
        return _frame_from_mapping(data)
    if isinstance(data, list | tuple):
        if not data:
            raise InvalidArgumentError("The input is empty")
        if isinstance(data[0], Mapping):
            return pd.DataFrame.from_records(list(data))
        return np.asarray(data)
    if hasattr(data, "__array__"):
        return np.asarray(data)
    raise InvalidArgumentError(f"Unsupported input of type {type(data).__name__}; use {_ACCEPTED}")


def plain_input(data: Any) -> Any:
    """Without a signature: records and dicts of columns become a DataFrame, nothing else."""
    import pandas as pd

    if isinstance(data, Mapping):
        return _frame_from_mapping(data)
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        return pd.DataFrame.from_records(data)
    return data


def _frame_from_mapping(data: Mapping[str, Any]) -> Any:
    import numpy as np
    import pandas as pd

    if all(np.ndim(v) == 0 for v in data.values()):
        return pd.DataFrame([dict(data)])  # one record
    return pd.DataFrame(dict(data))


def build_adapter(signature: Signature | None) -> Callable[[Any], Any]:
    """A function that checks and casts one ``predict`` input against ``signature``."""
    if signature is None:
        return plain_input
    if signature.is_tensor:
        specs = [s for s in signature.inputs if isinstance(s, TensorSpec)]
        if len(specs) == 1:
            return _TensorAdapter(specs[0])
        return _NamedTensorsAdapter(specs)
    return _ColumnAdapter([s for s in signature.inputs if isinstance(s, ColSpec)])


# -- columns ----------------------------------------------------------------------------


class _ColumnAdapter:
    """Checks a table against column specs; the matching case is a fast path."""

    def __init__(self, specs: Sequence[ColSpec]) -> None:
        import numpy as np
        import pandas as pd

        self._pd = pd
        self._np = np
        self.specs = list(specs)
        self.names = [str(s.name) for s in specs]
        self.types = [s.type for s in specs]
        # The dtype that passes without a look at the values (None: always look).
        self.exact = [
            None if t in ("string", "binary") else np.dtype(COLUMN_TYPES[t]) for t in self.types
        ]
        # When every column wants the same dtype, one look at a single-block frame's
        # dtype replaces building ``df.dtypes`` (a Series: ~25 us, most of this path).
        kinds = set(self.exact)
        self.uniform = kinds.pop() if len(kinds) == 1 else None

    def __call__(self, data: Any) -> Any:
        df = data if type(data) is self._pd.DataFrame else self._frame(data)
        if df.columns.tolist() != self.names:
            df = self._select(df)
        if self.uniform is not None:
            block = _single_block_dtype(df)
            # `is not None` first: numpy reads None as float64, so `None == float64` holds.
            if block is not None and block == self.uniform:
                return df
        changes: dict[str, Any] | None = None
        problems: list[str] = []
        for name, type_, exact, dtype in zip(
            self.names, self.types, self.exact, df.dtypes.tolist(), strict=True
        ):
            if exact is not None and dtype == exact:
                continue
            try:
                new = _convert_column(df[name], type_, dtype)
            except _TypeMismatch as exc:
                problems.append(f"column {name!r} expects type {type_}, got {exc}")
                continue
            if new is not None:
                changes = changes or {}
                changes[name] = new
        if problems:
            raise InvalidArgumentError(
                "Input does not match the model's signature: " + "; ".join(problems)
            )
        if changes:
            df = df.copy(deep=False)
            for name, values in changes.items():
                df[name] = values
        return df

    def _frame(self, data: Any) -> Any:
        pd, np = self._pd, self._np
        if isinstance(data, pd.DataFrame):
            return data
        if isinstance(data, Mapping):
            return _frame_from_mapping(data)
        if isinstance(data, pd.Series):
            if data.name is None and len(self.names) == 1:
                return data.to_frame(self.names[0])
            return data.to_frame()
        if isinstance(data, list | tuple):
            if not data:
                raise InvalidArgumentError("The input is empty")
            if isinstance(data[0], Mapping):
                return pd.DataFrame.from_records(list(data))
            if len(self.names) == 1 and np.ndim(data[0]) == 0:
                return pd.DataFrame({self.names[0]: list(data)})
            return self._rows(pd.DataFrame(list(data)), len(data[0]))
        if isinstance(data, np.ndarray):
            if data.ndim == 1 and len(self.names) == 1:
                return pd.DataFrame({self.names[0]: data})
            if data.ndim != 2:
                raise InvalidArgumentError(
                    f"A numpy input must have 2 dimensions (rows x {len(self.names)} columns), "
                    f"got shape {data.shape}"
                )
            return self._rows(pd.DataFrame(data), data.shape[1])
        raise InvalidArgumentError(
            f"Unsupported input of type {type(data).__name__}; use {_ACCEPTED}"
        )

    def _rows(self, df: Any, width: int) -> Any:
        if width != len(self.names):
            raise InvalidArgumentError(
                f"Each row must have {len(self.names)} values (the columns "
                f"{', '.join(map(repr, self.names))}), got {width}"
            )
        df.columns = self.names
        return df

    def _select(self, df: Any) -> Any:
        columns = df.columns.tolist()
        if len(set(columns)) != len(columns):
            repeated = sorted({str(c) for c in columns if columns.count(c) > 1})
            raise InvalidArgumentError(f"Input columns repeat: {', '.join(repeated)}")
        present = set(columns)
        missing = [(n, t) for n, t in zip(self.names, self.types, strict=True) if n not in present]
        if missing:
            label = "column" if len(missing) == 1 else "columns"
            listed = ", ".join(f"{n!r} (expected type {t})" for n, t in missing)
            raise InvalidArgumentError(
                f"Input is missing {label} {listed}; the model takes "
                f"{', '.join(f'{n}: {t}' for n, t in zip(self.names, self.types, strict=True))}"
            )
        wanted = set(self.names)
        extra = [str(c) for c in columns if c not in wanted]
        if extra:
            warnings.warn(
                f"Dropping input columns the model's signature does not list: "
                f"{', '.join(map(repr, extra))}",
                UserWarning,
                stacklevel=4,
            )
        return df[self.names]


def _single_block_dtype(df: Any) -> Any:
    """The dtype of a frame stored as one consolidated block, else ``None``.

    Reads pandas' block manager, which is internal: any surprise means "unknown" and the
    caller takes the general path.
    """
    try:
        blocks = df._mgr.blocks
        return blocks[0].dtype if len(blocks) == 1 else None
    except Exception:
        return None


class _TypeMismatch(Exception):
    """A column's values cannot become the expected type (message: what was found)."""


def _convert_column(series: Any, type_: str, dtype: Any) -> Any:
    """Values cast to ``type_``, ``None`` when they pass as they are, or _TypeMismatch."""
    import numpy as np
    import pandas as pd

    kind = dtype.kind if isinstance(dtype, np.dtype) else None
    extension_number = (
        kind is None
        and pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
    )
    if type_ in ("float", "double"):
        target = np.dtype(COLUMN_TYPES[type_])
        if kind in ("f", "i", "u"):
            return series.astype(target)
        if extension_number:
            return series.to_numpy(dtype=target, na_value=np.nan)
        if kind == "O" and _object_kind(series) in ("integer", "floating", "mixed-integer-float"):
            return pd.to_numeric(series).astype(target)
        raise _TypeMismatch(_describe(series, dtype))
    if type_ in ("integer", "long"):
        target = np.dtype(COLUMN_TYPES[type_])
        if kind in ("i", "u"):
            return _fit_integers(series.to_numpy(), target)
        if kind == "f":
            return _whole_numbers(series.to_numpy(), target)
        if extension_number:
            if series.isna().any():
                raise _TypeMismatch("missing values")
            return _whole_numbers(series.to_numpy(dtype="float64"), target)
        if kind == "O" and _object_kind(series) in ("integer", "floating", "mixed-integer-float"):
            return _whole_numbers(pd.to_numeric(series).to_numpy(dtype="float64"), target)
        raise _TypeMismatch(_describe(series, dtype))
    if type_ == "boolean":
        if isinstance(dtype, pd.BooleanDtype) and not series.isna().any():
            return series.to_numpy(dtype=bool)
        if kind == "O" and _object_kind(series) == "boolean" and not series.isna().any():
            return series.astype(bool)
        raise _TypeMismatch(_describe(series, dtype))
    if type_ == "string":
        if isinstance(dtype, pd.StringDtype):
            return None
        if isinstance(dtype, pd.CategoricalDtype):
            if pd.api.types.infer_dtype(dtype.categories, skipna=True) in ("string", "empty"):
                return None
        elif kind == "O" and _object_kind(series) in ("string", "empty"):
            return None
        raise _TypeMismatch(_describe(series, dtype))
    if type_ == "binary":
        if kind == "O" and _object_kind(series) in ("bytes", "empty"):
            return None
        raise _TypeMismatch(_describe(series, dtype))
    if type_ == "datetime":
        if kind == "M" or isinstance(dtype, pd.DatetimeTZDtype):
            return None
        if kind == "O" and _object_kind(series) in ("datetime", "datetime64", "date"):
            return pd.to_datetime(series)
        raise _TypeMismatch(_describe(series, dtype))
    raise _TypeMismatch(f"an unknown column type {type_!r}")  # pragma: no cover


def _object_kind(series: Any) -> str:
    import pandas as pd

    return str(pd.api.types.infer_dtype(series, skipna=True))


def _describe(series: Any, dtype: Any) -> str:
    """What a column holds, for an error message: dtype and a sample offending value."""
    import pandas as pd

    non_null = series.dropna()
    sample = ""
    if len(non_null):
        value = non_null.iloc[0]
        sample = f" such as {value!r}"
    kind = str(dtype)
    if str(dtype) in ("object", "str", "string") or isinstance(dtype, pd.StringDtype):
        kind = pd.api.types.infer_dtype(series, skipna=True)
        if kind == "string":
            return (
                f"str values{sample} (numeric strings are not converted: cast the column "
                "first, e.g. df[col].astype(float))"
            )
    return f"{kind} values{sample}"


def _fit_integers(values: Any, target: Any) -> Any:
    import numpy as np

    if values.dtype == target or np.can_cast(values.dtype, target, "safe"):
        return values.astype(target, copy=False)
    info = np.iinfo(target)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise _TypeMismatch(f"{values.dtype} values outside the {target} range")
    return values.astype(target)


def _whole_numbers(values: Any, target: Any) -> Any:
    import numpy as np

    if not np.isfinite(values).all():
        raise _TypeMismatch("float values that are missing (NaN) or infinite")
    if (values != np.trunc(values)).any():
        bad = values[values != np.trunc(values)][0]
        raise _TypeMismatch(f"float values that are not whole numbers, such as {bad!r}")
    info = np.iinfo(target)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise _TypeMismatch(f"values outside the {target} range")
    return values.astype(target)


# -- tensors ----------------------------------------------------------------------------


class _TensorAdapter:
    """Checks one array against a tensor spec (dtype cast by the same rules, then shape)."""

    def __init__(self, spec: TensorSpec) -> None:
        import numpy as np

        self._np = np
        self.spec = spec
        self.dtype = None if spec.dtype in ("string", "object") else np.dtype(spec.dtype)

    def __call__(self, data: Any) -> Any:
        array = data if type(data) is self._np.ndarray else _to_array(data)
        if self.dtype is not None and array.dtype != self.dtype:
            array = _cast_tensor(array, self.dtype, self.spec.name)
        elif self.dtype is None and array.dtype.kind not in "UO":
            raise InvalidArgumentError(
                f"Input tensor{_label(self.spec.name)} expects {self.spec.dtype} values, "
                f"got {array.dtype}"
            )
        shape = self.spec.shape
        if array.ndim != len(shape) or any(
            want not in (-1, got) for want, got in zip(shape, array.shape, strict=True)
        ):
            expected = "(" + ", ".join(str(d) for d in shape) + ")"
            raise InvalidArgumentError(
                f"Input tensor{_label(self.spec.name)} has shape {tuple(array.shape)}; the model "
                f"takes {expected} (-1: any size)"
            )
        return array


class _NamedTensorsAdapter:
    """Several named tensors (e.g. an ONNX graph's inputs): a dict name -> array."""

    def __init__(self, specs: Sequence[TensorSpec]) -> None:
        self.adapters = {str(s.name): _TensorAdapter(s) for s in specs}

    def __call__(self, data: Any) -> Any:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            data = {c: data[c].to_numpy() for c in data.columns}
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(
                f"This model takes named tensors {sorted(self.adapters)}: pass a dict name -> array"
            )
        missing = [name for name in self.adapters if name not in data]
        if missing:
            raise InvalidArgumentError(
                f"Input is missing tensor(s) {', '.join(map(repr, missing))}"
            )
        extra = [str(k) for k in data if k not in self.adapters]
        if extra:
            warnings.warn(
                f"Dropping input tensors the model's signature does not list: {', '.join(extra)}",
                UserWarning,
                stacklevel=3,
            )
        return {name: adapter(data[name]) for name, adapter in self.adapters.items()}


def _label(name: str | None) -> str:
    return f" {name!r}" if name else ""


def _to_array(data: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame | pd.Series):
        return data.to_numpy()
    if isinstance(data, Mapping) or (
        isinstance(data, list) and data and isinstance(data[0], Mapping)
    ):
        return plain_input(data).to_numpy()
    if hasattr(data, "detach") and hasattr(data, "numpy"):  # a torch tensor
        return data.detach().cpu().numpy()
    if isinstance(data, list | tuple) or hasattr(data, "__array__"):
        return np.asarray(data)
    raise InvalidArgumentError(f"Unsupported input of type {type(data).__name__}; use {_ACCEPTED}")


def _cast_tensor(array: Any, dtype: Any, name: str | None) -> Any:
    import pandas as pd

    src = array.dtype
    if src.kind == "O" and array.size:
        inferred = pd.api.types.infer_dtype(array.ravel(), skipna=False)
        if inferred in ("integer", "floating", "mixed-integer-float"):
            array = array.astype("float64")
            src = array.dtype
    try:
        if dtype.kind == "f" and src.kind in "fiu":
            return array.astype(dtype)
        if dtype.kind in "iu" and src.kind in "iu":
            return _fit_integers(array, dtype)
        if dtype.kind in "iu" and src.kind == "f":
            return _whole_numbers(array, dtype)
    except _TypeMismatch as exc:
        raise InvalidArgumentError(
            f"Input tensor{_label(name)} expects {dtype} values, got {exc}"
        ) from None
    hint = ""
    if src.kind in "UO":
        hint = " (strings are not converted to numbers: cast the input first)"
    raise InvalidArgumentError(
        f"Input tensor{_label(name)} expects {dtype} values, got {src}{hint}"
    )
