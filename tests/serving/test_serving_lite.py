"""Serving a linear scikit-learn model through its numpy twin: the same answers, the
same 400s and the same prediction-log rows as the estimator, in a worker that never
imports scikit-learn or pandas."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from driftline.models import load_model_folder, save_model
from driftline.models.flavors.linear import LinearPredictor, NumericRows
from driftline.serving.batching import _concat, _split, predict_one
from driftline.serving.payloads import InputShaper, decode_invocations, decode_predict, jsonable
from driftline.serving.predlog import _inputs_json

try:  # `python -m pytest` from the repository root, as CI runs it
    from tests.conftest import reset_default_workspace
    from tests.serving.conftest import ServeProcess
except ImportError:  # pragma: no cover - only tests/ on sys.path
    from conftest import reset_default_workspace  # type: ignore[no-redef]
    from serving.conftest import ServeProcess  # type: ignore[no-redef]

FEATURES = ["a", "b", "c", "d", "e", "g"]


def _training(seed: int = 4) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(400, len(FEATURES))), columns=FEATURES)
    y = np.digitize(x["a"] - x["c"] + 0.3 * x["g"], [-0.8, 0.1, 0.9])  # four classes
    return x, y


def _records(n: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [dict(zip(FEATURES, row, strict=True)) for row in rng.normal(size=(n, 6)).tolist()]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression

    x, y = _training()
    folder = tmp_path_factory.mktemp("lite") / "lr"
    save_model(LogisticRegression(max_iter=500).fit(x, y), folder, input_example=x.head(3))
    lite, full = load_model_folder(folder, lite=True), load_model_folder(folder)
    assert isinstance(lite.raw, LinearPredictor)
    return lite, full


def test_lite_and_full_answer_and_log_alike(models: tuple[Any, Any]) -> None:
    lite, full = models
    rows_shaper, frame_shaper = InputShaper(lite.signature, rows=True), InputShaper(full.signature)
    for seed in range(20):
        records = _records(1 + seed % 7, seed)
        bodies = [
            ("predict", {"inputs": records}),
            ("predict", {"inputs": {f: [r[f] for r in records] for f in FEATURES}}),
            ("invocations", {"dataframe_split": {
                "columns": FEATURES, "data": [[r[f] for f in FEATURES] for r in records]}}),
        ]  # fmt: skip
        for route, body in bodies:
            decode = decode_predict if route == "predict" else decode_invocations
            as_rows, as_frame = decode(body, rows_shaper), decode(body, frame_shaper)
            if route == "invocations":
                (as_rows, _), (as_frame, _) = as_rows, as_frame
            assert isinstance(as_rows, NumericRows)
            assert isinstance(as_frame, pd.DataFrame)
            got, expected = predict_one(lite, as_rows), predict_one(full, as_frame)
            assert jsonable(got) == jsonable(expected)
            # A variant loaded in full (a canary, a shadow) takes the rows shaped for the
            # stable twin as a dict of columns.
            assert jsonable(predict_one(full, as_rows)) == jsonable(expected)
            assert _inputs_json(as_rows) == _inputs_json(as_frame)


def test_micro_batches_of_rows_split_back_per_request(models: tuple[Any, Any]) -> None:
    lite, full = models
    shaper = InputShaper(lite.signature, rows=True)
    parts = [decode_predict({"inputs": _records(n, n)}, shaper) for n in (1, 3, 2)]
    batch = _concat(parts)
    assert isinstance(batch, NumericRows)
    assert batch.rows == 6
    answers = _split(predict_one(lite, batch), [1, 3, 2])
    for part, answer in zip(parts, answers, strict=True):
        expected = full.predict(pd.DataFrame(part.array, columns=FEATURES))
        assert answer.tolist() == expected.tolist()


@pytest.fixture(scope="module")
def lite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`driftline serve lin@champion` on a LogisticRegression logged with an example."""
    from sklearn.linear_model import LogisticRegression

    import driftline as dl

    home = tmp_path_factory.mktemp("lite-serve") / ".driftline"
    dl.configure(home=home, capture_environment=False)
    x, y = _training()
    model = LogisticRegression(max_iter=500).fit(x, y)
    with dl.start_run(experiment="lite") as run:
        dl.models.log_model(model, "model", input_example=x.head(3))
    version = dl.register_model(f"runs:/{run.id}/model", "lin")
    dl.registry.set_alias("lin", "champion", version.version)
    dl.get_workspace().close()
    reset_default_workspace()
    proc = ServeProcess(home, "lin@champion").wait_ready()
    try:
        yield {"proc": proc, "model": model, "home": home}
    finally:
        proc.stop()


def _mapped_libraries(pid: int) -> set[str]:
    """Top-level packages whose files a process has mapped (imported extension modules)."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split()[-1] if len(line.split()) >= 6 else ""
        if "site-packages/" in path:
            found.add(path.split("site-packages/", 1)[1].split("/", 1)[0])
    return found


def test_the_worker_predicts_without_sklearn_or_pandas(lite_server: dict[str, Any]) -> None:
    proc, model = lite_server["proc"], lite_server["model"]
    sent = []
    for seed in range(30):
        records = _records(1 + seed % 4, 100 + seed)
        r = httpx.post(f"{proc.url}/predict", json={"inputs": records}, timeout=10)
        assert r.status_code == 200, r.text
        expected = model.predict(pd.DataFrame(records, columns=FEATURES)).tolist()
        assert r.json()["predictions"] == expected
        sent.append((r.json()["request_id"], records, expected))
    split = {"dataframe_split": {"columns": FEATURES, "data": [list(sent[0][1][0].values())]}}
    r = httpx.post(f"{proc.url}/invocations", json=split, timeout=10)
    assert r.json() == {"predictions": sent[0][2][:1]}
    loaded = _mapped_libraries(proc.process.pid)
    assert "numpy" in loaded  # the check sees the worker's libraries
    assert not loaded & {"sklearn", "scikit_learn.libs", "pandas", "scipy", "scipy.libs"}, loaded

    # A bad input still gets the full check's 400 naming the column.
    bad = {"inputs": [{**sent[0][1][0], "c": "high"}]}
    r = httpx.post(f"{proc.url}/predict", json=bad, timeout=10)
    assert r.status_code == 400
    assert "column 'c' expects type double" in r.json()["error"]["message"]

    # Every answered request is in the prediction log, inputs as columns, as for a frame.
    from driftline.serving.predlog import prediction_root, read_predictions

    root = prediction_root(lite_server["home"], str(lite_server["home"] / "artifacts"))
    wanted = {rid: (records, expected) for rid, records, expected in sent}
    deadline = time.monotonic() + 30
    logged: dict[str, Any] = {}
    while time.monotonic() < deadline and not wanted.keys() <= logged.keys():
        logged = {row["request_id"]: row for row in read_predictions(root, "lin").to_pylist()}
        time.sleep(0.05)
    missing = [rid for rid in wanted if rid not in logged]
    assert not missing, (
        f"{len(missing)} of {len(wanted)} answered requests not in the log after 30 s; "
        f"the server said: {proc.log.read_text()[-3000:]}"
    )
    for rid, (records, expected) in wanted.items():
        row = logged[rid]
        assert json.loads(row["inputs"]) == {f: [r[f] for r in records] for f in FEATURES}
        assert json.loads(row["outputs"]) == expected
        assert row["n_rows"] == len(records)
        assert row["status"] == 200
        assert row["model_version"] == 1
        assert row["variant"] == "stable"


def test_a_worker_hands_the_gil_over_in_short_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app a uvicorn worker builds shortens the GIL switch interval, so the log
    writer's slices of Python work do not add milliseconds to requests in flight."""
    import sys

    from driftline.serving import app as serving_app
    from driftline.serving.models import ModelTarget, ServingOptions

    options = ServingOptions(target=ModelTarget.parse("lin@champion"))
    monkeypatch.setenv(serving_app.OPTIONS_ENV, options.to_json())
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "home"))
    before = sys.getswitchinterval()
    try:
        serving_app.create_app_from_env()
        assert sys.getswitchinterval() == pytest.approx(serving_app.WORKER_SWITCH_INTERVAL)
        assert before > serving_app.WORKER_SWITCH_INTERVAL
    finally:
        sys.setswitchinterval(before)
