"""Models: package any supported model with its signature, log it to a run, load it back.

Example:
    >>> import driftline as dl
    >>> import driftline.models
    >>> with dl.start_run(experiment="churn") as run:                       # doctest: +SKIP
    ...     model = LogisticRegression().fit(X, y)
    ...     info = dl.models.log_model(model, "model", input_example=X.head(5))
    >>> m = dl.models.load(f"runs:/{run.id}/model")                        # doctest: +SKIP
    >>> m.predict(X.head(3)), m.signature, m.metadata                      # doctest: +SKIP

Flavors: scikit-learn (skops), LightGBM (native text), XGBoost (JSON), PyTorch
(TorchScript + weights-only state_dict), ONNX (onnxruntime), and
:class:`PythonModel` subclasses (cloudpickle: loading one executes code). A package is a
folder whose ``driftline-model.json`` lists the digest of every other file; loading
verifies them all before deserializing anything.

The functions here work on the default workspace and the active run. No model library
is imported with this package; each is imported when a model of its flavor is saved,
loaded or (with :func:`autolog`) trained.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.core.lazy import lazy_exports

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from driftline.models.autolog import autolog
    from driftline.models.cache import ModelCache
    from driftline.models.flavors.linear import LinearPredictor, NumericRows
    from driftline.models.loaded import LoadedModel
    from driftline.models.models import ModelInfo
    from driftline.models.package import (
        load_model_folder,
        read_model_info,
        save_model,
        verify_package,
    )
    from driftline.models.pyfunc import PythonModel, PythonModelContext
    from driftline.models.signature import ColSpec, Signature, TensorSpec, infer_signature
    from driftline.models.uri import register_uri_resolver

__all__ = [
    "ColSpec",
    "LinearPredictor",
    "LoadedModel",
    "ModelCache",
    "ModelInfo",
    "NumericRows",
    "PythonModel",
    "PythonModelContext",
    "Signature",
    "TensorSpec",
    "autolog",
    "infer_signature",
    "load",
    "load_model_folder",
    "log_model",
    "read_model_info",
    "register_uri_resolver",
    "save_model",
    "verify_package",
]

# Imported on first use: declaring the stage (or importing the registry) stays cheap.
__getattr__ = lazy_exports(
    __name__,
    {
        # The function keeps its name over its submodule's (see driftline.core.lazy).
        "autolog": "driftline.models.autolog",
        "ModelCache": "driftline.models.cache",
        "LoadedModel": "driftline.models.loaded",
        "ModelInfo": "driftline.models.models",
        **dict.fromkeys(("LinearPredictor", "NumericRows"), "driftline.models.flavors.linear"),
        **dict.fromkeys(
            ("load_model_folder", "read_model_info", "save_model", "verify_package"),
            "driftline.models.package",
        ),
        **dict.fromkeys(("PythonModel", "PythonModelContext"), "driftline.models.pyfunc"),
        **dict.fromkeys(
            ("ColSpec", "Signature", "TensorSpec", "infer_signature"), "driftline.models.signature"
        ),
        "register_uri_resolver": "driftline.models.uri",
    },
)


def log_model(
    model: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    signature: Signature | None = None,
    requirements: Sequence[str] | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    artifacts: Mapping[str, str | Path] | None = None,
) -> ModelInfo:
    """Package ``model`` and log it to the active run under the artifact folder ``name``.

    Args:
        model: A supported model (see the module docstring) or a :class:`PythonModel`.
        name: The artifact folder inside the run; load it back as ``runs:/<run id>/<name>``.
        input_example: A few input rows; the signature is inferred from them and from
            the model's output on them.
        signature: An explicit signature instead of the inferred one.
        requirements: Extra pip requirement lines.
        metadata: JSON values kept with the model.
        artifacts: Name -> local file or folder packaged with the model.

    Returns:
        The :class:`ModelInfo`, with ``uri`` ``runs:/<run id>/<name>`` and ``run_id``.

    Raises:
        InvalidArgumentError: No run is active, or no flavor packages ``model``.
        AlreadyExistsError: The run already holds artifacts under ``name``.
    """
    from driftline.core.artifacts import validate_artifact_path
    from driftline.errors import AlreadyExistsError, InvalidArgumentError
    from driftline.models.package import save_model
    from driftline.models.uri import run_uri
    from driftline.tracking import current_run

    run = current_run()
    if run is None:
        raise InvalidArgumentError(
            "log_model needs an active run: wrap it in `with dl.start_run():`, or write a "
            "folder with dl.models.save_model(model, path)"
        )
    name = validate_artifact_path(name)
    if run.service.list_artifacts(run.id, name):
        raise AlreadyExistsError(
            f"Run {run.id} already holds artifacts under {name!r}; log the model under another name"
        )
    with tempfile.TemporaryDirectory(prefix="driftline-model-") as tmp:
        folder = Path(tmp) / "package"
        info = save_model(
            model,
            folder,
            input_example=input_example,
            signature=signature,
            requirements=requirements,
            metadata=metadata,
            artifacts=artifacts,
            run_id=run.id,
        )
        run.service.log_artifacts(run.id, folder, artifact_path=name)
    return replace(info, uri=run_uri(run.id, name), run_id=run.id)


def load(uri: str | Path) -> LoadedModel:
    """Load a model from a URI, verified file by file before anything is deserialized.

    Args:
        uri: ``runs:/<run id>/<path>``, ``models:/<name>/<version>``,
            ``models:/<name>@<alias>`` (once the registry is imported), or a local
            package folder.

    Raises:
        NotFoundError: Nothing is stored there.
        IntegrityError: A file does not match the manifest; nothing was loaded.
        InvalidArgumentError: An unknown URI scheme (the message lists the known ones).
    """
    from driftline.errors import IntegrityError
    from driftline.models.package import load_model_folder
    from driftline.models.uri import parse_run_uri, parse_uri, resolve

    text = str(uri)
    scheme, _ = parse_uri(text)
    scratch = Path(tempfile.mkdtemp(prefix="driftline-load-"))
    try:
        folder = resolve(text, scratch)
        try:
            model = load_model_folder(folder)
        except IntegrityError as exc:
            if folder.parent.name == "models" and folder.parent.parent.name == "cache":
                raise IntegrityError(
                    f"{exc} This is the workspace's cached copy: delete {folder} to download "
                    "a fresh verified one."
                ) from None
            raise
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if folder.absolute().is_relative_to(scratch):
        # The package lives in the scratch folder: keep it for as long as the model lives.
        weakref.finalize(model, shutil.rmtree, scratch, True)
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    if scheme not in (None, "file"):
        run_id = parse_run_uri(text)[0] if scheme == "runs" else model.info.run_id
        model.info = replace(model.info, uri=text, run_id=run_id)
    return model
