"""How step outputs become bytes in the content store, chosen by the value's type.

=================  ==============  ==========================================
type               serializer      stored as
=================  ==============  ==========================================
pandas DataFrame   ``parquet``     Parquet (pyarrow), index kept
Arrow Table        ``arrow``       Parquet
numpy ndarray      ``npy``         ``.npy`` without pickled objects
JSON-able value    ``json``        canonical JSON (sorted keys)
dataset version    ``dataset``     a reference: dataset, number, version id
model version      ``model``       a reference: ``models:/name/3`` + package digest
logged model       ``model-info``  a reference: ``runs:/<run>/<path>``
anything else      ``pickle``      only with ``@dl.step(pickle=True)`` (cloudpickle
                                   when installed); loading runs code
=================  ==============  ==========================================

The serializer's ``name/version`` is part of every downstream cache key, so changing a
format means bumping its version, which invalidates what was written the old way.
Heavy libraries are imported only when a value of their type is stored or loaded.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = ["FORMAT_VERSION", "Serializer", "dump", "load"]

# Part of every cache key: bump to invalidate every stored output at once.
FORMAT_VERSION = "1"


@dataclass(frozen=True, slots=True)
class Serializer:
    """A named, versioned way to turn a value into bytes and back."""

    name: str
    version: int
    accepts: Callable[[Any], bool]
    dump: Callable[[Any], bytes]
    load: Callable[[bytes, Any], Any]  # (data, workspace) -> value

    @property
    def id(self) -> str:
        """``parquet/1``."""
        return f"{self.name}/{self.version}"


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is(value: Any, module: str, name: str) -> bool:
    """``isinstance`` against ``module.name`` without importing it: a value of that type
    can only exist once its module is imported."""
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(cls, type) and isinstance(value, cls)


def _json_able(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_json_able(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_able(v, depth + 1) for k, v in value.items())
    return False


def _dump_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _dump_parquet(value: Any) -> bytes:
    buffer = io.BytesIO()
    value.to_parquet(buffer)
    return buffer.getvalue()


def _load_parquet(data: bytes, _ws: Any) -> Any:
    import pandas as pd

    return pd.read_parquet(io.BytesIO(data))


def _dump_arrow(value: Any) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(value, buffer)
    return buffer.getvalue()


def _load_arrow(data: bytes, _ws: Any) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data))


def _dump_npy(value: Any) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=False)
    return buffer.getvalue()


def _load_npy(data: bytes, _ws: Any) -> Any:
    import numpy as np

    return np.load(io.BytesIO(data), allow_pickle=False)


def _dump_dataset(value: Any) -> bytes:
    record = getattr(value, "record", value)
    return _dump_json({"dataset": record.dataset, "number": record.number, "id": record.id})


def _load_dataset(data: bytes, ws: Any) -> Any:
    from driftline.data import Version

    ref = json.loads(data)
    record = ws.data.get(f"{ref['dataset']}@{ref['number']}")
    if record.id != ref["id"]:
        from driftline.errors import IntegrityError

        raise IntegrityError(
            f"Dataset version {ref['dataset']}@{ref['number']} is {record.id}, but the step "
            f"stored {ref['id']}; re-run the pipeline with force=True"
        )
    return Version(ws.data, record)


def _dump_model_version(value: Any) -> bytes:
    return _dump_json(
        {"name": value.name, "version": value.version, "package": value.package_digest}
    )


def _load_model_version(data: bytes, ws: Any) -> Any:
    ref = json.loads(data)
    return ws.registry.get_version(f"{ref['name']}/{ref['version']}")


def _dump_model_info(value: Any) -> bytes:
    if not value.uri:
        raise InvalidArgumentError("a model package that was not logged has no reference")
    # The package's file digests pin the content: the same uri with other bytes is a miss.
    return _dump_json({"uri": value.uri, "files": {k: v[0] for k, v in value.files.items()}})


def _load_model_info(data: bytes, _ws: Any) -> Any:
    from driftline.models import load

    return load(json.loads(data)["uri"]).info


def _dump_pickle(value: Any) -> bytes:
    try:
        import cloudpickle  # type: ignore[import-untyped]

        return bytes(cloudpickle.dumps(value))
    except ImportError:
        import pickle

        return pickle.dumps(value, protocol=5)


def _load_pickle(data: bytes, _ws: Any) -> Any:
    import pickle

    return pickle.loads(data)


SERIALIZERS: tuple[Serializer, ...] = (
    Serializer("parquet", 1, lambda v: _is(v, "pandas", "DataFrame"), _dump_parquet, _load_parquet),
    Serializer("arrow", 1, lambda v: _is(v, "pyarrow", "Table"), _dump_arrow, _load_arrow),
    Serializer("npy", 1, lambda v: _is(v, "numpy", "ndarray"), _dump_npy, _load_npy),
    Serializer(
        "dataset",
        1,
        lambda v: _is(v, "driftline.data", "Version") or _is(v, "driftline.data", "DatasetVersion"),
        _dump_dataset,
        _load_dataset,
    ),
    Serializer(
        "model",
        1,
        lambda v: _is(v, "driftline.registry", "ModelVersion"),
        _dump_model_version,
        _load_model_version,
    ),
    Serializer(
        "model-info",
        1,
        lambda v: _is(v, "driftline.models", "ModelInfo"),
        _dump_model_info,
        _load_model_info,
    ),
    Serializer("json", 1, _json_able, _dump_json, lambda data, _ws: json.loads(data)),
)
PICKLE = Serializer("pickle", 1, lambda v: True, _dump_pickle, _load_pickle)
_BY_ID = {s.id: s for s in (*SERIALIZERS, PICKLE)}


def dump(value: Any, *, step: str, output: str, allow_pickle: bool) -> tuple[str, bytes]:
    """The serializer id and bytes for a step's output.

    Raises:
        InvalidArgumentError: No serializer takes the value and the step did not opt in
            to pickling; the message names the step, the output, its type and the fix.
    """
    for serializer in SERIALIZERS:
        if serializer.accepts(value):
            return serializer.id, serializer.dump(value)
    if allow_pickle:
        return PICKLE.id, PICKLE.dump(value)
    raise InvalidArgumentError(
        f"Step {step!r} returned {output!r} of type {_type_name(value)}, which driftline "
        "cannot store safely. Return a pandas DataFrame, an Arrow table, a numpy array, a "
        "JSON-able value (dict, list, str, number), a dataset version or a model version; "
        f"or opt in to pickling with @dl.step(pickle=True) on {step!r} (loading a pickle "
        "runs code, so only for outputs you trust)"
    )


def load(serializer_id: str, data: bytes, workspace: Any) -> Any:
    """Read a value written by :func:`dump`."""
    serializer = _BY_ID.get(serializer_id)
    if serializer is None:
        known = ", ".join(sorted(_BY_ID))
        raise InvalidArgumentError(
            f"Unknown output serializer {serializer_id!r} (known: {known}); it was written "
            "by another driftline version: upgrade, or re-run with force=True"
        )
    return serializer.load(data, workspace)
