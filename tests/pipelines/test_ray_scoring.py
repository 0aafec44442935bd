"""`driftline predict --executor ray`: batch scoring on Ray Data gives the same Parquet
output as the local path, for a file and a dataset version, in input order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import driftline as dl
from driftline.errors import InvalidArgumentError

pytest.importorskip("sklearn")


@pytest.fixture
def churn(ws: Any) -> Any:
    """A registered sklearn model and a 1000-row input, as a file and a dataset version."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(1000, 3)), columns=["a", "b", "c"])
    y = (x["a"] + x["b"] > 0).astype(int)
    with dl.start_run(experiment="train") as run:
        dl.models.log_model(LogisticRegression().fit(x, y), "model", input_example=x.head(3))
    dl.register_model(f"runs:/{run.id}/model", "churn")
    dl.data.commit("customers", x)
    return x


def test_ray_scoring_matches_the_local_path(
    ray_local: Any, churn: Any, ws: Any, tmp_path: Path
) -> None:
    import pandas as pd

    source = tmp_path / "customers.parquet"
    churn.to_parquet(source)
    for given in (str(source), "customers@1"):
        local = dl.serving.score("churn/1", given, tmp_path / "local.parquet", chunk_rows=128)
        on_ray = dl.serving.score(
            "churn/1", given, tmp_path / "ray.parquet", chunk_rows=128, executor="ray"
        )
        assert on_ray.rows == local.rows == len(churn)
        expected = pd.read_parquet(local.output)
        got = pd.read_parquet(on_ray.output)
        assert list(got.columns) == ["a", "b", "c", "prediction"]
        pd.testing.assert_frame_equal(got, expected)
        assert ws.tracking.get_run(on_ray.run_id).params["executor"] == "ray"


def test_predict_cli_on_ray(ray_local: Any, churn: Any, ws: Any, tmp_path: Path) -> None:
    import pandas as pd

    source = tmp_path / "customers.parquet"
    churn.to_parquet(source)
    out = tmp_path / "scores.parquet"
    # The CLI process joins this session's Ray (one local Ray per test session).
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env["RAY_ADDRESS"] = ray_local.get_runtime_context().gcs_address
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "--uri", ws.settings.uri,
         "--artifact-root", ws.settings.artifact_root, "predict", "churn/1",
         "--input", str(source), "--output", str(out), "--executor", "ray", "--json"],
        capture_output=True, text=True, timeout=300, check=False, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["rows"] == len(churn)
    local = dl.serving.score("churn/1", str(source), tmp_path / "local.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(local.output))


def test_unknown_scoring_executor_is_refused(churn: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="Unknown executor 'dask'; known: 'local'"):
        dl.serving.score("churn/1", "customers@1", tmp_path / "x.parquet", executor="dask")
