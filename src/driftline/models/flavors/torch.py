"""PyTorch modules (CPU): a TorchScript program plus a weights-only ``state_dict``.

Two files are written:

- ``model.torchscript.pt``: the module traced (``torch.jit.trace``) on the input example,
  or scripted (``torch.jit.script``) without one. It loads without the Python class,
  which is what ``load`` uses.
- ``state_dict.pt``: the weights alone, loadable with ``torch.load(path,
  weights_only=True)`` into a freshly built instance of the class recorded in the
  manifest (``flavor_options["class"]``), for fine-tuning.

TorchScript is deprecated in recent torch releases (in favour of ``torch.export``); it
still works, and its deprecation warnings are silenced around the calls made here.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError
from driftline.models.flavors.base import Flavor, SavedFlavor, class_path, require

if TYPE_CHECKING:
    from driftline.models.models import ModelInfo

__all__ = ["TorchFlavor"]

PROGRAM_FILE = "model.torchscript.pt"
STATE_FILE = "state_dict.pt"


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\..*")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\..*")
        yield


class TorchFlavor(Flavor):
    """``torch.nn.Module`` (TorchScript modules included), run on CPU."""

    name = "torch"
    label = "PyTorch (torch.nn.Module, CPU)"
    roots = frozenset({"torch"})
    main_distribution = "torch"

    def matches(self, model: Any) -> bool:
        if not super().matches(model):
            return False
        torch = require("torch")

        return isinstance(model, torch.nn.Module)

    def save(self, model: Any, folder: Path, *, example: Any) -> SavedFlavor:
        torch = require("torch")

        input_dtype = _float_dtype(model)
        was_training = model.training
        model.eval()
        try:
            if isinstance(model, torch.jit.ScriptModule):
                program = model
                how = "given"
            elif example is not None:
                inputs = tuple(_tensor(x, input_dtype) for x in _positional(example))
                with torch.no_grad(), _quiet_jit():
                    program = torch.jit.trace(model, inputs)
                how = "trace"
            else:
                try:
                    with _quiet_jit():
                        program = torch.jit.script(model)
                except Exception as exc:
                    raise InvalidArgumentError(
                        f"Cannot script this {class_path(model)} ({exc}); pass input_example= "
                        "so it can be traced instead"
                    ) from exc
                how = "script"
            with _quiet_jit():
                torch.jit.save(program, str(folder / PROGRAM_FILE))
            torch.save(model.state_dict(), folder / STATE_FILE)
        finally:
            model.train(was_training)
        return SavedFlavor(
            options={
                "program": PROGRAM_FILE,
                "state_dict": STATE_FILE,
                "class": class_path(model),
                "program_from": how,
                "input_dtype": str(input_dtype).removeprefix("torch."),
            },
            distributions=("torch", "numpy"),
        )

    def load(self, folder: Path, info: ModelInfo) -> Any:
        torch = require("torch")

        with _quiet_jit():
            program = torch.jit.load(
                str(folder / info.flavor_options["program"]), map_location="cpu"
            )
        program.eval()
        return program

    def predictor(self, raw: Any, info: ModelInfo, folder: Path) -> Callable[[Any], Any]:
        torch = require("torch")

        name = info.flavor_options.get("input_dtype", "float32")
        input_dtype = getattr(torch, name, torch.float32)

        def predict(data: Any) -> Any:
            inputs = [_tensor(x, input_dtype) for x in _positional(data)]
            with torch.no_grad():
                return _to_numpy(raw(*inputs))

        return predict


def _float_dtype(model: Any) -> Any:
    torch = require("torch")

    for parameter in model.parameters():
        if parameter.dtype.is_floating_point:
            return parameter.dtype
    return torch.float32


def _positional(data: Any) -> list[Any]:
    if isinstance(data, Mapping):
        return list(data.values())
    return [data]


def _tensor(value: Any, float_dtype: Any) -> Any:
    import numpy as np

    torch = require("torch")

    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        array = value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
        if array.dtype.kind in "UO":
            raise InvalidArgumentError(
                f"A torch model takes numbers; got an array of {array.dtype} values"
            )
        array = np.ascontiguousarray(array)
        if not array.flags.writeable:  # torch warns on read-only memory (pandas copy-on-write)
            array = array.copy()
        tensor = torch.from_numpy(array)
    if tensor.dtype.is_floating_point and tensor.dtype != float_dtype:
        tensor = tensor.to(float_dtype)
    return tensor


def _to_numpy(output: Any) -> Any:
    torch = require("torch")

    if isinstance(output, torch.Tensor):
        return output.detach().cpu().numpy()
    if isinstance(output, tuple | list):
        return type(output)(_to_numpy(o) for o in output)
    if isinstance(output, Mapping):
        return {k: _to_numpy(v) for k, v in output.items()}
    return output
