"""Model URIs: runs:/, local folders, resolvers registered by other stages, clear errors."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import driftline as dl
from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.models import PythonModel, read_model_info, register_uri_resolver, save_model
from driftline.models import uri as uri_module


class Identity(PythonModel):
    def predict(self, context: Any, model_input: Any) -> Any:
        return model_input


@pytest.fixture
def resolvers() -> Iterator[None]:
    """Restore the resolver table after a test registers its own."""
    saved = dict(uri_module._resolvers)
    yield
    uri_module._resolvers.clear()
    uri_module._resolvers.update(saved)


def test_unknown_schemes_list_the_known_ones() -> None:
    with pytest.raises(InvalidArgumentError, match=r"Unknown model URI scheme 'ftp'.*runs:"):
        dl.models.load("ftp://host/model")


def test_models_uris_need_no_import_of_the_registry(resolvers: None) -> None:
    """The registry declares the models: resolver; opening the workspace installs it."""
    uri_module._resolvers.pop("models", None)
    with pytest.raises(NotFoundError, match=r"No registered model 'churn'"):
        dl.models.load("models:/churn/3")
    assert "models" in uri_module.known_schemes()


def test_a_registered_resolver_serves_its_scheme(resolvers: None, tmp_path: Path) -> None:
    seen: list[tuple[str, Path]] = []

    def resolve(uri: str, scratch: Path) -> Path:
        seen.append((uri, scratch))
        save_model(Identity(), scratch / "pkg", input_example=pd.DataFrame({"a": [1]}))
        return scratch / "pkg"

    register_uri_resolver("models", resolve)
    model = dl.models.load("models:/churn@champion")
    assert seen[0][0] == "models:/churn@champion"
    assert model.info.uri == "models:/churn@champion"
    assert model.predict({"a": [5]})["a"].tolist() == [5]
    folder = model.path
    assert folder.is_dir()  # the scratch folder lives as long as the model
    del model
    gc.collect()
    assert not folder.exists()
    with pytest.raises(InvalidArgumentError, match="Invalid URI scheme"):
        register_uri_resolver("Bad Scheme", resolve)


def test_malformed_and_missing_run_uris(model_workspace: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="runs:/<run id>/<artifact path>"):
        dl.models.load("runs:/only-an-id")
    with dl.start_run() as run:
        dl.log_artifact(_text_file(model_workspace.settings.home.parent / "notes.txt"), "notes")
    with pytest.raises(NotFoundError, match="no model at 'notes'"):
        dl.models.load(f"runs:/{run.id}/notes")
    with pytest.raises(NotFoundError):
        dl.models.load(f"runs:/{run.id}/model")


def _text_file(path: Path) -> Path:
    path.write_text("hello")
    return path


def test_local_folders_load_directly(tmp_path: Path) -> None:
    info = save_model(Identity(), tmp_path / "pkg", metadata={"k": [1, 2]})
    model = dl.models.load(str(tmp_path / "pkg"))
    assert model.metadata == {"k": [1, 2]}
    assert read_model_info(tmp_path / "pkg") == info
    with pytest.raises(NotFoundError):
        dl.models.load(str(tmp_path / "nowhere"))


def test_save_model_refuses_a_non_empty_folder_and_bad_arguments(tmp_path: Path) -> None:
    save_model(Identity(), tmp_path / "pkg")
    with pytest.raises(dl.AlreadyExistsError):
        save_model(Identity(), tmp_path / "pkg")
    with pytest.raises(InvalidArgumentError, match="JSON"):
        save_model(Identity(), tmp_path / "a", metadata={"x": object()})
    with pytest.raises(InvalidArgumentError, match="artifact name"):
        save_model(Identity(), tmp_path / "b", artifacts={"../x": tmp_path / "pkg"})
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]  # no staging folder left


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("churn/4", "models:/churn/4"),
        ("churn@champion", "models:/churn@champion"),
        ("0190b2c3d4e5f60718293a4b5c6d7e8f", "runs:/0190b2c3d4e5f60718293a4b5c6d7e8f/model"),
        (
            "0190b2c3d4e5f60718293a4b5c6d7e8f/clf",
            "runs:/0190b2c3d4e5f60718293a4b5c6d7e8f/clf",
        ),
    ],
)
def test_a_ref_without_its_scheme_suggests_the_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str, meant: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFoundError) as info:
        dl.models.load(given)
    assert str(info.value).startswith(f"No model package folder at {given}. ")
    assert str(info.value).endswith(f"is loaded by its URI: {meant}")


@pytest.mark.parametrize("given", ["no/such/folder", "churn", "./churn/4x"])
def test_a_missing_folder_that_reads_like_no_ref_gets_no_suggestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFoundError) as info:
        dl.models.load(given)
    assert "URI" not in str(info.value)
