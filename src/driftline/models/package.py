"""Model packages: a folder of model files described by a hash-listing manifest.

::

    model/
      driftline-model.json     format version, flavor + options, library and Python
                               versions, signature, input example file, requirements,
                               metadata, and the digest + size of EVERY other file
      model.skops              the flavor's files (safe formats where one exists)
      input_example.json       the input example, as JSON
      artifacts/<name>/...     files given as artifacts={name: path}

Loading verifies every listed file against its digest and size, and refuses files the
manifest does not list, *before* any model file is deserialized: a mismatch raises
:class:`~driftline.errors.IntegrityError` naming the file, and nothing is loaded. The
manifest itself is trusted as given here; the ``runs:/`` resolver (and a registry's)
checks it against the digest the artifact store holds for it.

Example:
    >>> info = save_model(model, "out/model", input_example=X.head(5))  # doctest: +SKIP
    >>> load_model_folder("out/model").predict(X.head(2))              # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from driftline.core.artifacts import validate_artifact_path
from driftline.core.hashing import hash_file, parse_digest
from driftline.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
)
from driftline.models._enforce import as_table_or_array, build_adapter
from driftline.models._example import write_example
from driftline.models.flavors import flavor_for, get_flavor
from driftline.models.loaded import LoadedModel
from driftline.models.models import ModelInfo
from driftline.models.signature import Signature, infer_signature

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "load_model_folder",
    "read_model_info",
    "save_model",
    "verify_package",
]

MANIFEST_FILE = "driftline-model.json"
FORMAT_VERSION = 1
ARTIFACTS_DIR = "artifacts"
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def save_model(
    model: Any,
    path: str | Path,
    *,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    requirements: Sequence[str] | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    artifacts: Mapping[str, str | Path] | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Write ``model`` as a package folder at ``path`` (which must not exist, or be empty).

    Args:
        model: A scikit-learn estimator or Pipeline, a LightGBM or XGBoost model, a
            ``torch.nn.Module``, an ``onnx.ModelProto`` or a :class:`PythonModel`.
        path: The folder to create.
        input_example: A few rows (DataFrame, records, dict of columns, numpy array);
            stored as JSON, and the signature is inferred from it and the model's output.
        signature: An explicit signature (it wins over the inferred one).
        requirements: Extra pip requirement lines (a same-named one replaces the pin).
        metadata: JSON values to keep with the model.
        artifacts: Name -> local file or folder to copy into the package; a
            :class:`PythonModel` finds them in ``context.artifacts``.
        run_id: The run the package is logged to (recorded in the manifest).

    Returns:
        The package's :class:`ModelInfo`.

    Raises:
        InvalidArgumentError: No flavor packages ``model`` (the message lists them), or an
            argument is malformed.
        AlreadyExistsError: ``path`` exists and is not an empty folder.
    """
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExistsError(f"Cannot save a model to {target}: it exists and is not empty")
    flavor = flavor_for(model)
    metadata = _check_metadata(metadata)
    extra_requirements = _check_requirements(requirements)
    given_signature = _check_signature(signature)
    example = None if input_example is None else as_table_or_array(input_example)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
    staging.mkdir()
    try:
        saved = flavor.save(model, staging, example=example)
        packaged = _copy_artifacts(artifacts or {}, staging)
        example_file = write_example(example, staging) if example is not None else None
        if example is not None and example_file is None:
            warnings.warn(
                "The input example could not be stored as JSON; the model is saved without it",
                UserWarning,
                stacklevel=2,
            )
        distributions = (*saved.distributions, "driftline")
        versions = _versions(distributions)
        info = ModelInfo(
            flavor=flavor.name,
            signature=given_signature,
            library_versions=versions,
            requirements=_requirements(versions, extra_requirements),
            metadata=metadata,
            run_id=run_id,
            flavor_options=dict(saved.options),
            python_version=platform.python_version(),
            input_example_file=example_file,
            artifacts=packaged,
            format_version=FORMAT_VERSION,
        )
        if given_signature is None:
            info = replace(info, signature=_infer(flavor, model, example, staging, info))
        info = replace(info, files=_list_files(staging))
        write_manifest(info, staging)
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info


def _infer(flavor: Any, model: Any, example: Any, staging: Path, info: ModelInfo) -> Any:
    if example is None:
        return flavor.default_signature(model)
    inputs = infer_signature(example)
    try:
        output = flavor.example_predictor(model, staging, info)(build_adapter(inputs)(example))
        return infer_signature(example, output)
    except Exception as exc:
        warnings.warn(
            f"Could not run the model on the input example to infer its outputs "
            f"({type(exc).__name__}: {exc}); the signature lists inputs only",
            UserWarning,
            stacklevel=3,
        )
        return inputs


def load_model_folder(path: str | Path, *, lite: bool = False) -> LoadedModel:
    """Load a package folder, after verifying every file against its manifest.

    With ``lite``, a package that holds a verified lighter predictor (a linear
    scikit-learn model's numpy twin, see ``driftline.models.flavors.linear``) is loaded
    as that, without its model library; ``raw`` is then the stand-in. Serving uses it.

    Raises:
        NotFoundError: ``path`` holds no ``driftline-model.json``.
        IntegrityError: A file is missing, modified, or not listed; nothing was loaded.
        InvalidArgumentError: The manifest is malformed or from a newer driftline.
    """
    folder = Path(path).absolute()
    info = read_model_info(folder)
    verify_package(folder, info)
    flavor = get_flavor(info.flavor)
    stand_in = flavor.load_lite(folder, info) if lite else None
    if stand_in is not None:
        from driftline.models.flavors.linear import RowsAdapter

        return LoadedModel(
            info=info, raw=stand_in, path=folder, adapter=RowsAdapter(info.signature),
            predict=stand_in.predict,
        )  # fmt: skip
    _warn_on_version_change(info, flavor.main_distribution)
    raw = flavor.load(folder, info)
    return LoadedModel(
        info=info,
        raw=raw,
        path=folder,
        adapter=build_adapter(info.signature),
        predict=flavor.predictor(raw, info, folder),
    )


def read_model_info(path: str | Path) -> ModelInfo:
    """The :class:`ModelInfo` of a package folder (or of its manifest file), unverified."""
    manifest = Path(path)
    if manifest.is_dir():
        manifest = manifest / MANIFEST_FILE
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(
            f"{manifest.parent} is not a driftline model package: it has no {MANIFEST_FILE}"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError(f"Model manifest {manifest} is not valid JSON: {exc}") from None
    return info_from_manifest(data, where=str(manifest))


def info_from_manifest(data: Mapping[str, Any], *, where: str = "manifest") -> ModelInfo:
    """Build a :class:`ModelInfo` from a parsed manifest."""
    if not isinstance(data, Mapping):
        raise InvalidArgumentError(f"Model manifest {where} is not a JSON object")
    version = data.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise InvalidArgumentError(f"Model manifest {where} has no valid format_version")
    if version > FORMAT_VERSION:
        raise InvalidArgumentError(
            f"Model manifest {where} has format {version}; this driftline reads up to "
            f"{FORMAT_VERSION}: upgrade driftline to load it"
        )
    try:
        files = {
            validate_artifact_path(str(p)): (str(e["digest"]), int(e["size"]))
            for p, e in data["files"].items()
        }
        signature = data.get("signature")
        return ModelInfo(
            flavor=str(data["flavor"]),
            signature=None if signature is None else Signature.from_dict(signature),
            library_versions=dict(data.get("library_versions") or {}),
            requirements=tuple(data.get("requirements") or ()),
            metadata=dict(data.get("metadata") or {}),
            files=files,
            run_id=data.get("run_id"),
            flavor_options=dict(data.get("flavor_options") or {}),
            python_version=str(data.get("python_version") or ""),
            input_example_file=data.get("input_example"),
            artifacts=dict(data.get("artifacts") or {}),
            format_version=version,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, InvalidArgumentError):
            raise
        raise InvalidArgumentError(f"Model manifest {where} is malformed: {exc!r}") from None


def manifest_dict(info: ModelInfo) -> dict[str, Any]:
    """The JSON form of a :class:`ModelInfo`, as written to ``driftline-model.json``."""
    return {
        "format_version": info.format_version,
        "flavor": info.flavor,
        "flavor_options": dict(info.flavor_options),
        "library_versions": dict(info.library_versions),
        "python_version": info.python_version,
        "signature": None if info.signature is None else info.signature.to_dict(),
        "input_example": info.input_example_file,
        "requirements": list(info.requirements),
        "metadata": dict(info.metadata),
        "artifacts": dict(info.artifacts),
        "run_id": info.run_id,
        "files": {p: {"digest": d, "size": s} for p, (d, s) in sorted(info.files.items())},
    }


def write_manifest(info: ModelInfo, folder: Path) -> Path:
    """Write ``driftline-model.json`` into ``folder``."""
    path = folder / MANIFEST_FILE
    path.write_text(json.dumps(manifest_dict(info), indent=2, sort_keys=True) + "\n", "utf-8")
    return path


def verify_package(folder: str | Path, info: ModelInfo | None = None) -> ModelInfo:
    """Check every file of a package against its manifest; return the manifest.

    Raises:
        IntegrityError: A listed file is missing or its size or digest differs, or the
            folder holds a file the manifest does not list. The message names the file.
    """
    folder = Path(folder)
    info = info or read_model_info(folder)
    for relative, (digest, size) in sorted(info.files.items()):
        file = folder / relative
        if not file.is_file():
            raise IntegrityError(
                f"Model package {folder} is missing {relative}, which its manifest lists; "
                "the model was not loaded"
            )
        actual_size = file.stat().st_size
        if actual_size != size:
            raise IntegrityError(
                f"Model file {relative} in {folder} is corrupt or was modified: it has "
                f"{actual_size} bytes, the manifest says {size}; the model was not loaded"
            )
        algorithm, _ = parse_digest(digest)
        actual, _ = hash_file(file, algorithm)
        if actual != digest:
            raise IntegrityError(
                f"Model file {relative} in {folder} is corrupt or was modified: its content "
                f"hash is {actual}, the manifest says {digest}; the model was not loaded"
            )
    unlisted = sorted(set(_relative_files(folder)) - set(info.files) - {MANIFEST_FILE})
    if unlisted:
        raise IntegrityError(
            f"Model package {folder} holds files its manifest does not list: "
            f"{', '.join(unlisted[:10])}; the model was not loaded"
        )
    return info


# -- helpers ----------------------------------------------------------------------------


def _relative_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _list_files(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        relative: hash_file(folder / relative)
        for relative in _relative_files(folder)
        if relative != MANIFEST_FILE
    }


def _check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise InvalidArgumentError("metadata must be a dict with string keys")
    try:
        return dict(json.loads(json.dumps(dict(metadata), allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"metadata must hold JSON values only: {exc}") from None


def _check_requirements(requirements: Sequence[str] | str | None) -> list[str]:
    if requirements is None:
        return []
    items = [requirements] if isinstance(requirements, str) else list(requirements)
    for item in items:
        if not isinstance(item, str) or not _REQUIREMENT_NAME.match(item):
            raise InvalidArgumentError(f"Invalid requirement {item!r}: give pip requirement lines")
    return [item.strip() for item in items]


def _check_signature(signature: Signature | Mapping[str, Any] | None) -> Signature | None:
    if signature is None or isinstance(signature, Signature):
        return signature
    if isinstance(signature, Mapping):
        return Signature.from_dict(signature)
    raise InvalidArgumentError(
        f"signature must be a Signature (or its dict form), got {type(signature).__name__}"
    )


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(versions: Mapping[str, str], extra: list[str]) -> tuple[str, ...]:
    lines: dict[str, str] = {
        _normalize(d): f"{d}=={v}" for d, v in versions.items() if d != "driftline"
    }
    for line in extra:
        match = _REQUIREMENT_NAME.match(line)
        assert match is not None  # checked by _check_requirements
        lines[_normalize(match.group(1))] = line
    return tuple(lines.values())


def _versions(distributions: Sequence[str]) -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in dict.fromkeys(distributions):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def _copy_artifacts(artifacts: Mapping[str, str | Path], folder: Path) -> dict[str, str]:
    packaged = {}
    for name, source in artifacts.items():
        if not isinstance(name, str) or not _ARTIFACT_NAME.match(name) or name in (".", ".."):
            raise InvalidArgumentError(
                f"Invalid artifact name {name!r}: use 1-100 letters, digits, _ . - "
                "(not starting with '.' or '-')"
            )
        source = Path(source)
        if source.is_file():
            dest = folder / ARTIFACTS_DIR / name / source.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
        elif source.is_dir():
            dest = folder / ARTIFACTS_DIR / name
            shutil.copytree(source, dest)
        else:
            raise InvalidArgumentError(f"Artifact {name!r}: {source} does not exist")
        packaged[name] = dest.relative_to(folder).as_posix()
    return packaged


def _warn_on_version_change(info: ModelInfo, distribution: str) -> None:
    saved = info.library_versions.get(distribution)
    if not saved:
        return
    from importlib import metadata

    try:
        installed = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        raise InvalidArgumentError(
            f"This {info.flavor} model needs {distribution} (saved with {saved}): "
            f"pip install '{distribution}=={saved}'"
        ) from None
    if saved.split(".")[:2] != installed.split(".")[:2]:
        warnings.warn(
            f"The model was saved with {distribution} {saved}; {installed} is installed. "
            f"If loading or predicting fails, install {distribution}=={saved}.",
            UserWarning,
            stacklevel=3,
        )
