"""Fitted references are stored once, found by name and by data, reused, and kept by gc."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from drift_frames import mixed

import driftline as dl
from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.gc import collect_garbage
from driftline.workspace import Workspace


@pytest.fixture
def ws(configure_default: Callable[..., Workspace], tmp_path: Path) -> Workspace:
    workspace = configure_default(async_logging=False)
    pq.write_table(mixed(5_000, seed=1), tmp_path / "train.parquet")
    dl.data.commit("customers", tmp_path / "train.parquet")
    return workspace


def test_a_dataset_version_is_fitted_once_and_reused(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = dl.monitoring.fit_reference("customers@1", name="churn")
    assert ref.source == "customers@1"
    assert ref.rows == 5_000
    import driftline.monitoring.service as service

    def no_refit(*args: object, **kwargs: object) -> None:
        raise AssertionError("refitted a stored reference")

    monkeypatch.setattr(service, "fit", no_refit)
    assert dl.monitoring.fit_reference("customers@1", name="churn") == ref
    assert dl.monitoring.fit_reference("customers@1", name="other") == ref  # same object
    records = dl.monitoring.list_references()
    assert [r.name for r in records] == ["other", "churn"]
    assert records[0].digest == records[1].digest
    assert dl.monitoring.get_reference("churn") == ref
    rep = dl.monitoring.drift(reference="customers@1", current=mixed(1_000, seed=2))
    assert rep.reference == "customers@1"
    assert not rep.drifted


def test_drift_against_a_version_stores_its_reference(ws: Workspace) -> None:
    rep = dl.monitoring.drift(reference="customers", current=mixed(1_000, seed=3, shift=1))
    assert rep.drifted_columns == ["n00"]
    (record,) = dl.monitoring.list_references()
    assert (record.name, record.source) == ("customers@1", "customers@1")


def test_a_missing_reference_says_how_to_fit_one(ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match="fit_reference"):
        dl.monitoring.get_reference("nope")
    with pytest.raises(InvalidArgumentError, match="name="):
        dl.monitoring.fit_reference(mixed(200, seed=1))
    with pytest.raises(NotFoundError):
        dl.monitoring.drift(reference="customers@9", current=mixed(200, seed=1))


def test_files_are_known_by_their_contents(ws: Workspace, tmp_path: Path) -> None:
    first = dl.monitoring.fit_reference(str(tmp_path / "train.parquet"), name="file")
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "t.parquet").write_bytes((tmp_path / "train.parquet").read_bytes())
    again = dl.monitoring.fit_reference(str(tmp_path / "copy" / "t.parquet"), name="copy")
    assert dataclasses.replace(again, source=first.source) == first
    assert len({r.digest for r in dl.monitoring.list_references()}) == 1


def test_gc_keeps_stored_references(ws: Workspace) -> None:
    dl.monitoring.fit_reference("customers@1", name="churn")
    (record,) = dl.monitoring.list_references()
    result = collect_garbage(ws, dry_run=True, grace_seconds=0)
    assert record.digest not in result.unreferenced
    assert dl.monitoring.get_reference("churn").rows == 5_000
