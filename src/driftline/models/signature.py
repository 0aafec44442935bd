"""Model signatures: what a model takes and returns, inferred from an input example.

A signature is either column-based (a table: one :class:`ColSpec` per column, with a
name and a type) or tensor-based (one or more :class:`TensorSpec`: a dtype and a shape,
``-1`` for the batch dimension)::

    DataFrame example  ->  Signature(inputs=(ColSpec(name="age", type="double"), ...))
    numpy example      ->  Signature(inputs=(TensorSpec(dtype="float32", shape=(-1, 4)),))

Column types: ``boolean``, ``integer`` (32-bit), ``long`` (64-bit), ``float`` (32-bit),
``double`` (64-bit), ``string``, ``binary`` and ``datetime``. How inputs are checked and
cast against a signature at predict time is described in :mod:`driftline.models._enforce`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = ["COLUMN_TYPES", "ColSpec", "Signature", "TensorSpec", "infer_signature"]

# Column type -> the numpy dtype a value of that type is handed to the model as.
COLUMN_TYPES: dict[str, str] = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "object",
    "binary": "object",
    "datetime": "datetime64[ns]",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ColSpec:
    """One column of a table input or output.

    Attributes:
        name: The column name (``None`` for an unnamed output, e.g. a bare prediction).
        type: One of :data:`COLUMN_TYPES`.
    """

    name: str | None
    type: str

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise InvalidArgumentError(
                f"Unknown column type {self.type!r}; known: {', '.join(COLUMN_TYPES)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"name": ..., "type": ...}``."""
        return {"name": self.name, "type": self.type}


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorSpec:
    """One tensor input or output.

    Attributes:
        dtype: A numpy dtype name (``float32``, ``int64``, ``bool``), or ``string`` /
            ``object`` for arrays of Python objects.
        shape: The dimensions, ``-1`` where any size is allowed (the batch dimension).
        name: The tensor's name (ONNX inputs are named; most others are not).
    """

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"name": ..., "dtype": ..., "shape": [...]}``."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


Spec = ColSpec | TensorSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """The inputs a model takes and the outputs it returns.

    Attributes:
        inputs: All :class:`ColSpec` (a table) or all :class:`TensorSpec`.
        outputs: What ``predict`` returned on the input example (empty when unknown).

    Example:
        >>> sig = Signature.infer(df.head(5), model.predict(df.head(5)))  # doctest: +SKIP
        >>> [c.name for c in sig.inputs]                                   # doctest: +SKIP
        ['age', 'plan']
    """

    inputs: tuple[ColSpec, ...] | tuple[TensorSpec, ...]
    outputs: tuple[Spec, ...] = ()

    def __post_init__(self) -> None:
        if not self.inputs:
            raise InvalidArgumentError("A signature needs at least one input")
        kinds = {type(spec) for spec in self.inputs}
        if len(kinds) > 1:
            raise InvalidArgumentError(
                "A signature's inputs are all columns or all tensors, not a mix"
            )
        if self.is_tensor and len(self.inputs) > 1 and any(s.name is None for s in self.inputs):
            raise InvalidArgumentError("Several tensor inputs need a name each")
        if not self.is_tensor:
            names = [spec.name for spec in self.inputs]
            if any(name is None for name in names):
                raise InvalidArgumentError("Every input column needs a name")
            if len(set(names)) != len(names):
                raise InvalidArgumentError(f"Input column names repeat: {names}")

    @property
    def is_tensor(self) -> bool:
        """Whether the inputs are tensors (else they are the columns of a table)."""
        return isinstance(self.inputs[0], TensorSpec)

    @property
    def input_names(self) -> list[str]:
        """Names of the input columns (or of named tensors)."""
        return [spec.name for spec in self.inputs if spec.name is not None]

    @classmethod
    def infer(cls, input_example: Any, output: Any = None) -> Signature:
        """Infer a signature from an input example and, optionally, the model's output on it."""
        return infer_signature(input_example, output)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stored in the model manifest."""
        return {"inputs": _schema_dict(self.inputs), "outputs": _schema_dict(self.outputs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Read the JSON form written by :meth:`to_dict`."""
        try:
            inputs = _schema_from(data["inputs"])
            outputs = _schema_from(data.get("outputs") or {"type": "columns", "specs": []})
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidArgumentError):
                raise
            raise InvalidArgumentError(f"Malformed signature {dict(data)!r}: {exc}") from None
        return cls(inputs=inputs, outputs=outputs)  # type: ignore[arg-type]

    def __str__(self) -> str:
        def render(specs: Sequence[Spec]) -> str:
            parts = []
            for spec in specs:
                if isinstance(spec, ColSpec):
                    parts.append(f"{spec.name or '_'}: {spec.type}")
                else:
                    shape = ", ".join(str(d) for d in spec.shape)
                    label = f"{spec.name}: " if spec.name else ""
                    parts.append(f"{label}{spec.dtype}[{shape}]")
            return ", ".join(parts) or "?"

        return f"({render(self.inputs)}) -> ({render(self.outputs)})"


def _schema_dict(specs: Sequence[Spec]) -> dict[str, Any]:
    kind = "tensors" if specs and isinstance(specs[0], TensorSpec) else "columns"
    return {"type": kind, "specs": [spec.to_dict() for spec in specs]}


def _schema_from(data: Mapping[str, Any]) -> tuple[Spec, ...]:
    kind = data["type"]
    if kind == "columns":
        return tuple(ColSpec(name=s.get("name"), type=s["type"]) for s in data["specs"])
    if kind == "tensors":
        return tuple(
            TensorSpec(
                dtype=s["dtype"], shape=tuple(int(d) for d in s["shape"]), name=s.get("name")
            )
            for s in data["specs"]
        )
    raise InvalidArgumentError(f"Unknown schema type {kind!r}; known: columns, tensors")


# -- inference ----------------------------------------------------------------------------


def infer_signature(input_example: Any, output: Any = None) -> Signature:
    """Infer a signature from an input example and (optionally) the model's output on it.

    A DataFrame (or a list of record dicts, or a dict of columns) gives column specs; a
    numpy array (or a list of lists) gives one tensor spec with ``-1`` as batch dimension.

    Raises:
        InvalidArgumentError: The example is empty or of a kind no signature describes.
    """
    from driftline.models._enforce import as_table_or_array

    example = as_table_or_array(input_example)
    inputs = _specs_of(example, "input example")
    outputs: tuple[Spec, ...] = ()
    if output is not None:
        outputs = _specs_of(_output_form(output), "model output")
    return Signature(inputs=inputs, outputs=outputs)  # type: ignore[arg-type]


def _output_form(output: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.Series):
        name = output.name if isinstance(output.name, str) else None
        return name, output
    if isinstance(output, pd.DataFrame | np.ndarray):
        return output
    if hasattr(output, "detach") and hasattr(output, "numpy"):  # a torch tensor
        return output.detach().cpu().numpy()
    if isinstance(output, Mapping):
        return pd.DataFrame(output) if _all_sequences(output) else pd.DataFrame([output])
    return np.asarray(output)


def _all_sequences(mapping: Mapping[str, Any]) -> bool:
    return all(
        isinstance(v, Sequence | _array_types()) and not isinstance(v, str | bytes)
        for v in mapping.values()
    )


def _array_types() -> tuple[type, ...]:
    import numpy as np
    import pandas as pd

    return (np.ndarray, pd.Series)


def _specs_of(value: Any, what: str) -> tuple[Spec, ...]:
    import numpy as np
    import pandas as pd

    if isinstance(value, tuple):  # (name, Series) from an output
        name, series = value
        return (ColSpec(name=name, type=column_type(series, name or "output")),)
    if isinstance(value, pd.DataFrame):
        if value.shape[1] == 0:
            raise InvalidArgumentError(f"The {what} has no columns")
        if not all(isinstance(c, str) for c in value.columns):
            if what == "input example" and all(
                getattr(dt, "kind", "O") in ("b", "i", "u", "f") for dt in value.dtypes
            ):
                return _specs_of(value.to_numpy(), what)
            raise InvalidArgumentError(
                f"The {what}'s columns need string names (got {list(value.columns)[:5]}); "
                "rename them or pass a numpy array"
            )
        return tuple(
            ColSpec(name=str(c), type=column_type(value[c], str(c))) for c in value.columns
        )
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return (TensorSpec(dtype=tensor_dtype(value.dtype), shape=()),)
        return (TensorSpec(dtype=tensor_dtype(value.dtype), shape=(-1, *value.shape[1:])),)
    if isinstance(value, Mapping):  # named tensors
        return tuple(
            TensorSpec(
                name=str(name),
                dtype=tensor_dtype(np.asarray(arr).dtype),
                shape=(-1, *np.asarray(arr).shape[1:]),
            )
            for name, arr in value.items()
        )
    raise InvalidArgumentError(
        f"Cannot infer a signature from the {what} of type {type(value).__name__}; "
        "use a DataFrame, a list of records, a dict of columns or a numpy array"
    )


def tensor_dtype(dtype: Any) -> str:
    """The name a :class:`TensorSpec` uses for a numpy dtype."""
    kind = dtype.kind
    if kind == "U":
        return "string"
    if kind == "O":
        return "object"
    return str(dtype.name)


def column_type(series: Any, name: str) -> str:
    """The column type of a pandas Series (raising when it holds values of mixed kinds)."""
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return column_type(pd.Series(dtype.categories), name)
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        return "datetime"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    kind = getattr(dtype, "kind", "O")
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "integer" if dtype.itemsize < 4 or (kind == "i" and dtype.itemsize == 4) else "long"
    if kind == "f":
        return "float" if dtype.itemsize <= 4 else "double"
    if kind in "OU":
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        by_values = {
            "string": "string",
            "bytes": "binary",
            "boolean": "boolean",
            "integer": "long",
            "floating": "double",
            "mixed-integer-float": "double",
            "datetime": "datetime",
            "datetime64": "datetime",
            "empty": "string",
        }
        if inferred in by_values:
            return by_values[inferred]
    raise InvalidArgumentError(
        f"Cannot infer a type for column {name!r} (dtype {dtype}): it holds values of "
        f"mixed or unsupported kinds; clean the column or pass signature= explicitly"
    )
