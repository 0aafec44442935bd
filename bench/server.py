"""Server benchmark: remote logging, batch ingest, get_run latency, data commits, MLflow.

Usage::

    python bench/server.py                 # full run: a few minutes on 2 cores
    python bench/server.py --quick         # smaller N
    python bench/server.py --json          # machine-readable results on stdout
    python bench/server.py --mlflow PATH   # the `mlflow` executable to run `mlflow server`

It starts ``driftline server`` (2 workers) on a fresh PostgreSQL database and measures,
through the public SDK in remote mode (``uri=http://...``):

1. per-call ``dl.log_metric``: calls/s accepted by the client (the loop returning) and
   metrics/s durable (until ``dl.flush()`` returns; rows are then counted in PostgreSQL);
2. batch ingest: two client processes, each logging 100-metric ``log_metrics`` calls
   that the background sender posts in large batches; metrics/s from the first call to
   the last flush, rows counted;
3. ``get_run`` latency over HTTP (p50/p99 of sequential calls);
4. a first ``dl.data.commit`` of a folder of small files (100 KiB each) through the
   server: their objects travel in batch uploads (files/s and MiB/s, objects checked);
5. the MLflow client's per-call ``mlflow.log_metric`` against the driftline server's
   MLflow-compatible routes and against ``mlflow server`` (SQLite backend) on the same
   machine, and the ratio. ``mlflow server`` needs the full ``mlflow`` package (the
   client alone is ``mlflow-skinny``): pass ``--mlflow`` or set ``MLFLOW_BIN``.

See bench/README.md for the targets and the figures measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _report import print_rows  # bench/_report.py: python puts bench/ on sys.path

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"

TARGETS: dict[str, tuple[str, float]] = {
    "remote.per_call.accepted_per_s": (">=", 20_000),
    "remote.per_call.durable_per_s": (">=", 20_000),
    "remote.batch.durable_per_s": (">=", 100_000),
    "remote.get_run.p99_ms": ("<", 10),
}


@dataclass(frozen=True)
class Sizes:
    per_call: int
    batch_calls: int
    batch_width: int
    batch_clients: int
    get_runs: int
    mlflow_calls: int
    data_files: int


FULL = Sizes(200_000, 5_000, 100, 2, 2_000, 300, 5_000)
QUICK = Sizes(50_000, 1_000, 100, 2, 500, 100, 1_000)


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# -- PostgreSQL -------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database for this run, dropped at the end."""
    import psycopg

    name = f"driftline_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count_metrics(db_url: str, run_ids: list[str]) -> int:
    import psycopg

    libpq = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq) as conn:
        row = conn.execute(
            "SELECT count(*) FROM metrics WHERE run_id = ANY(%s)", (run_ids,)
        ).fetchone()
    return int(row[0]) if row else 0


# -- the driftline server ---------------------------------------------------------------


@contextlib.contextmanager
def driftline_server(root: Path, db_url: str, workers: int = 2) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "driftline.cli", "--home", str(root / ".driftline"),
        "server", "--port", str(port), "--workers", str(workers), "--uri", db_url,
        "--artifacts", str(root / "artifacts"), "--log-level", "warning",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    root.mkdir(parents=True, exist_ok=True)
    with (root / "server.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health", process)
        yield url
    finally:
        stop(process)


def remote(url: str, home: Path) -> Any:
    import driftline as dl

    return dl.configure(uri=url, home=home / ".driftline", capture_environment=False)


def bench_per_call(url: str, home: Path, db_url: str, n: int) -> dict[str, float]:
    import driftline as dl

    remote(url, home)
    with dl.start_run(experiment="bench-per-call") as run:
        start = time.perf_counter()
        for i in range(n):
            dl.log_metric("loss", 1.0 / (i + 1), step=i)
        accepted = time.perf_counter() - start
        dl.flush()
        durable = time.perf_counter() - start
    rows = count_metrics(db_url, [run.id])
    if rows != n:
        raise RuntimeError(f"per-call: {rows} metric rows in the database, expected {n}")
    return {"accepted_per_s": n / accepted, "durable_per_s": n / durable, "rows": rows}


def bench_data_commit(url: str, root: Path, n: int) -> dict[str, float]:
    """The first commit of ``n`` files of 100 KiB through the server."""
    from driftline.settings import Settings
    from driftline.workspace import Workspace

    folder = root / "data-small"
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"part-{i:05d}.bin").write_bytes(os.urandom(100 * 1024))
    settings = Settings.load(home=root / "c3" / ".driftline", uri=url, capture_environment=False)
    with Workspace.from_settings(settings) as ws:
        start = time.perf_counter()
        version = ws.data.commit("bench-small", folder)
        elapsed = time.perf_counter() - start
        if version.file_count != n or ws.content.stored(
            e.digest for e in ws.data.manifest(version).entries
        ) != {e.digest for e in ws.data.manifest(version).entries}:
            raise RuntimeError("the server does not hold every object of the commit")
    return {"s": elapsed, "files_per_s": n / elapsed, "mib_per_s": n * 100 / 1024 / elapsed}


def _batch_client(url: str, home: str, calls: int, width: int, queue: Any) -> None:
    import driftline as dl

    remote(url, Path(home))
    keys = [f"m{k}" for k in range(width)]
    with dl.start_run(experiment="bench-batch") as run:
        queue.put(("ready", run.id, 0.0))
        start = time.time()
        for step in range(calls):
            dl.log_metrics(dict.fromkeys(keys, step * 0.5), step=step)
        dl.flush()
        queue.put(("done", start, time.time()))


def bench_batch(url: str, home: Path, db_url: str, sizes: Sizes) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    clients = [
        context.Process(
            target=_batch_client,
            args=(url, str(home / f"client-{i}"), sizes.batch_calls, sizes.batch_width, queue),
        )
        for i in range(sizes.batch_clients)
    ]
    for client in clients:
        client.start()
    run_ids, starts, ends = [], [], []
    for _ in range(2 * len(clients)):
        kind, a, b = queue.get(timeout=600)
        if kind == "ready":
            run_ids.append(a)
        else:
            starts.append(a)
            ends.append(b)
    for client in clients:
        client.join(60)
    total = sizes.batch_calls * sizes.batch_width * len(clients)
    rows = count_metrics(db_url, run_ids)
    if rows != total:
        raise RuntimeError(f"batch: {rows} metric rows in the database, expected {total}")
    return {"durable_per_s": total / (max(ends) - min(starts)), "rows": rows}


def bench_get_run(url: str, home: Path, n: int) -> dict[str, float]:
    import driftline as dl

    ws = remote(url, home)
    with dl.start_run(experiment="bench-get-run") as run:
        dl.log_params({f"p{i}": i for i in range(20)})
        dl.log_metrics({f"m{i}": float(i) for i in range(20)})
    for _ in range(20):  # warm the connection and the server's caches
        ws.tracking.get_run(run.id)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        ws.tracking.get_run(run.id)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
    }


# -- the MLflow client against both servers ----------------------------------------------

_MLFLOW_CLIENT = """
import sys, time, mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("bench-mlflow")
n = int(sys.argv[2])
with mlflow.start_run():
    for i in range(5):
        mlflow.log_metric("warmup", i, step=i)
    start = time.perf_counter()
    for i in range(n):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    rate = n / (time.perf_counter() - start)
print(f"RATE={rate}")
"""


def mlflow_client_rate(url: str, n: int, home: Path) -> float:
    env = {
        **os.environ,
        "HOME": str(home),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "GIT_PYTHON_REFRESH": "quiet",
    }
    result = subprocess.run(
        [sys.executable, "-c", _MLFLOW_CLIENT, url, str(n)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    rates = [line for line in result.stdout.splitlines() if line.startswith("RATE=")]
    if not rates:
        raise RuntimeError(f"the MLflow client printed no rate: {result.stdout[-2000:]}")
    return float(rates[-1].removeprefix("RATE="))


def find_mlflow(explicit: str | None) -> str | None:
    for candidate in (explicit, os.environ.get("MLFLOW_BIN"), shutil.which("mlflow")):
        if candidate and Path(candidate).is_file():
            probe = subprocess.run(
                [candidate, "server", "--help"], capture_output=True, text=True, timeout=120
            )
            if probe.returncode == 0:
                return candidate
    return None


@contextlib.contextmanager
def mlflow_server(mlflow: str, root: Path) -> Iterator[str]:
    port = free_port()
    command = [
        mlflow, "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "mlartifacts"), "--workers", "2",
    ]  # fmt: skip
    with (root / "mlflow-server.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health", process, timeout=180)
        yield url
    finally:
        stop(process)


# -- report -----------------------------------------------------------------------------


def verdict(key: str, value: float) -> str:
    if key not in TARGETS:
        return ""
    op, threshold = TARGETS[key]
    ok = value >= threshold if op == ">=" else value < threshold
    return "PASS" if ok else "MISS"


def rows_for(figures: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    labels = [
        ("remote.per_call.accepted_per_s", "remote", "log_metric accepted", "calls/s"),
        ("remote.per_call.durable_per_s", "remote", "log_metric durable", "metrics/s"),
        ("remote.batch.durable_per_s", "remote", "batch ingest into PostgreSQL", "metrics/s"),
        ("remote.get_run.p50_ms", "remote", "get_run p50", "ms"),
        ("remote.get_run.p99_ms", "remote", "get_run p99", "ms"),
        ("remote.data.s", "remote", "first data commit, 100 KiB files", "s"),
        ("remote.data.files_per_s", "remote", "  files stored", "files/s"),
        ("remote.data.mib_per_s", "remote", "  bytes stored", "MiB/s"),
        ("mlflow.client_vs_driftline_per_s", "mlflow client", "log_metric -> driftline", "calls/s"),
        (
            "mlflow.client_vs_mlflow_per_s",
            "mlflow client",
            "log_metric -> mlflow server",
            "calls/s",
        ),
        ("mlflow.ratio", "mlflow client", "driftline / mlflow server", "x"),
    ]
    for key, section, label, unit in labels:
        if key not in figures:
            continue
        value = figures[key]
        text = f"{value:,.2f} {unit}" if unit in ("ms", "x", "s") else f"{value:,.0f} {unit}"
        target = ""
        if key in TARGETS:
            op, threshold = TARGETS[key]
            target = f"{op} {threshold:,g}"
        rows.append((section, label, text, target, verdict(key, value)))
    return rows


def flatten(prefix: str, values: dict[str, Any], into: dict[str, Any]) -> None:
    for key, value in values.items():
        into[f"{prefix}.{key}"] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller N")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--mlflow", help="the mlflow executable for `mlflow server`")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    figures: dict[str, Any] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dl-bench-server-") as tmp:
        root = Path(tmp)
        with fresh_database() as db_url, driftline_server(root / "server", db_url) as url:
            progress(f"driftline server at {url} on PostgreSQL")
            progress(f"per-call log_metric x {sizes.per_call:,}")
            flatten(
                "remote.per_call", bench_per_call(url, root / "c1", db_url, sizes.per_call), figures
            )
            progress(f"batch ingest: {sizes.batch_clients} clients")
            flatten("remote.batch", bench_batch(url, root, db_url, sizes), figures)
            progress(f"get_run x {sizes.get_runs:,}")
            flatten("remote.get_run", bench_get_run(url, root / "c2", sizes.get_runs), figures)
            progress(f"data commit of {sizes.data_files:,} files of 100 KiB through the server")
            flatten("remote.data", bench_data_commit(url, root, sizes.data_files), figures)
            if not args.no_mlflow:
                progress(f"mlflow client -> driftline server x {sizes.mlflow_calls}")
                try:
                    figures["mlflow.client_vs_driftline_per_s"] = mlflow_client_rate(
                        url, sizes.mlflow_calls, root
                    )
                except Exception as exc:  # the client is optional; say why it was skipped
                    notes.append(f"MLflow client against driftline failed: {exc}")
        mlflow = None if args.no_mlflow else find_mlflow(args.mlflow)
        if mlflow is None and not args.no_mlflow:
            notes.append("`mlflow server` not found (install mlflow or pass --mlflow PATH)")
        if mlflow is not None:
            with mlflow_server(mlflow, root) as url:
                progress(f"mlflow client -> mlflow server x {sizes.mlflow_calls}")
                figures["mlflow.client_vs_mlflow_per_s"] = mlflow_client_rate(
                    url, sizes.mlflow_calls, root
                )
        if {"mlflow.client_vs_driftline_per_s", "mlflow.client_vs_mlflow_per_s"} <= set(figures):
            figures["mlflow.ratio"] = (
                figures["mlflow.client_vs_driftline_per_s"]
                / figures["mlflow.client_vs_mlflow_per_s"]
            )
    if args.json:
        print(json.dumps({"figures": figures, "notes": notes}, indent=2))
    else:
        print_rows(
            f"driftline server benchmark ({'quick' if args.quick else 'full'})",
            rows_for(figures),
            notes,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
