"""Monitoring on a deployment's traffic: CBPE beside NannyML, and a 10M-row window check.

Used by ``bench/monitoring.py`` (``--only cbpe,traffic``). Each section returns the
figures table's rows ``(section, figure, value, target, status)`` and a dict for --json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _cbpe_frames import cbpe_frames, checksum  # noqa: E402

CBPE_ROWS, CBPE_SEED = 100_000, 7


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- CBPE ------------------------------------------------------------------------------


def nannyml(python: str, timeout: float = 1800) -> dict[str, Any] | None:
    """NannyML's CBPE on the same frames, in its own virtualenv (None if not there)."""
    if not Path(python).exists():
        return None
    try:
        done = subprocess.run(
            [python, str(HERE / "_nannyml_cbpe.py")],
            input=json.dumps({"rows": CBPE_ROWS, "seed": CBPE_SEED}),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        log(f"NannyML timed out after {timeout:.0f} s")
        return None
    if done.returncode != 0:
        log(f"NannyML failed: {done.stderr[-800:]}")
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cbpe_section(python: str) -> tuple[list[tuple[str, ...]], dict[str, Any]]:
    """driftline's CBPE (calibrate on the labelled reference, estimate the analysis
    period's ROC AUC) against NannyML's on the same 100k + 100k rows."""
    import scipy.optimize  # noqa: F401  (imported before timing, as a running service has)

    from driftline.monitoring import metrics

    f = cbpe_frames(CBPE_ROWS, CBPE_SEED)
    t = time.perf_counter()
    calibration = metrics.fit_calibration(f["ref_label"], f["ref_score"])
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    est, bands = metrics.cbpe(f["score"], calibration)
    est_s = time.perf_counter() - t
    realized = metrics.roc_auc(f["label"].astype(float), f["score"])
    ours = est["roc_auc"]
    low, high = bands["roc_auc"]
    log(f"CBPE ROC AUC {ours:.4f} [{low:.4f}, {high:.4f}], realized {realized:.4f}")
    rows: list[tuple[str, ...]] = [
        ("cbpe", f"ROC AUC estimate, {CBPE_ROWS:,} unlabelled rows", f"{ours:.4f}", "", ""),
        ("cbpe", "  its 95% band", f"[{low:.4f}, {high:.4f}]", "", ""),
        ("cbpe", "  realized ROC AUC (labels held back)", f"{realized:.4f}", "", ""),
        ("cbpe", "  time: calibrate + estimate", f"{fit_s:.3f} + {est_s:.3f} s", "", ""),
    ]
    peer = nannyml(python)
    if peer is None:
        rows.append(("cbpe", "NannyML CBPE", "n/a", "", "n/a"))
    else:
        gap = abs(peer["roc_auc"] - ours)
        same = abs(peer["checksum"] - checksum(f)) < 1e-6
        peer_s = peer["fit_seconds"] + peer["estimate_seconds"]
        rows += [
            (
                "cbpe",
                f"NannyML {peer['version']} estimate, same rows",
                f"{peer['roc_auc']:.4f}",
                "",
                "" if same else "WRONG",
            ),
            (
                "cbpe",
                "  |driftline - NannyML|",
                f"{gap:.2e}",
                "<= 0.02",
                "PASS" if gap <= 0.02 else "MISS",
            ),
            (
                "cbpe",
                "  NannyML time: fit + estimate",
                f"{peer['fit_seconds']:.3f} + {peer['estimate_seconds']:.3f} s",
                "",
                "PASS" if fit_s + est_s < peer_s else "MISS",
            ),
        ]
    return rows, {
        "roc_auc": ours,
        "band": [low, high],
        "realized": realized,
        "fit_seconds": fit_s,
        "estimate_seconds": est_s,
        "nannyml": peer,
    }


# -- a 10M-row window of traffic -------------------------------------------------------


def write_traffic(root: str, day: datetime, rows: int, seed: int, per_request: int) -> list[str]:
    """Log ``rows`` predicted rows in requests of ``per_request`` rows with serving's
    writer (binary classifier: 4 numeric inputs, 1 categorical, one score per row)."""
    import numpy as np
    import pandas as pd

    from driftline.serving.predlog import PredictionLog

    rng = np.random.default_rng(seed)
    requests = rows // per_request
    spacing = timedelta(days=1) / requests
    plog = PredictionLog(root, "bench", flush_rows=200, capacity=requests + 1)
    ids = []
    for k in range(requests):
        x = rng.normal(size=(per_request, 4))
        frame = pd.DataFrame(
            {
                "a": x[:, 0],
                "b": x[:, 1],
                "c": x[:, 2],
                "d": x[:, 3],
                "plan": rng.choice(["basic", "plus", "pro"], per_request),
            }
        )
        score = 1 / (1 + np.exp(-(x[:, 0] + 0.5 * x[:, 1])))
        rid = f"s{seed}-{k}"
        ids.append(rid)
        plog.append(
            (
                rid,
                "bench-model",
                1,
                "stable",
                day + k * spacing,
                "predict",
                frame,
                score,
                per_request,
                1.0,
                200,
                None,
            )
        )
    plog.close()
    return ids


def monitor_run_cli(ws: Any, svc: Any, end: datetime) -> list[float]:
    """``driftline monitor run`` of a monitor with the same checks, each in a new process,
    as cron runs it: interpreter start, imports, the check, storing its figures and any
    alert (seconds of three runs)."""
    import os

    svc.monitors.create(
        "bench", deployment="bench", window="1d",
        checks=("drift", "prediction_drift", "performance"), reference="bench", cooldown="1m",
        replace=True,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    command = [sys.executable, "-m", "driftline.cli", "--home", str(ws.settings.home),
               "monitor", "run", "bench", "--at", end.isoformat(), "--json"]  # fmt: skip
    seconds = []
    for _ in range(3):
        t = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        seconds.append(time.perf_counter() - t)
        if done.returncode not in (0, 1):  # 1: the window alerted, a result like 0
            raise RuntimeError(f"monitor run failed: {done.stderr[-800:]}")
    log(f"driftline monitor run: {seconds}")
    return seconds


def traffic_section(workdir: Path, rows: int) -> tuple[list[tuple[str, ...]], dict[str, Any]]:
    """check() on one window of ``rows`` predicted rows: drift of 5 inputs, prediction
    drift and performance (10 % of the rows labelled), against a reference fitted on
    the previous day's traffic (1M rows)."""
    import numpy as np
    import pandas as pd

    import driftline as dl
    from driftline.monitoring import MonitoringService
    from driftline.workspace import Workspace

    ws = dl.configure(
        home=workdir / "traffic" / ".driftline", capture_environment=False, async_logging=False
    )
    assert isinstance(ws, Workspace)
    svc = ws.service("monitoring", MonitoringService)
    assert svc.log_root is not None
    day0 = datetime(2025, 6, 1, tzinfo=UTC)
    day1 = day0 + timedelta(days=1)
    per_request = 1_000
    out: dict[str, Any] = {"rows": rows}
    if not (workdir / "traffic" / "done").exists():
        t = time.perf_counter()
        write_traffic(svc.log_root, day0, 1_000_000, 1, per_request)
        ids = write_traffic(svc.log_root, day1, rows, 2, per_request)
        out["write_log_seconds"] = time.perf_counter() - t
        log(f"wrote the prediction log ({rows:,} + 1M rows) in {out['write_log_seconds']:.1f} s")
        t = time.perf_counter()
        svc.traffic("bench", day0, day1 + timedelta(days=1))
        out["flatten_seconds"] = time.perf_counter() - t
        log(f"flattened (once per log file) in {out['flatten_seconds']:.1f} s")
        svc.fit_traffic_reference("bench", since=day0, until=day1, name="bench")
        rng = np.random.default_rng(3)
        labelled = rows // 10
        picks = rng.choice(rows, labelled, replace=False)
        score_rng = np.random.default_rng(4)
        labels = pd.DataFrame(
            {
                "request_id": [ids[i // per_request] for i in picks],
                "row": picks % per_request,
                "label": score_rng.integers(0, 2, labelled),
                # known an hour after the prediction: within the join window
                "time": day1
                + timedelta(hours=1)
                + (picks // per_request) * (timedelta(days=1) / (rows // per_request)),
            }
        )
        t = time.perf_counter()
        svc.log_labels("bench", labels)
        out["label_ingest_seconds"] = time.perf_counter() - t
        log(f"ingested {labelled:,} labels in {out['label_ingest_seconds']:.1f} s")
        (workdir / "traffic" / "done").write_text("ok")
    # The first check in this process is the cold one (imports, the stored reference, the
    # first read of the flattened window), as a `monitor run` from cron has it; the
    # median of the next three is the warm figure of a long-running service.
    times, cpu = [], []
    for _ in range(4):
        t, c = time.perf_counter(), time.process_time()
        res = svc.check(
            "bench",
            window="1d",
            since=day1,
            until=day1 + timedelta(days=1),
            checks=("drift", "prediction_drift", "performance"),
        )
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    (w,) = res.windows
    out["cli_seconds"] = monitor_run_cli(ws, svc, day1 + timedelta(days=1))
    out["cold_seconds"] = times[0]
    out["check_seconds"] = sorted(times[1:])[1]
    out["runs"] = times
    # CPU seconds (both threads) move far less than wall time on a shared machine.
    out["cpu_seconds"] = cpu
    realized = next(p for p in w.performance if p.kind == "realized")
    out["coverage"] = realized.coverage
    log(f"check of {w.rows:,} rows: {times}; CPU seconds {cpu}")
    rows_out: list[tuple[str, ...]] = [
        (
            "traffic",
            f"check: drift + prediction drift + perf, {w.rows:,} rows (warm)",
            f"{out['check_seconds']:.2f} s",
            "<= 5 s",
            "PASS" if out["check_seconds"] <= 5 else "MISS",
        ),
        (
            "traffic",
            "  the same, first check in a new process (cold)",
            f"{out['cold_seconds']:.2f} s",
            "<= 5 s",
            "PASS" if out["cold_seconds"] <= 5 else "MISS",
        ),
        (
            "traffic",
            "  CPU time of those checks (cold; warm median)",
            f"{cpu[0]:.2f}; {sorted(cpu[1:])[1]:.2f} s",
            "",
            "",
        ),
        ("traffic", "  label coverage of that window", f"{realized.coverage:.1%}", "", ""),
        (
            "traffic",
            "  `driftline monitor run` of that window, whole command (median of 3)",
            f"{sorted(out['cli_seconds'])[1]:.2f} s",
            "",
            "",
        ),
    ]
    for key, label in (
        ("write_log_seconds", "writing the log (serving's writer, setup)"),
        ("flatten_seconds", "flattening the JSON log once (cached)"),
        ("label_ingest_seconds", f"ingesting {rows // 10:,} labels"),
    ):
        if key in out:
            rows_out.append(("traffic", f"  {label}", f"{out[key]:.1f} s", "", ""))
    return rows_out, out
