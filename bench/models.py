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

A second table times the registry on SQLite: resolving ``name@alias`` and moving an
alias (targets < 5 ms), and ``audit verify`` over a 100,000-entry chain (target < 2 s).
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
    result["run_id"] = run.id
    return result


REGISTRY_TARGET_MS = 5.0
AUDIT_TARGET_S = 2.0


def bench_registry(ws: Any, run_id: str, calls: int, audit_entries: int) -> dict[str, Any]:
    """Registry reads, alias moves and audit verification on the workspace's SQLite file."""
    from driftline.core.audit import GENESIS, _digest, audit_head, audit_log

    registry = ws.registry
    for _ in range(2):
        registry.register_model(f"runs:/{run_id}/model", "bench")
    registry.set_alias("bench", "champion", 1)

    def timed(fn: Callable[[], Any]) -> dict[str, float]:
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return summarize(times)

    read = timed(lambda: registry.get_version("bench@champion"))
    versions = iter(range(10**9))
    move = timed(lambda: registry.set_alias("bench", "champion", 2 - next(versions) % 2))

    # Build a long chain straight into the tables (appending 100k entries one transaction
    # at a time would only measure SQLite commits), continuing the workspace's own chain.
    with ws.database.engine.begin() as conn:
        head = conn.execute(audit_head.select()).first()
        seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
        rows = []
        for i in range(audit_entries):
            seq += 1
            row = {
                "seq": seq,
                "at": 1_700_000_000_000 + i,
                "actor": "bench",
                "action": "alias_set",
                "entity_type": "alias",
                "entity": f"m{i % 97}@prod",
                "before": '{"version":1}',
                "after": '{"version":2}',
            }
            digest = _digest(prev, row)
            rows.append({**row, "prev_hash": prev, "hash": digest})
            prev = digest
        conn.execute(audit_log.insert(), rows)
        conn.execute(audit_head.update().values(seq=seq, hash=prev))
    start = time.perf_counter()
    report = registry.verify_audit()
    verify_s = time.perf_counter() - start
    assert report.ok, report
    return {
        "get_version": read,
        "alias_move": move,
        "audit_entries": report.entries,
        "audit_verify_s": verify_s,
        "status": "PASS"
        if max(read["median_us"], move["median_us"]) / 1000 < REGISTRY_TARGET_MS
        and verify_s < AUDIT_TARGET_S
        else "MISS",
    }


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
    registry = figures.get("registry")
    if registry:
        print(
            f"registry on SQLite (target: < {REGISTRY_TARGET_MS:.0f} ms per call, audit "
            f"verify < {AUDIT_TARGET_S:.0f} s)"
        )
        for label, key in (
            ("get_version(name@alias)", "get_version"),
            ("alias move (compare-and-set)", "alias_move"),
        ):
            stats = registry[key]
            print(
                f"  {label:<30} median {stats['median_us'] / 1000:.2f} ms, "
                f"p90 {stats['p90_us'] / 1000:.2f} ms"
            )
        print(
            f"  {'audit verify':<30} {registry['audit_entries']:,} entries in "
            f"{registry['audit_verify_s']:.2f} s   {registry['status']}"
        )
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
        progress("registry: reads, alias moves, audit verify over 100,000 entries")
        figures["registry"] = bench_registry(
            _fluent.get_workspace(),
            figures["models"]["LogisticRegression"]["run_id"],
            calls=100 if args.quick else 500,
            audit_entries=100_000,
        )
        if "mlflow" not in next(iter(figures["models"].values())):
            figures["notes"].append("MLflow is not installed: no comparison (pip install mlflow)")
    finally:
        _fluent._at_exit()
        shutil.rmtree(root, ignore_errors=True)
    figures["elapsed_s"] = time.perf_counter() - began
    passed = all(r["status"] == "PASS" for r in figures["models"].values())
    passed = passed and figures["registry"]["status"] == "PASS"
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
