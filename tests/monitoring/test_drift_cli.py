"""``driftline drift``: the score table, JSON, the HTML report, and the exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from drift_frames import mixed

from driftline.cli import main


def run(capsys: Any, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_drift_exits_0_without_and_1_with_dataset_drift(tmp_path: Path, capsys: Any) -> None:
    pq.write_table(mixed(5_000, seed=1), tmp_path / "ref.parquet")
    pq.write_table(mixed(2_000, seed=2), tmp_path / "same.parquet")
    moved = mixed(2_000, seed=3)
    for name in moved.column_names[:12]:
        i = moved.column_names.index(name)
        moved = moved.set_column(i, name, pa.array(moved.column(name).to_numpy() * 2 + 3))
    pq.write_table(moved, tmp_path / "moved.parquet")

    code, out, err = run(capsys, "drift", "ref.parquet", "same.parquet")
    assert code == 0, err
    assert "no dataset drift" in out
    for header in ("column", "method", "score", "threshold", "p-value", "verdict"):
        assert header in out
    assert "wasserstein" in out
    assert "jensen_shannon" in out

    code, out, _ = run(
        capsys,
        "drift",
        "ref.parquet",
        "moved.parquet",
        "--html",
        "d.html",
        "--columns",
        "n00,n01,c_tail",
    )
    assert code == 1
    assert "DATASET DRIFT" in out
    html = (tmp_path / "d.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "<svg" in html

    code, out, _ = run(capsys, "drift", "ref.parquet", "moved.parquet", "--json")
    assert code == 1
    rep = json.loads(out)
    assert rep["drifted"] is True
    assert rep["columns"][0]["column"] == "n00"


def test_a_bad_argument_is_a_one_line_error(tmp_path: Path, capsys: Any) -> None:
    pq.write_table(mixed(500, seed=1), tmp_path / "ref.parquet")
    code, _, err = run(capsys, "drift", "ref.parquet", "ref.parquet", "--columns", "nope")
    assert code == 1
    assert "InvalidArgumentError" in err
    assert "nope" in err
