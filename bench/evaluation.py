"""Evaluation benchmark: ``compare_models`` with paired bootstrap CIs on 10,000 rows.

Usage::

    python bench/evaluation.py            # 10,000 rows, 1,000 rounds: about 20 s
    python bench/evaluation.py --quick    # 2,000 rows, 200 rounds
    python bench/evaluation.py --json     # machine-readable results on stdout

It trains a ``LogisticRegression`` and a ``RandomForestClassifier`` (50 trees) on a
synthetic binary task (``make_classification``, 20 features), logs and registers both
in a temporary workspace, and times on the held-out 10,000 rows:

1. **compare, after loading**: what ``dl.compare_models`` does once the two models are
   loaded: each model predicts once, then 1,000 paired bootstrap rounds of every metric
   (target < 1 s, median of 3; also the process's CPU time, which other load on a
   shared machine does not inflate);
2. **compare, end to end**: ``dl.compare_models([...], rounds=1000)`` including the
   models' loading from the registry (median of 3);
3. **former way**: one scikit-learn ``compute_metrics`` call per model per round (how
   comparisons were computed before), timed over 20 rounds and scaled to 1,000.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from _report import print_rows  # bench/_report.py: python puts bench/ on sys.path

TARGET_S = 1.0


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def median_time(function: Any, repeats: int = 3) -> float:
    """Median wall time of ``repeats`` calls."""
    return statistics.median(timed(function) for _ in range(repeats))


def timed(function: Any) -> float:
    began = time.perf_counter()
    function()
    return time.perf_counter() - began


def median_cpu(function: Any, repeats: int = 3) -> float:
    """Median CPU time of this process over ``repeats`` calls (the work itself, whatever
    else shares the machine; the comparison runs on one thread)."""
    times = []
    for _ in range(repeats):
        began = time.process_time()
        function()
        times.append(time.process_time() - began)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 rows and 200 rounds")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    rows, rounds = (2_000, 200) if args.quick else (10_000, 1_000)

    progress("importing scikit-learn and driftline")
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    import driftline as dl
    from driftline import _fluent
    from driftline.registry.evaluation import (
        Predictions,
        compare_predictions,
        compute_metrics,
        infer_task,
        predict,
    )

    x, y = make_classification(
        n_samples=rows + 2_000, n_features=20, n_informative=8, flip_y=0.05, random_state=0
    )
    frame = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(20)])
    frame["label"] = y
    train, test = frame.iloc[:2_000], frame.iloc[2_000:].reset_index(drop=True)
    features, target = test.drop(columns=["label"]), test["label"].to_numpy()
    root = Path(tempfile.mkdtemp(prefix="driftline-bench-evaluation-"))
    figures: dict[str, Any] = {"rows": rows, "rounds": rounds}
    try:
        dl.configure(home=root / ".driftline", capture_environment=False)
        refs = []
        for name, model in (
            ("logreg", LogisticRegression(max_iter=2000)),
            ("forest", RandomForestClassifier(n_estimators=50, random_state=0)),
        ):
            with warnings.catch_warnings(), dl.start_run(name=name) as run:
                warnings.simplefilter("ignore")
                model.fit(train.drop(columns=["label"]), train["label"])
                dl.models.log_model(model, "model", input_example=features.head(3))
            refs.append(dl.register_model(f"runs:/{run.id}/model", "bench-compare").uri)
        progress(f"{rows:,} rows, {rounds:,} rounds")
        task = infer_task(target)
        models = [dl.models.load(ref) for ref in refs]

        def after_loading() -> Any:
            outputs = [predict(model, features, task) for model in models]
            return compare_predictions(refs, task, target, outputs, rounds=rounds)

        after_loading()  # warm-up: lazy imports
        figures["compare_after_load_s"] = median_time(after_loading)
        figures["compare_after_load_cpu_s"] = median_cpu(after_loading)
        figures["compare_end_to_end_s"] = median_time(
            lambda: dl.compare_models(refs, data=test, target="label", rounds=rounds)
        )
        outputs = [predict(model, features, task) for model in models]
        rng = __import__("numpy").random.default_rng(0)
        sample_rounds = 20

        def former_way() -> None:
            for _ in range(sample_rounds):
                picked = rng.integers(0, len(target), len(target))
                for out in outputs:
                    part = Predictions(out.predicted[picked], out.proba[picked], out.classes)
                    compute_metrics(task, target[picked], part)

        figures["former_way_s"] = median_time(former_way, 1) * rounds / sample_rounds
        figures["status"] = "PASS" if figures["compare_after_load_s"] < TARGET_S else "MISS"
    finally:
        _fluent._at_exit()
        shutil.rmtree(root, ignore_errors=True)

    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    label = f"{rows:,} rows, {rounds:,} rounds, 2 models"
    print_rows(
        "driftline evaluation benchmark: paired bootstrap comparison",
        [
            (
                "compare_models",
                f"after loading (predict + bootstrap), {label}",
                f"{figures['compare_after_load_s']:.3f} s "
                f"(CPU {figures['compare_after_load_cpu_s']:.3f} s)",
                f"< {TARGET_S:.0f} s",
                figures["status"],
            ),
            (
                "compare_models",
                "end to end, with loading both models",
                f"{figures['compare_end_to_end_s']:.3f} s",
                "",
                "",
            ),
            (
                "compare_models",
                "former way: scikit-learn per round (20 timed, scaled)",
                f"{figures['former_way_s']:.1f} s",
                "",
                "",
            ),
        ],
        [],
        label_width=56,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
