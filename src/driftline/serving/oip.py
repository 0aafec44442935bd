"""Open Inference Protocol v2 (KServe, Triton) REST: typed tensors in, typed tensors out.

A request is ``{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype", "data",
"parameters"?}], "outputs"?}``; ``data`` is row-major, nested or flat, and must hold
exactly ``prod(shape)`` values. How tensors meet the model's signature:

- column signature: one tensor per column, named like it, shape ``[N]`` or ``[N, 1]``;
  or a single ``[N, k]`` tensor whose ``k`` values per row are the ``k`` columns in the
  signature's order (what generic OIP clients send as ``input-0``);
- tensor signature: the single input tensor (or, for named tensors, one per name).

Outputs: a table's columns become one tensor each; an array becomes one tensor called
``predict`` (or the signature's output name). Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = ["decode_infer", "encode_outputs", "model_metadata"]

DTYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_COLUMN_DATATYPE = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
_REQUEST_KEYS = {"id", "parameters", "inputs", "outputs"}
_TENSOR_KEYS = {"name", "shape", "datatype", "data", "parameters"}


def datatype_of(dtype: Any) -> str:
    """The OIP datatype of a numpy dtype (``BYTES`` for strings and objects)."""
    import numpy as np

    dtype = np.dtype(dtype)
    for name, numpy_name in DTYPES.items():
        if numpy_name != "object" and dtype == np.dtype(numpy_name):
            return name
    return "BYTES"


def _tensor(spec: Any, index: int) -> tuple[str, Any]:
    if not isinstance(spec, Mapping):
        raise InvalidArgumentError(f"inputs[{index}] must be an object")
    unknown = sorted(set(spec) - _TENSOR_KEYS)
    missing = sorted({"name", "shape", "datatype", "data"} - set(spec))
    if unknown or missing:
        raise InvalidArgumentError(
            f"inputs[{index}]: "
            + "; ".join(
                ([f"unknown field(s) {', '.join(unknown)}"] if unknown else [])
                + ([f"missing {', '.join(missing)}"] if missing else [])
            )
        )
    name, shape, datatype = spec["name"], spec["shape"], spec["datatype"]
    if not isinstance(name, str):
        raise InvalidArgumentError(f"inputs[{index}].name must be a string")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidArgumentError(f"Input {name!r}: shape must be a list of sizes")
    if datatype not in DTYPES:
        raise InvalidArgumentError(
            f"Input {name!r}: unknown datatype {datatype!r}; known: {', '.join(DTYPES)}"
        )
    import numpy as np

    flat = _flatten(spec["data"])
    if len(flat) != math.prod(shape):
        raise InvalidArgumentError(
            f"Input {name!r}: shape {shape} needs {math.prod(shape)} values, data has {len(flat)}"
        )
    if datatype == "BYTES":
        array = np.array(flat, dtype=object)
    else:
        # Check the JSON kinds first: numpy would quietly parse "1.5" into a float.
        want = bool if datatype == "BOOL" else (float if datatype.startswith("FP") else int)
        bad = next((v for v in flat if not _fits(v, want)), None)
        if bad is not None or (flat and want is bool and not all(type(v) is bool for v in flat)):
            raise InvalidArgumentError(
                f"Input {name!r} is {datatype}, but holds {bad!r} ({type(bad).__name__})"
            )
        try:
            array = np.array(flat, dtype=DTYPES[datatype])
        except (OverflowError, ValueError) as exc:
            raise InvalidArgumentError(f"Input {name!r} does not fit {datatype}: {exc}") from None
    return name, array.reshape(shape)


def _fits(value: Any, want: type) -> bool:
    if want is bool:
        return type(value) is bool
    if want is int:
        return type(value) is int
    return type(value) is float or type(value) is int


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidArgumentError("Tensor data must be a (nested) list")
    if not data or not isinstance(data[0], list):
        return data
    out: list[Any] = []
    stack = [data]
    while stack:  # depth-first, row-major
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def decode_infer(payload: Any, signature: Any) -> tuple[Any, str | None]:
    """An infer request -> ``(model input, request id or None)``."""
    import pandas as pd

    if not isinstance(payload, Mapping):
        raise InvalidArgumentError('The body must be a JSON object {"inputs": [...]}')
    unknown = sorted(set(payload) - _REQUEST_KEYS)
    if unknown:
        raise InvalidArgumentError(f"Unknown field(s) {', '.join(map(repr, unknown))}")
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidArgumentError("id must be a string")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidArgumentError("inputs must be a non-empty list of tensors")
    tensors = dict(_tensor(spec, i) for i, spec in enumerate(inputs))
    if len(tensors) != len(inputs):
        raise InvalidArgumentError("Input tensor names repeat")
    if signature is not None and signature.is_tensor:
        if len(signature.inputs) == 1:
            if len(tensors) != 1:
                raise InvalidArgumentError("This model takes one input tensor")
            return next(iter(tensors.values())), request_id
        return tensors, request_id
    names = [] if signature is None else signature.input_names
    if len(tensors) == 1:
        name, array = next(iter(tensors.items()))
        if array.ndim == 2 and name not in names and (not names or array.shape[1] == len(names)):
            return pd.DataFrame(array, columns=names or None), request_id
    columns = {}
    for name, array in tensors.items():
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InvalidArgumentError(
                f"Input {name!r} has shape {list(array.shape)}; a column is [N] or [N, 1]"
            )
        columns[name] = array
    if len({len(a) for a in columns.values()}) != 1:
        raise InvalidArgumentError("Input columns differ in length")
    return pd.DataFrame(columns), request_id


def encode_outputs(output: Any, signature: Any) -> list[dict[str, Any]]:
    """Model output -> OIP output tensors (data flat, row-major)."""
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        return [_out(str(c), output[c].to_numpy()) for c in output.columns]
    if isinstance(output, Mapping):
        return [_out(str(k), np.asarray(v)) for k, v in output.items()]
    name = "predict"
    outputs: tuple[Any, ...] = tuple(getattr(signature, "outputs", ()) or ())
    if len(outputs) == 1 and outputs[0].name:
        name = str(outputs[0].name)
    return [_out(name, np.asarray(output))]


def _out(name: str, array: Any) -> dict[str, Any]:
    datatype = datatype_of(array.dtype)
    data = array.ravel().tolist()
    if datatype == "BYTES":
        data = [v if isinstance(v, str) else str(v) for v in data]
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def model_metadata(name: str, version: int, flavor: str, signature: Any) -> dict[str, Any]:
    """``GET /v2/models/{name}``: inputs and outputs from the signature."""
    return {
        "name": name,
        "versions": [str(version)],
        "platform": f"driftline-{flavor}",
        "inputs": _specs(getattr(signature, "inputs", ()), "input"),
        "outputs": _specs(getattr(signature, "outputs", ()), "output"),
    }


def _specs(specs: Any, kind: str) -> list[dict[str, Any]]:
    # Unnamed outputs are called "predict", as encode_outputs names them.
    unnamed = "predict" if kind == "output" and len(specs) == 1 else None
    out = []
    for i, spec in enumerate(specs):
        if hasattr(spec, "shape"):  # a TensorSpec
            datatype = "BYTES" if spec.dtype in ("string", "object") else datatype_of(spec.dtype)
            out.append(
                {
                    "name": spec.name or unnamed or f"{kind}-{i}",
                    "datatype": datatype,
                    "shape": list(spec.shape),
                }
            )
        else:
            out.append(
                {"name": spec.name or unnamed or f"{kind}-{i}",
                 "datatype": _COLUMN_DATATYPE[spec.type],
                 "shape": [-1]}
            )  # fmt: skip
    return out
