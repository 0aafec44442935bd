"""Runs in Evidently's own virtualenv: DataDriftPreset on bench/_drift_frames frames.

Reads a JSON job on stdin, prints one JSON line of results:
``{"kind": "time", "reference": PATH, "current": PATH}`` -> seconds of one report;
``{"kind": "alarms", "ref_seed": S, "ref_rows": N, "sizes": [...], "trials": T}`` ->
per size, trials in which any column was flagged (Evidently's default tests).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _drift_frames import CATEGORICAL, NUMERIC, checksum, frame

warnings.filterwarnings("ignore")


def drifted_columns(reference: pd.DataFrame, current: pd.DataFrame) -> int:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(current, data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    for metric in snapshot.dict()["metrics"]:
        if "DriftedColumnsCount" in metric["metric_name"]:
            return int(metric["value"]["count"])
    raise RuntimeError("no DriftedColumnsCount in Evidently's report")


def main() -> None:
    job = json.loads(sys.stdin.read())
    if job["kind"] == "time":
        reference = pd.read_parquet(job["reference"])
        current = pd.read_parquet(job["current"])
        for name in CATEGORICAL:
            reference[name] = reference[name].astype("category")
            current[name] = current[name].astype("category")
        t = time.perf_counter()
        count = drifted_columns(reference, current)
        print(json.dumps({"seconds": time.perf_counter() - t, "drifted": count}))
        return
    reference = frame(job["ref_rows"], job["ref_seed"])
    out = {"checksum": checksum(reference), "flagged": {}, "detected": None}
    for n in job["sizes"]:
        out["flagged"][str(n)] = sum(
            drifted_columns(reference, frame(n, seed=10_000 * n + trial)) > 0
            for trial in range(job["trials"])
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
