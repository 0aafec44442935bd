"""Tracking benchmark: logging throughput, search latency and start-up time.

Usage::

    python bench/tracking.py            # full run: a few minutes on 2 cores
    python bench/tracking.py --quick    # smaller N: under a minute
    python bench/tracking.py --json     # machine-readable results on stdout

For SQLite and (when reachable) PostgreSQL it measures:

1. per-call ``dl.log_metric``: calls/s accepted (the loop returning) and metrics/s
   durable (until ``dl.flush()`` returns; every row is then counted in ``metrics``);
2. ``dl.log_metrics`` with dicts of 100 metrics: metrics/s durable;
3. ``dl.search_runs`` over 10,000 runs with a 3-clause filter and an ordering;

then the wall time of ``python -c "import driftline"`` and ``driftline --help``, and,
when MLflow is importable, the same logging workloads through MLflow on SQLite.

See bench/README.md for what each figure means and the targets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _report import print_rows  # bench/_report.py: python puts bench/ on sys.path

import driftline as dl

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
PG_MAINTENANCE_DB = "test"

SEARCH_FILTER = "metrics.auc > 0.8 and params.model = 'rf' and tags.team like 'ri%'"
SEARCH_ORDER = ["metrics.auc desc"]

# Targets: (figure key, comparison, threshold). Figures are in the units of the table.
TARGETS: dict[str, tuple[str, float]] = {
    "sqlite.per_call.accepted_per_s": (">=", 200_000),
    "sqlite.per_call.durable_per_s": (">=", 50_000),
    "sqlite.search.median_ms": ("<", 100),
    "postgresql.search.median_ms": ("<", 100),
    "startup.import_driftline_ms": ("<", 150),
    "startup.driftline_help_ms": ("<", 300),
}


@dataclass(frozen=True)
class Sizes:
    per_call: int
    batch_calls: int
    batch_width: int
    search_runs: int
    searches: int
    mlflow_per_call: int
    mlflow_batch_calls: int
    startup_repeats: int
    mlflow_import_repeats: int


FULL = Sizes(
    per_call=500_000,
    batch_calls=5_000,
    batch_width=100,
    search_runs=10_000,
    searches=20,
    mlflow_per_call=2_000,
    mlflow_batch_calls=200,
    startup_repeats=5,
    mlflow_import_repeats=5,
)
QUICK = Sizes(
    per_call=100_000,
    batch_calls=1_000,
    batch_width=100,
    search_runs=10_000,
    searches=10,
    mlflow_per_call=200,
    mlflow_batch_calls=20,
    startup_repeats=3,
    mlflow_import_repeats=1,
)


@dataclass
class Results:
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def set(self, key: str, value: Any) -> None:
        self.figures[key] = value

    def note(self, text: str) -> None:
        self.notes.append(text)
        progress(f"note: {text}")


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# -- driftline workloads ------------------------------------------------------------


def count_metric_rows(ws: Any, run_id: str) -> int:
    """Rows of ``run_id`` in the ``metrics`` table, read straight from the database."""
    import sqlalchemy as sa

    query = sa.text("SELECT COUNT(*) FROM metrics WHERE run_id = :run_id")
    with ws.database.engine.connect() as conn:
        return int(conn.execute(query, {"run_id": run_id}).scalar_one())


def bench_per_call(ws: Any, n: int) -> dict[str, Any]:
    """``dl.log_metric`` in a loop: accepted rate, durable rate, rows verified."""
    with dl.start_run(experiment="bench-per-call", name=f"per-call-{n}") as run:
        start = time.perf_counter()
        for i in range(n):
            dl.log_metric("loss", i * 1e-6, step=i)
        accepted = time.perf_counter()
        dl.flush()
        durable = time.perf_counter()
    rows = count_metric_rows(ws, run.id)
    return {
        "n": n,
        "accepted_s": accepted - start,
        "durable_s": durable - start,
        "accepted_per_s": n / (accepted - start),
        "durable_per_s": n / (durable - start),
        "rows": rows,
        "verified": rows == n,
    }


def bench_batch(ws: Any, calls: int, width: int) -> dict[str, Any]:
    """``dl.log_metrics`` with dicts of ``width`` metrics: durable metrics/s."""
    keys = [f"m{j:03d}" for j in range(width)]
    payloads = [{k: (i * width + j) * 1e-6 for j, k in enumerate(keys)} for i in range(calls)]
    with dl.start_run(experiment="bench-batch", name=f"batch-{calls}x{width}") as run:
        start = time.perf_counter()
        for i, payload in enumerate(payloads):
            dl.log_metrics(payload, step=i)
        accepted = time.perf_counter()
        dl.flush()
        durable = time.perf_counter()
    n = calls * width
    rows = count_metric_rows(ws, run.id)
    return {
        "calls": calls,
        "width": width,
        "n": n,
        "accepted_per_s": n / (accepted - start),
        "durable_s": durable - start,
        "durable_per_s": n / (durable - start),
        "rows": rows,
        "verified": rows == n,
    }


def populate_runs(ws: Any, n_runs: int, seed: int = 7) -> str:
    """Create ``n_runs`` finished runs fast: one bulk INSERT of runs, then store batches.

    Each run gets 3 metrics, 4 params and 3 tags; ``auc > 0.8`` holds for ~20 % of runs,
    ``model = 'rf'`` for ~25 % and ``team like 'ri%'`` for ~25 %, so the filter matches
    ~1.25 % (~125 of 10,000): more than one page of 100.
    """
    from driftline.core.ids import new_id
    from driftline.tracking import _tables as t
    from driftline.tracking.models import LifecycleStage, RunStatus
    from driftline.tracking.store import LogBatch

    rng = random.Random(seed)
    name = f"bench-search-{uuid.uuid4().hex[:8]}"
    experiment = ws.tracking.create_experiment(name)
    now = int(time.time() * 1000)
    models = ["rf", "lr", "xgb", "svm"]
    teams = ["risk", "growth", "search", "infra"]
    runs: list[dict[str, Any]] = []
    batch = LogBatch()
    for i in range(n_runs):
        run_id = new_id()
        start = now - (n_runs - i) * 1000
        runs.append(
            {
                "run_id": run_id,
                "experiment_id": experiment.id,
                "name": f"run-{i}",
                "status": RunStatus.FINISHED.value,
                "lifecycle_stage": LifecycleStage.ACTIVE.value,
                "user_id": "bench",
                "start_time": start,
                "end_time": start + 900,
                "heartbeat_at": start + 900,
                "parent_run_id": None,
            }
        )
        ts = start + 500
        batch.metrics += [
            (run_id, "auc", rng.random(), 9, ts),
            (run_id, "loss", rng.random(), 9, ts),
            (run_id, "accuracy", rng.random(), 9, ts),
        ]
        batch.params += [
            (run_id, "model", rng.choice(models)),
            (run_id, "C", str(round(rng.uniform(0.01, 10), 3))),
            (run_id, "max_depth", str(rng.randint(2, 12))),
            (run_id, "seed", str(i)),
        ]
        batch.tags += [
            (run_id, "team", rng.choice(teams)),
            (run_id, "stage", rng.choice(["dev", "prod"])),
            (run_id, "owner", f"user{rng.randint(1, 50)}"),
        ]
    ws.database.write(lambda conn: conn.execute(t.runs.insert(), runs))
    chunk = 2_000  # runs per write_batch: keeps IN (...) lists well under driver limits
    for lo in range(0, n_runs, chunk):
        hi = lo + chunk
        part = LogBatch(
            metrics=batch.metrics[lo * 3 : hi * 3],
            params=batch.params[lo * 4 : hi * 4],
            tags=batch.tags[lo * 3 : hi * 3],
        )
        conflicts = ws.tracking.store.write_batch(part)
        if conflicts:
            raise RuntimeError(f"unexpected conflicts while populating: {conflicts[:3]}")
    return name


def bench_search(ws: Any, n_runs: int, searches: int) -> dict[str, Any]:
    """Median and p95 latency of ``dl.search_runs`` over ``n_runs`` runs."""
    start = time.perf_counter()
    experiment = populate_runs(ws, n_runs)
    populate_s = time.perf_counter() - start

    def search() -> Any:
        return dl.search_runs(
            experiment=experiment, filter=SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=100
        )

    first = search()  # warm-up: connection, statement cache
    timings = []
    for _ in range(searches):
        t0 = time.perf_counter()
        page = search()
        timings.append((time.perf_counter() - t0) * 1000)
    # The same searches once the planner has statistics (a bulk load leaves none until
    # autovacuum or an explicit ANALYZE gathers them): shows how much is plan choice.
    ws.database.write(lambda conn: conn.exec_driver_sql("ANALYZE"))
    search()
    analyzed = []
    for _ in range(searches):
        t0 = time.perf_counter()
        search()
        analyzed.append((time.perf_counter() - t0) * 1000)
    aucs = [r.metrics["auc"] for r in page.items]
    ok = (
        len(page.items) == len(first.items)
        and all(r.params["model"] == "rf" and r.tags["team"].startswith("ri") for r in page.items)
        and all(a > 0.8 for a in aucs)
        and aucs == sorted(aucs, reverse=True)
    )
    return {
        "runs": n_runs,
        "searches": searches,
        "populate_s": populate_s,
        "results": len(page.items),
        "has_next_page": page.next_token is not None,
        "median_ms": statistics.median(timings),
        "p95_ms": percentile(timings, 95),
        "min_ms": min(timings),
        "analyzed_median_ms": statistics.median(analyzed),
        "analyzed_p95_ms": percentile(analyzed, 95),
        "verified": ok and len(page.items) > 0,
    }


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    lo = int(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def run_backend(label: str, uri: str, root: Path, sizes: Sizes, results: Results) -> None:
    home = root / f"{label}-workspace" / ".driftline"
    # Keep the Workspace configure() returns: `dl.workspace` is shadowed by the
    # `driftline.workspace` submodule once that is imported.
    ws = dl.configure(
        home=str(home),
        uri=uri,
        artifact_root=str(home / "artifacts"),
        capture_environment=False,
    )
    try:
        progress(f"{label}: per-call log_metric x {sizes.per_call:,}")
        results.set(f"{label}.per_call", bench_per_call(ws, sizes.per_call))
        n = sizes.batch_calls * sizes.batch_width
        progress(f"{label}: log_metrics {sizes.batch_calls:,} x {sizes.batch_width} = {n:,}")
        results.set(f"{label}.batch", bench_batch(ws, sizes.batch_calls, sizes.batch_width))
        progress(f"{label}: search over {sizes.search_runs:,} runs")
        results.set(f"{label}.search", bench_search(ws, sizes.search_runs, sizes.searches))
    finally:
        ws.close()


# -- PostgreSQL database lifecycle -----------------------------------------------------


@contextlib.contextmanager
def fresh_postgres(server: str, results: Results) -> Any:
    """Yield the URL of a new, empty database (dropped afterwards), or ``None``."""
    try:
        import psycopg
    except ImportError:
        results.note(
            "PostgreSQL skipped: psycopg is not installed (pip install 'driftline[postgres]')"
        )
        yield None
        return
    conninfo = server.replace("postgresql+psycopg://", "postgresql://") + f"/{PG_MAINTENANCE_DB}"
    name = f"driftline_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        results.note(f"PostgreSQL skipped: cannot reach {server}/{PG_MAINTENANCE_DB} ({first})")
        yield None
        return
    try:
        yield f"{server}/{name}"
    finally:
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:
            results.note(f"could not drop PostgreSQL database {name}: {exc}")


# -- start-up times -----------------------------------------------------------------


def best_wall_ms(argv: list[str], repeats: int, cwd: Path | None = None) -> float | None:
    """Best wall time of a subprocess over ``repeats`` runs, or ``None`` if it fails."""
    best = None
    for _ in range(repeats):
        start = time.perf_counter()
        try:
            done = subprocess.run(argv, capture_output=True, cwd=cwd, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        elapsed = (time.perf_counter() - start) * 1000
        if done.returncode != 0:
            return None
        best = elapsed if best is None else min(best, elapsed)
    return best


def driftline_script() -> str | None:
    """The ``driftline`` console script of this interpreter (not a version-manager shim)."""
    scripts = Path(sys.executable).parent
    for name in ("driftline", "driftline.exe"):
        candidate = scripts / name
        if candidate.is_file():
            return str(candidate)
    return shutil.which("driftline")


def bench_startup(root: Path, sizes: Sizes, results: Results, with_mlflow: bool) -> None:
    repeats = sizes.startup_repeats
    py = sys.executable
    cwd = root / "startup"  # an empty folder: nothing finds or creates a workspace in the repo
    cwd.mkdir(exist_ok=True)
    progress(f"startup: best of {repeats}")
    results.set("startup.repeats", repeats)
    results.set("startup.python_baseline_ms", best_wall_ms([py, "-c", "pass"], repeats, cwd))
    results.set(
        "startup.import_driftline_ms", best_wall_ms([py, "-c", "import driftline"], repeats, cwd)
    )
    script = driftline_script()
    help_ms = best_wall_ms([script, "--help"], repeats, cwd) if script else None
    if help_ms is None:
        results.note("`driftline --help` is not available (no CLI yet, or it failed): n/a")
    results.set("startup.driftline_help_ms", help_ms)
    if with_mlflow:
        results.set(
            "startup.import_mlflow_ms",
            best_wall_ms([py, "-c", "import mlflow"], sizes.mlflow_import_repeats, cwd),
        )


# -- MLflow -------------------------------------------------------------------------


def mlflow_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):
        return False


def count_mlflow_rows(db: Path, run_id: str) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM metrics WHERE run_uuid = ?", (run_id,)).fetchone()[0]
        )


def bench_mlflow(root: Path, sizes: Sizes, results: Results) -> None:
    """The same per-call and batch workloads through MLflow on SQLite."""
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")  # log_metric is synchronous
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    warnings.filterwarnings("ignore")
    import mlflow

    # MLflow installs its own handler at import; quiet its INFO lines (and alembic's).
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)

    results.set("mlflow.version", mlflow.__version__)
    db = root / "mlflow" / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    progress("mlflow: creating its database (migrations, not timed)")
    mlflow.set_experiment("bench")

    n = sizes.mlflow_per_call
    progress(f"mlflow: per-call log_metric x {n:,}")
    with mlflow.start_run(run_name="per-call") as run:
        start = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", i * 1e-6, step=i)
        elapsed = time.perf_counter() - start
    rows = count_mlflow_rows(db, run.info.run_id)
    results.set(
        "mlflow.per_call",
        {
            "n": n,
            "durable_s": elapsed,
            "durable_per_s": n / elapsed,
            "rows": rows,
            "verified": rows == n,
        },
    )

    calls, width = sizes.mlflow_batch_calls, sizes.batch_width
    keys = [f"m{j:03d}" for j in range(width)]
    payloads = [{k: (i * width + j) * 1e-6 for j, k in enumerate(keys)} for i in range(calls)]
    progress(f"mlflow: log_metrics {calls:,} x {width}")
    with mlflow.start_run(run_name="batch") as run:
        start = time.perf_counter()
        for i, payload in enumerate(payloads):
            mlflow.log_metrics(payload, step=i)
        elapsed = time.perf_counter() - start
    n = calls * width
    rows = count_mlflow_rows(db, run.info.run_id)
    results.set(
        "mlflow.batch",
        {
            "calls": calls,
            "width": width,
            "n": n,
            "durable_s": elapsed,
            "durable_per_s": n / elapsed,
            "rows": rows,
            "verified": rows == n,
        },
    )


# -- report ---------------------------------------------------------------------------


def lookup(figures: dict[str, Any], path: str) -> Any:
    head, _, leaf = path.rpartition(".")
    section = figures.get(head)
    if isinstance(section, dict):
        return section.get(leaf)
    return figures.get(path)


def verdict(path: str, value: Any) -> str:
    if path not in TARGETS:
        return ""
    if value is None:
        return "n/a"
    op, threshold = TARGETS[path]
    ok = value >= threshold if op == ">=" else value < threshold
    return "PASS" if ok else "MISS"


def target_text(path: str, unit: str) -> str:
    if path not in TARGETS:
        return ""
    op, threshold = TARGETS[path]
    return f"{op} {threshold:,.0f} {unit}"


def fmt(value: Any, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value:,.1f} ms"
    if unit == "s":
        return f"{value:,.2f} s"
    if unit == "x":
        return f"{value:,.1f}x"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.0f} {unit}".strip()
    return f"{value:,} {unit}".strip() if isinstance(value, int) else f"{value} {unit}".strip()


def rows_for(figures: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(section, figure, value, target, status) rows for the table."""
    out: list[tuple[str, str, str, str, str]] = []

    def add(section: str, label: str, path: str, unit: str) -> None:
        value = lookup(figures, path)
        out.append(
            (section, label, fmt(value, unit), target_text(path, unit), verdict(path, value))
        )

    for backend in ("sqlite", "postgresql"):
        if f"{backend}.per_call" not in figures:
            continue
        pc = figures[f"{backend}.per_call"]
        b = figures[f"{backend}.batch"]
        s = figures[f"{backend}.search"]
        name = "SQLite" if backend == "sqlite" else "PostgreSQL"
        add(
            name,
            f"log_metric accepted (N={pc['n']:,})",
            f"{backend}.per_call.accepted_per_s",
            "calls/s",
        )
        add(
            name,
            "log_metric durable (after flush)",
            f"{backend}.per_call.durable_per_s",
            "metrics/s",
        )
        out.append(
            (
                name,
                "  rows in metrics table",
                f"{pc['rows']:,}",
                f"= {pc['n']:,}",
                "ok" if pc["verified"] else "WRONG",
            )
        )
        add(
            name,
            f"log_metrics {b['calls']:,} x {b['width']} durable",
            f"{backend}.batch.durable_per_s",
            "metrics/s",
        )
        out.append(
            (
                name,
                "  rows in metrics table",
                f"{b['rows']:,}",
                f"= {b['n']:,}",
                "ok" if b["verified"] else "WRONG",
            )
        )
        add(
            name,
            f"search {s['runs']:,} runs, median of {s['searches']}",
            f"{backend}.search.median_ms",
            "ms",
        )
        add(name, "search p95", f"{backend}.search.p95_ms", "ms")
        add(name, "search median / p95 after ANALYZE", f"{backend}.search.analyzed_median_ms", "ms")
        out[-1] = (
            *out[-1][:2],
            f"{s['analyzed_median_ms']:,.1f} / {s['analyzed_p95_ms']:,.1f} ms",
            *out[-1][3:],
        )
        out.append(
            (
                name,
                "  results / filter checked",
                f"{s['results']} (next page: {'yes' if s['has_next_page'] else 'no'})",
                "",
                "ok" if s["verified"] else "WRONG",
            )
        )
        add(name, "  populate runs (not a target)", f"{backend}.search.populate_s", "s")
    best = f"best of {figures.get('startup.repeats', '?')}"
    add("Start-up", f"python -c pass (baseline, {best})", "startup.python_baseline_ms", "ms")
    add("Start-up", 'python -c "import driftline"', "startup.import_driftline_ms", "ms")
    add("Start-up", "driftline --help", "startup.driftline_help_ms", "ms")
    if "startup.import_mlflow_ms" in figures:
        add("Start-up", 'python -c "import mlflow"', "startup.import_mlflow_ms", "ms")
    if "mlflow.per_call" in figures:
        version = figures.get("mlflow.version", "?")
        mp, mb = figures["mlflow.per_call"], figures["mlflow.batch"]
        add(
            f"MLflow {version}",
            f"log_metric durable (N={mp['n']:,})",
            "mlflow.per_call.durable_per_s",
            "metrics/s",
        )
        add(
            f"MLflow {version}",
            f"log_metrics {mb['calls']:,} x {mb['width']} durable",
            "mlflow.batch.durable_per_s",
            "metrics/s",
        )
        for key, label in (
            ("ratio.per_call_accepted", "driftline/MLflow log_metric (accepted)"),
            ("ratio.per_call_durable", "driftline/MLflow log_metric (durable)"),
            ("ratio.batch_durable", "driftline/MLflow log_metrics (durable)"),
        ):
            add("Ratio (SQLite)", label, key, "x")
    return out


def add_ratios(figures: dict[str, Any]) -> None:
    if "mlflow.per_call" not in figures or "sqlite.per_call" not in figures:
        return
    mp, mb = figures["mlflow.per_call"], figures["mlflow.batch"]
    pc, b = figures["sqlite.per_call"], figures["sqlite.batch"]
    figures["ratio.per_call_accepted"] = pc["accepted_per_s"] / mp["durable_per_s"]
    figures["ratio.per_call_durable"] = pc["durable_per_s"] / mp["durable_per_s"]
    figures["ratio.batch_durable"] = b["durable_per_s"] / mb["durable_per_s"]


def print_table(results: Results, header: str) -> None:
    print_rows(header, rows_for(results.figures), results.notes, label_width=40, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller N: the run takes < 1 minute")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    parser.add_argument(
        "--pg-server", default=PG_SERVER, help=f"PostgreSQL server URL (default {PG_SERVER})"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    results = Results()
    results.set("mode", "quick" if args.quick else "full")
    results.set(
        "machine",
        {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "driftline": dl.__version__,
        },
    )
    began = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="driftline-bench-"))
    try:
        run_backend("sqlite", f"sqlite:///{root / 'sqlite' / 'driftline.db'}", root, sizes, results)
        if args.no_postgres:
            results.note("PostgreSQL skipped (--no-postgres)")
        else:
            with fresh_postgres(args.pg_server, results) as url:
                if url is not None:
                    run_backend("postgresql", url, root, sizes, results)
        with_mlflow = not args.no_mlflow and mlflow_available()
        if with_mlflow:
            bench_mlflow(root, sizes, results)
        elif not args.no_mlflow:
            results.note("MLflow is not installed: no comparison (pip install mlflow)")
        bench_startup(root, sizes, results, with_mlflow)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    add_ratios(results.figures)
    results.set("elapsed_s", time.perf_counter() - began)
    targets = {
        path: {
            "target": f"{op} {threshold}",
            "value": lookup(results.figures, path),
            "status": verdict(path, lookup(results.figures, path)),
        }
        for path, (op, threshold) in TARGETS.items()
        if path.split(".")[0] != "postgresql" or "postgresql.search" in results.figures
    }
    verified = all(
        section.get("verified", True)
        for section in results.figures.values()
        if isinstance(section, dict)
    )
    if args.json:
        print(
            json.dumps(
                {
                    **results.figures,
                    "targets": targets,
                    "verified": verified,
                    "notes": results.notes,
                },
                indent=2,
            )
        )
    else:
        figures = results.figures
        header = (
            f"driftline tracking benchmark ({figures['mode']}, "
            f"{os.cpu_count()} cores, {figures['elapsed_s']:.0f} s)"
        )
        print_table(results, header)
    return 0 if verified else 1


if __name__ == "__main__":
    sys.exit(main())
