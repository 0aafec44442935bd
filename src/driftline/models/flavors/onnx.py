"""ONNX models (``onnx.ModelProto``), run with onnxruntime on CPU.

``predict`` feeds one input (or a dict of named inputs) and returns the graph's first
output (for models converted from scikit-learn classifiers, the labels). Inputs are cast
to the graph's declared element types. Without an input example, the signature is read
from the graph: its inputs with their element types and shapes (symbolic dims -> -1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError
from driftline.models.flavors.base import Flavor, SavedFlavor, require

if TYPE_CHECKING:
    from driftline.models.models import ModelInfo
    from driftline.models.signature import Signature

__all__ = ["OnnxFlavor"]

MODEL_FILE = "model.onnx"

_ELEMENT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxFlavor(Flavor):
    """``onnx.ModelProto``."""

    name = "onnx"
    label = "ONNX (onnx.ModelProto, run with onnxruntime)"
    roots = frozenset({"onnx"})
    main_distribution = "onnxruntime"

    def matches(self, model: Any) -> bool:
        cls = type(model)
        return cls.__module__.split(".", 1)[0] == "onnx" and cls.__name__ == "ModelProto"

    def save(self, model: Any, folder: Path, *, example: Any) -> SavedFlavor:
        onnx = require("onnx")

        try:
            onnx.checker.check_model(model)
        except Exception as exc:
            raise InvalidArgumentError(f"This ONNX model is not valid: {exc}") from exc
        onnx.save_model(model, str(folder / MODEL_FILE))
        initializers = {init.name for init in model.graph.initializer}
        inputs = [i.name for i in model.graph.input if i.name not in initializers]
        outputs = [o.name for o in model.graph.output]
        return SavedFlavor(
            options={
                "file": MODEL_FILE,
                "inputs": inputs,
                "outputs": outputs,
                "output": outputs[0],
            },
            distributions=("onnx", "onnxruntime", "numpy"),
        )

    def load(self, folder: Path, info: ModelInfo) -> Any:
        onnxruntime = require("onnxruntime")

        return onnxruntime.InferenceSession(
            str(folder / info.flavor_options["file"]), providers=["CPUExecutionProvider"]
        )

    def predictor(self, raw: Any, info: ModelInfo, folder: Path) -> Callable[[Any], Any]:
        import numpy as np

        session = raw if hasattr(raw, "run") else _session(raw)
        metas = session.get_inputs()
        types = {m.name: np.dtype(_ELEMENT_TYPES.get(m.type, "float32")) for m in metas}
        names = [m.name for m in metas]
        output = [info.flavor_options.get("output") or session.get_outputs()[0].name]

        def feed(value: Any, name: str) -> Any:
            array = value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
            want = types[name]
            if array.dtype != want and not (want.kind == "O" and array.dtype.kind in "UO"):
                array = array.astype(want)
            return array

        def predict(data: Any) -> Any:
            if isinstance(data, Mapping):
                feeds = {name: feed(data[name], name) for name in names}
            elif len(names) == 1:
                feeds = {names[0]: feed(data, names[0])}
            else:
                raise InvalidArgumentError(
                    f"This ONNX model takes inputs {names}: pass a dict name -> array"
                )
            return session.run(output, feeds)[0]

        return predict

    def default_signature(self, model: Any) -> Signature | None:
        from driftline.models.signature import Signature, TensorSpec

        session = _session(model)
        specs = []
        for meta in session.get_inputs():
            shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in meta.shape)
            specs.append(
                TensorSpec(
                    name=meta.name, dtype=_ELEMENT_TYPES.get(meta.type, "object"), shape=shape
                )
            )
        return Signature(inputs=tuple(specs)) if specs else None


def _session(model: Any) -> Any:
    onnxruntime = require("onnxruntime")

    return onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
