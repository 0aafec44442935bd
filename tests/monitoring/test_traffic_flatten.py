"""The prediction log read as one row per predicted row: shapes of outputs, the cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from traffic_log import failed_request, write_log

from driftline.errors import InvalidArgumentError
from driftline.monitoring._traffic import log_files, log_root, traffic
from driftline.monitoring.windows import parse_duration, window_bounds
from driftline.serving.predlog import PredictionLog, prediction_root

T0 = datetime(2025, 5, 1, tzinfo=UTC)


def test_the_log_root_is_where_serving_writes(tmp_path: Path) -> None:
    for artifacts in (str(tmp_path / "artifacts"), "file:///srv/a", "s3://bucket/x"):
        assert log_root(tmp_path, artifacts) == prediction_root(tmp_path, artifacts)


def test_multi_row_requests_become_rows_in_order(tmp_path: Path) -> None:
    root = str(tmp_path / "log")
    frame = pd.DataFrame({"x": np.arange(7.0), "c": list("abcdefg")})
    ids = write_log(root, "d", T0, frame, np.arange(7.0) * 10, rows_per_request=3)
    failed_request(root, "d", T0, "failed")
    rows = traffic(root, None, "d", T0, T0 + timedelta(days=1)).to_pandas()
    assert ids == ["r0", "r1", "r2"]
    assert rows["request_id"].tolist() == ["r0"] * 3 + ["r1"] * 3 + ["r2"]
    assert rows["row"].tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert rows["x"].tolist() == list(np.arange(7.0))
    assert rows["c"].tolist() == list("abcdefg")
    assert rows["prediction"].tolist() == list(np.arange(7.0) * 10)


def test_named_outputs_and_class_probabilities(tmp_path: Path) -> None:
    root = str(tmp_path / "log")
    log = PredictionLog(root, "named")
    out = {"label": np.array(["yes", "no"]), "score": np.array([0.9, 0.2])}
    log.append(("n1", "m", 1, "stable", T0, "predict", {"x": [1.0, 2.0]}, out, 2, 1.0, 200, None))
    log.close()
    rows = traffic(root, None, "named", T0, T0 + timedelta(hours=1)).to_pylist()
    assert [(r["prediction.label"], r["prediction.score"], r["x"]) for r in rows] == [
        ("yes", 0.9, 1.0),
        ("no", 0.2, 2.0),
    ]
    write_log(root, "proba", T0, pd.DataFrame({"x": [1.0]}), np.array([[0.1, 0.7, 0.2]]))
    (row,) = traffic(root, None, "proba", T0, T0 + timedelta(hours=1)).to_pylist()
    assert (row["prediction_0"], row["prediction_1"], row["prediction_2"]) == (0.1, 0.7, 0.2)


def test_each_log_file_is_flattened_once_and_its_cache_follows_it(tmp_path: Path) -> None:
    root, cache = str(tmp_path / "log"), tmp_path / "cache"
    write_log(root, "d", T0, pd.DataFrame({"x": [1.0, 2.0]}), np.ones(2))
    write_log(root, "d", T0 + timedelta(days=1), pd.DataFrame({"x": [3.0]}), np.ones(1), prefix="s")
    span = (T0, T0 + timedelta(days=2))
    assert traffic(root, cache, "d", *span).num_rows == 3
    cached = sorted(cache.rglob("*.parquet"))
    assert [p.name for p in cached] == sorted(Path(f).name for _, f in log_files(root, "d"))
    stamps = [p.stat().st_mtime_ns for p in cached]
    assert traffic(root, cache, "d", *span)["x"].to_pylist() == [1.0, 2.0, 3.0]
    assert [p.stat().st_mtime_ns for p in cached] == stamps  # read, not rewritten
    # Retention deletes a day of the log: its cached rows go too.
    Path(log_files(root, "d")[0][1]).unlink()
    assert traffic(root, cache, "d", *span)["x"].to_pylist() == [3.0]
    assert len(list(cache.rglob("*.parquet"))) == 1


def test_durations_and_windows() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(days=14)
    for bad in ("soon", "1y", "-1d", ""):
        with pytest.raises(InvalidArgumentError, match="duration"):
            parse_duration(bad)
    bounds = window_bounds("1d", T0 + timedelta(hours=5), T0 + timedelta(days=2, hours=1))
    assert [(s.day, e.day, e.hour) for s, e in bounds] == [(1, 2, 0), (2, 3, 0), (3, 3, 1)]
    with pytest.raises(InvalidArgumentError, match="windows"):
        window_bounds("1s", T0, T0 + timedelta(days=30))
    with pytest.raises(InvalidArgumentError, match="before"):
        window_bounds("1d", T0, T0)
