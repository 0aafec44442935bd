"""Models benchmark: the per-call cost of ``LoadedModel.predict`` next to the raw model's.

Usage::

    python bench/models.py            # full run: about 1.5 minutes on 2 cores
    python bench/models.py --quick    # fewer calls: about 40 s (mostly imports and training)
    python bench/models.py --json     # machine-readable results on stdout

For a scikit-learn ``LogisticRegression`` and a ``RandomForestClassifier`` (100 trees)
trained on the breast-cancer table (30 float columns, bundled with scikit-learn), it
logs each model with ``dl.models.log_model(..., input_example=X.head(5))`` in a
temporary workspace, loads it back with ``dl.models.load("runs:/<id>/model")``, and
times, per call and interleaved in rounds so both see the same machine load:

1. ``model.predict(row)``: the raw estimator on a one-row DataFrame;
2. ``loaded.predict(row)``: the same row through driftline (signature check + predict);
3. ``loaded.predict([record])``: one record dict (the conversion path; no target);
4. MLflow's ``pyfunc.load_model(...).predict(row)`` on the same row, when MLflow is
   installed (saved with ``mlflow.sklearn.save_model`` and an inferred signature).

The table shows medians in microseconds and the ratio driftline / raw (target <= 1.5x).
Predictions are checked to be equal to the raw model's.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.5


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def time_calls(
    functions: dict[str, Callable[[], Any]], rounds: int, per_round: int
) -> dict[str, list[float]]:
    """Per-call seconds of each function, interleaved: each round runs every function in turn."""
    samples: dict[str, list[float]] = {name: [] for name in functions}
    clock = time.perf_counter
    for _ in range(rounds):
        for name, function in functions.items():
            out = samples[name]
            for _ in range(per_round):
                began = clock()
                function()
                out.append(clock() - began)
    return samples


def summarize(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_us": statistics.median(ordered) * 1e6,
        "p90_us": ordered[int(len(ordered) * 0.9)] * 1e6,
        "calls": len(ordered),
    }


def mlflow_predictor(model: Any, x: Any, root: Path) -> Callable[[Any], Any] | None:
    """An MLflow pyfunc model of ``model`` (None when MLflow is not installed)."""
    try:
        import mlflow.pyfunc
        import mlflow.sklearn
        from mlflow.models import infer_signature
    except ImportError:
        return None
    path = root / f"mlflow-{type(model).__name__}"
    options: dict[str, Any] = {}
    if "skops_trusted_types" in inspect.signature(mlflow.sklearn.save_model).parameters:
        import skops.io

        # Recent MLflow saves with skops too, and wants the non-default types named.
        options["skops_trusted_types"] = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        signature = infer_signature(x.head(5), model.predict(x.head(5)))
        mlflow.sklearn.save_model(
            model, str(path), signature=signature, pip_requirements=[], **options
        )
        loaded = mlflow.pyfunc.load_model(str(path))
    return loaded.predict  # type: ignore[no-any-return]


def bench_model(
    label: str, model: Any, x: Any, root: Path, rounds: int, per_round: int
) -> dict[str, Any]:
    import numpy as np

    import driftline as dl

    with dl.start_run(experiment="bench-models", name=label) as run:
        dl.models.log_model(model, "model", input_example=x.head(5))
    loaded = dl.models.load(f"runs:/{run.id}/model")
    row = x.iloc[[7]]
    record = row.to_dict("records")
    expected = model.predict(row)
    assert np.array_equal(loaded.predict(row), expected), "driftline predicted differently"
    assert np.array_equal(loaded.predict(record), expected), "records predicted differently"
    functions: dict[str, Callable[[], Any]] = {
        "raw": lambda: model.predict(row),
        "driftline": lambda: loaded.predict(row),
        "driftline_record": lambda: loaded.predict(record),
    }
    mlflow_predict = mlflow_predictor(model, x, root)
    if mlflow_predict is not None:
        assert np.array_equal(np.asarray(mlflow_predict(row)), expected)
        functions["mlflow"] = lambda: mlflow_predict(row)
    for function in functions.values():  # warm up caches and lazy imports
        for _ in range(20):
            function()
    samples = time_calls(functions, rounds, per_round)
    result: dict[str, Any] = {name: summarize(values) for name, values in samples.items()}
    raw = result["raw"]["median_us"]
    result["ratio"] = result["driftline"]["median_us"] / raw
    result["overhead_us"] = result["driftline"]["median_us"] - raw
    if "mlflow" in result:
        result["mlflow_ratio"] = result["mlflow"]["median_us"] / raw
    result["status"] = "PASS" if result["ratio"] <= TARGET_RATIO else "MISS"
    return result


def print_table(figures: dict[str, Any]) -> None:
    header = (
        f"driftline models benchmark ({figures['mode']}, {os.cpu_count()} cores, "
        f"{figures['elapsed_s']:.0f} s): median per call of predict on one row"
    )
    print(header)
    columns = ("model", "raw", "driftline", "ratio", "target", "", "records", "mlflow", "ratio")
    print("  ".join(f"{c:>12}" if i else f"{c:<20}" for i, c in enumerate(columns)))
    for label, result in figures["models"].items():
        mlflow = result.get("mlflow")
        cells = (
            label,
            f"{result['raw']['median_us']:,.0f} us",
            f"{result['driftline']['median_us']:,.0f} us",
            f"{result['ratio']:.3f}x",
            f"<= {TARGET_RATIO}x",
            result["status"],
            f"{result['driftline_record']['median_us']:,.0f} us",
            f"{mlflow['median_us']:,.0f} us" if mlflow else "n/a",
            f"{result['mlflow_ratio']:.2f}x" if mlflow else "",
        )
        print("  ".join(f"{c:>12}" if i else f"{c:<20}" for i, c in enumerate(cells)))
    for text in figures["notes"]:
        print(f"note: {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls: about 40 s")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    rounds, per_round, forest_rounds = (10, 50, 4) if args.quick else (30, 100, 8)

    began = time.perf_counter()
    progress("importing scikit-learn and driftline")
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    import driftline as dl
    import driftline.models
    from driftline import _fluent

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    root = Path(tempfile.mkdtemp(prefix="driftline-bench-models-"))
    figures: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "python": platform.python_version(),
        "models": {},
        "notes": [],
    }
    try:
        dl.configure(home=root / ".driftline", capture_environment=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter
            logistic = LogisticRegression(max_iter=5000).fit(x, y)
        forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y)
        for label, model, n_rounds in (
            ("LogisticRegression", logistic, rounds),
            ("RandomForest(100)", forest, forest_rounds),
        ):
            progress(f"{label}: {n_rounds} rounds x {per_round} calls per function")
            figures["models"][label] = bench_model(label, model, x, root, n_rounds, per_round)
        if "mlflow" not in next(iter(figures["models"].values())):
            figures["notes"].append("MLflow is not installed: no comparison (pip install mlflow)")
    finally:
        _fluent._at_exit()
        shutil.rmtree(root, ignore_errors=True)
    figures["elapsed_s"] = time.perf_counter() - began
    passed = all(r["status"] == "PASS" for r in figures["models"].values())
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
