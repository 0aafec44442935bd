"""Loading verifies every file before deserializing anything; corruption is an IntegrityError."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import driftline as dl
from driftline.core.hashing import parse_digest
from driftline.errors import IntegrityError
from driftline.models import PythonModel, load_model_folder, save_model
from driftline.models.flavors.python_model import PythonModelFlavor
from driftline.models.package import MANIFEST_FILE
from stored_objects import tamper


class Doubler(PythonModel):
    def predict(self, context: Any, model_input: Any) -> Any:
        return model_input["x"] * 2


EXAMPLE = pd.DataFrame({"x": [1.0, 2.0]})


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[Path]]:
    """``calls = arm()`` makes the flavor loader record (and refuse) any call from then on."""

    def install() -> list[Path]:
        calls: list[Path] = []

        def spy(self: Any, folder: Path, info: Any) -> Any:
            calls.append(folder)
            raise AssertionError("the model was deserialized")

        monkeypatch.setattr(PythonModelFlavor, "load", spy)
        return calls

    return install


def _flip_byte(path: Path) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)  # store objects are read-only
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _log() -> tuple[str, Any]:
    with dl.start_run():
        info = dl.models.log_model(Doubler(), "model", input_example=EXAMPLE)
    assert info.uri is not None
    return info.uri, info


def _cached(workspace: Any) -> list[Path]:
    """What the model cache holds: packages and staging folders (not its lock files)."""
    folder = workspace.settings.home / "cache" / "models"
    return [path for path in folder.iterdir() if path.name != ".locks"]


def _cache_folder(workspace: Any, uri: str) -> Path:
    dl.models.load(uri)  # the first load downloads into the cache
    folders = _cached(workspace)
    assert len(folders) == 1
    return folders[0]


def test_a_modified_file_in_a_folder_is_refused_before_loading(
    tmp_path: Path, arm: Callable[[], list[Path]]
) -> None:
    save_model(Doubler(), tmp_path / "m", input_example=EXAMPLE)
    _flip_byte(tmp_path / "m" / "python_model.pkl")
    no_load = arm()
    with pytest.raises(IntegrityError, match=r"python_model\.pkl.*corrupt"):
        load_model_folder(tmp_path / "m")
    assert no_load == []


def test_a_missing_or_unlisted_file_is_refused(
    tmp_path: Path, arm: Callable[[], list[Path]]
) -> None:
    save_model(Doubler(), tmp_path / "m", input_example=EXAMPLE)
    (tmp_path / "m" / "sneaky.pkl").write_bytes(b"x")
    no_load = arm()
    with pytest.raises(IntegrityError, match=r"does not list: sneaky\.pkl"):
        load_model_folder(tmp_path / "m")
    (tmp_path / "m" / "sneaky.pkl").unlink()
    (tmp_path / "m" / "input_example.json").unlink()
    with pytest.raises(IntegrityError, match=r"missing input_example\.json"):
        load_model_folder(tmp_path / "m")
    assert no_load == []


def test_a_corrupt_store_object_is_refused(
    model_workspace: Any, arm: Callable[[], list[Path]]
) -> None:
    uri, info = _log()
    digest = info.files["python_model.pkl"][0]
    tamper(model_workspace.content, digest)  # the model's small files are packed
    no_load = arm()
    with pytest.raises(IntegrityError, match=r"model/python_model\.pkl"):
        dl.models.load(uri)
    assert no_load == []
    assert _cached(model_workspace) == []  # no leftovers


def test_a_corrupt_cached_copy_is_refused_and_says_how_to_recover(
    model_workspace: Any, arm: Callable[[], list[Path]]
) -> None:
    uri, _ = _log()
    cached = _cache_folder(model_workspace, uri)
    _flip_byte(cached / "python_model.pkl")
    no_load = arm()
    with pytest.raises(IntegrityError, match=r"python_model\.pkl.*corrupt") as caught:
        dl.models.load(uri)
    assert "delete" in str(caught.value)
    assert no_load == []


def test_a_cached_manifest_must_hash_to_the_stored_digest(
    model_workspace: Any, arm: Callable[[], list[Path]]
) -> None:
    uri, _ = _log()
    manifest = _cache_folder(model_workspace, uri) / MANIFEST_FILE
    manifest.write_text(manifest.read_text().replace('"metadata": {}', '"metadata": {"x": 1}'))
    no_load = arm()
    with pytest.raises(IntegrityError, match=MANIFEST_FILE):
        dl.models.load(uri)
    assert no_load == []


def test_the_cache_is_keyed_by_the_manifest_digest_and_reused(
    model_workspace: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, _ = _log()
    downloads: list[str] = []
    original = model_workspace.tracking.download_artifacts

    def counting(run_id: str, path: str, dest: Any) -> Any:
        downloads.append(path)
        return original(run_id, path, dest)

    monkeypatch.setattr(model_workspace.tracking, "download_artifacts", counting)
    first = dl.models.load(uri)
    second = dl.models.load(uri)
    assert downloads == ["model"]
    assert first.path == second.path
    entries = model_workspace.tracking.list_artifacts(first.info.run_id, "model")
    manifest_digest = next(e.digest for e in entries if e.path.endswith(MANIFEST_FILE))
    assert first.path.name == parse_digest(manifest_digest)[1]
    assert second.predict({"x": [2.0]}).tolist() == [4.0]
