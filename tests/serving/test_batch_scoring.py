"""`driftline predict`: a file or a dataset version scored in chunks, recorded as a run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.serving.conftest import FEATURES, reset_default_workspace

pytestmark = pytest.mark.slow


def test_predict_scores_a_file_and_a_dataset_version(
    sqlite_home: dict[str, Any], tmp_path: Path
) -> None:
    import pandas as pd

    import driftline as dl

    x: pd.DataFrame = sqlite_home["x"]
    source = tmp_path / "customers.parquet"
    x.to_parquet(source)
    dl.configure(home=sqlite_home["home"])
    try:
        dl.data.commit("customers", x)
    finally:
        reset_default_workspace()
    home = str(sqlite_home["home"])
    for given in (str(source), "customers@1"):
        out = tmp_path / f"scores-{given.replace('@', '-').replace('/', '_')}.parquet"
        done = subprocess.run(
            [sys.executable, "-m", "driftline.cli", "--home", home, "predict",
             "models:/churn/2", "--input", given, "--output", str(out),
             "--chunk-rows", "64", "--json"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert (summary["model"], summary["rows"]) == ("churn/2", len(x))
        scores = pd.read_parquet(out)
        assert list(scores.columns) == [*FEATURES, "prediction"]
        assert len(scores) == len(x)
        dl.configure(home=sqlite_home["home"])
        try:
            run = dl.get_run(summary["run_id"])
            assert run.params["model_version"] == "2"
            assert run.tags["driftline.model_version"] == "churn/2"
            assert run.metrics["rows"] == len(x)
        finally:
            reset_default_workspace()
