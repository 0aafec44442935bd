"""Runs in NannyML's own virtualenv: CBPE's ROC AUC estimate on bench/_cbpe_frames data.

Reads ``{"rows": N, "seed": S}`` on stdin and prints one JSON line: the estimate, the
seconds of fit and of estimate, and the frames' checksum.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _cbpe_frames import cbpe_frames, checksum

warnings.filterwarnings("ignore")


def main() -> None:
    import nannyml as nml

    job = json.loads(sys.stdin.read())
    f = cbpe_frames(job["rows"], job["seed"])
    reference = pd.DataFrame(
        {
            "score": f["ref_score"],
            "pred": (f["ref_score"] >= 0.5).astype(int),
            "y": f["ref_label"],
        }
    )
    analysis = pd.DataFrame({"score": f["score"], "pred": (f["score"] >= 0.5).astype(int)})
    estimator = nml.CBPE(
        y_pred_proba="score",
        y_pred="pred",
        y_true="y",
        metrics=["roc_auc"],
        chunk_number=1,
        problem_type="classification_binary",
    )
    t = time.perf_counter()
    estimator.fit(reference)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    result = estimator.estimate(analysis)
    estimate_s = time.perf_counter() - t
    frame = result.filter(period="analysis").to_df()
    value = float(frame[("roc_auc", "value")].iloc[0])
    print(
        json.dumps(
            {
                "roc_auc": value,
                "fit_seconds": fit_s,
                "estimate_seconds": estimate_s,
                "checksum": checksum(f),
                "version": nml.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
