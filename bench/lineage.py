"""Lineage lookups over a large prediction log: ``dl.trace`` of a request id driftline
generated (its day's folders), of a client-chosen id (the last 7 days' folders, the
default window), and ``dl.maturity`` (which reads the model and variant of every logged
row).

    python bench/lineage.py [--quick] [--json] [--rows 1000000]

The log has ``--days`` day folders of ``--files`` Parquet files each, as the serving
stage writes them; one registered model version with a run, params and a dataset
version answers every row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

TARGETS_MS = {"trace_generated_id_ms": 500.0, "trace_client_id_ms": 1000.0, "maturity_ms": 2000.0}


def _best(fn: object, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best * 1000


def _write_log(root: str, rows: int, days: int, files: int) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from driftline.core.ids import new_id
    from driftline.serving.predlog import schema

    per_file = max(1, rows // (days * files))
    first = datetime.now(UTC) - timedelta(days=days - 1)
    last_id = ""
    for day in range(days):
        when = first + timedelta(days=day)
        folder = Path(root) / "deployment=churn" / f"date={when.date().isoformat()}"
        folder.mkdir(parents=True)
        for _ in range(files):
            ids = [new_id() for _ in range(per_file)]
            last_id = ids[per_file // 2]
            n = per_file
            table = pa.table(
                {
                    "request_id": ids,
                    "deployment": ["churn"] * n,
                    "model": ["churn"] * n,
                    "model_version": pa.array([1] * n, pa.int64()),
                    "variant": ["stable"] * n,
                    "time": pa.array([when] * n, pa.timestamp("us", tz="UTC")),
                    "endpoint": ["predict"] * n,
                    "inputs": ['{"f0":[1.0],"f1":[2.0]}'] * n,
                    "outputs": ["[0]"] * n,
                    "n_rows": pa.array([1] * n, pa.int32()),
                    "latency_ms": [1.5] * n,
                    "status": pa.array([200] * n, pa.int16()),
                    "error": pa.array([None] * n, pa.string()),
                },
                schema=schema(),
            )
            pq.write_table(table, folder / f"{new_id()}.parquet")
    return last_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--files", type=int, default=20)
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows

    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import driftline as dl

    tmp = Path(tempfile.mkdtemp(prefix="driftline-bench-lineage-"))
    os.chdir(tmp)
    dl.configure(home=tmp / ".driftline", capture_environment=False)
    frame = pd.DataFrame({"f0": [0.0, 1.0, 0.2, 0.9], "f1": [1.0, 0.0, 0.8, 0.1]})
    data = dl.data.commit("customers", frame.assign(label=[0, 1, 0, 1]))
    with dl.start_run(experiment="bench", name="fit") as run:
        dl.log_input(data)
        dl.log_params({"C": 1.0})
        model = LogisticRegression().fit(frame, [0, 1, 0, 1])
        dl.models.log_model(model, "model")
    dl.register_model(f"runs:/{run.id}/model", "churn")
    generated = _write_log(dl.serving.prediction_log_root(), rows, args.days, args.files)

    assert dl.trace(generated).versions[0].run is not None
    figures = {
        "rows": rows,
        "files": args.days * args.files,
        "trace_generated_id_ms": _best(lambda: dl.trace(generated)),
        "trace_client_id_ms": _best(
            lambda: _expect_missing(dl.trace, "a-client-chosen-id-that-is-not-there")
        ),
        "maturity_ms": _best(dl.maturity),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    from _report import print_rows

    rows_out = [
        (
            "trace",
            "generated request id (its day +-1)",
            f"{figures['trace_generated_id_ms']:.0f} ms",
            f"< {TARGETS_MS['trace_generated_id_ms']:.0f} ms",
            _status(figures, "trace_generated_id_ms"),
        ),
        (
            "trace",
            "unknown client id (last 7 days)",
            f"{figures['trace_client_id_ms']:.0f} ms",
            f"< {TARGETS_MS['trace_client_id_ms']:.0f} ms",
            _status(figures, "trace_client_id_ms"),
        ),
        (
            "maturity",
            "one model, whole log scanned",
            f"{figures['maturity_ms']:.0f} ms",
            f"< {TARGETS_MS['maturity_ms']:.0f} ms",
            _status(figures, "maturity_ms"),
        ),
    ]
    print_rows(
        f"Lineage over a prediction log of {rows:,} rows in {figures['files']} files",
        rows_out,
        ["best of 3 rounds; the log is on the local disk"],
    )
    return 0


def _expect_missing(trace: object, request_id: str) -> None:
    from driftline.errors import NotFoundError

    try:
        trace(request_id)  # type: ignore[operator]
    except NotFoundError:
        return
    raise AssertionError("an unknown request id was found")


def _status(figures: dict[str, float], key: str) -> str:
    return "PASS" if figures[key] < TARGETS_MS[key] else "MISS"


if __name__ == "__main__":
    raise SystemExit(main())
