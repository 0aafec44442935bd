"""Serving benchmark: `driftline serve` under `wrk` on loopback, next to `mlflow models serve`.

    python bench/serving.py                      # 15 s per load run
    python bench/serving.py --quick              # 5 s per load run
    python bench/serving.py --mlflow-python VENV/bin/python   # MLflow from another venv
    python bench/serving.py --json

Peers run from their own virtualenvs, found from where the bench is started:
``.venvs/mlflow/bin/python`` (``mlflow models serve``) and ``.venvs/bentoml/bin/python``
(``bentoml serve`` of a service file this script writes), or ``--mlflow-python`` and
``--bentoml-python``. A missing one is skipped with a note.

Figures (targets from the serving issue):

- one-row LogisticRegression at 16 connections: req/s, p50, p99 (p99 < 20 ms) and the
  ratio to `mlflow models serve` on the same model and load (>= 20x) and to BentoML
  (ahead of it: > 1x);
- RandomForest(100) with and without micro-batching (64 rows / 5 ms) at 64 connections:
  batched >= 1,000 req/s and >= 5x unbatched;
- server overhead at one connection: p50 latency minus a raw in-process predict (< 1 ms)
  of what the worker predicts with (the LogisticRegression's verified numpy twin; the
  estimator's own DataFrame predict is shown beside it);
- prediction logging on vs off: throughput cost (< 10 %);
- RSS of the worker after the load (< 150 MB);
- routing: req/s of a deployment with a 50/50 canary, and with a shadow (every request
  mirrored to a second version), next to the single variant.

Needs `wrk` (Debian: `apt-get install wrk`). Peers: `python -m venv .venvs/mlflow &&
.venvs/mlflow/bin/pip install "mlflow>=3,<4" scikit-learn` (served with
`--env-manager local`), `python -m venv .venvs/bentoml && .venvs/bentoml/bin/pip install
"bentoml>=1.4,<1.5" scikit-learn`. Each trains the same LogisticRegression on the same
CSV in its own interpreter. Everything runs in a temporary folder deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _report import print_rows

FEATURES = [f"f{i}" for i in range(8)]
ROW = {f: round(0.1 * (i + 1), 3) for i, f in enumerate(FEATURES)}


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` (the uvicorn worker serving with one worker)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk(url: str, body: dict[str, Any], connections: int, seconds: int) -> dict[str, float]:
    """``wrk`` POSTing ``body``: req/s, p50/p99 in ms, and failed responses."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    threads = min(2, connections)
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
             "-s", script.name, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)

    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else float("nan"),
        "p50": latency("50"),
        "p99": latency("99"),
        "failed": (int(bad.group(1)) if bad else 0)
        + (sum(int(g) for g in errors.groups()) if errors else 0),
    }


def build_models(home: Path, data_file: Path) -> dict[str, Any]:
    """Train and register `lr` and `rf` (@champion) in a workspace; time a raw predict."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    import driftline as dl

    rng = np.random.default_rng(7)
    x = pd.DataFrame(rng.normal(size=(2000, len(FEATURES))), columns=FEATURES)
    y = (x["f0"] + x["f1"] - x["f2"] > 0).astype(int)
    x.assign(target=y).to_csv(data_file, index=False)
    dl.configure(home=home, capture_environment=False)
    lr = LogisticRegression(max_iter=1000).fit(x, y)
    rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y)
    with dl.start_run(experiment="bench-serving") as run:
        dl.models.log_model(lr, "lr", input_example=x.head(3))
        dl.models.log_model(rf, "rf", input_example=x.head(3))
        # A second LogisticRegression: the canary and the shadow of the routing rows.
        lr2 = LogisticRegression(C=0.1, max_iter=1000).fit(x, y)
        dl.models.log_model(lr2, "lr2", input_example=x.head(3))
    for name in ("lr", "rf"):
        version = dl.register_model(f"runs:/{run.id}/{name}", name)
        dl.registry.set_alias(name, "champion", version.version)
    second = dl.register_model(f"runs:/{run.id}/lr2", "lr").version
    routed = {
        "lr-canary": {"canary": {"version": second, "steps": [50], "interval": "24h"}},
        "lr-shadow": {"shadow": {"version": second}},
    }
    for name, policy in routed.items():
        dl.serving.deploy({"name": name, "model": "lr", "stable": "champion", **policy})
    loaded = dl.models.load("models:/lr@champion")
    # What a serving worker predicts with: the verified numpy twin of the estimator.
    twin = dl.models.load_model_folder(loaded.path, lite=True)
    one = pd.DataFrame([ROW])
    rows = dl.models.NumericRows(FEATURES, np.array([list(ROW.values())]))
    dl.get_workspace().close()
    return {
        "raw_p50_ms": _p50_ms(lambda: loaded.predict(one)),
        "twin_p50_ms": _p50_ms(lambda: twin.predict(rows)),
    }


def _p50_ms(call: Any) -> float:
    for _ in range(50):
        call()
    times = []
    for _ in range(500):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2] * 1000


def serve(home: Path, model: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "driftline.cli", "--home", str(home), "serve", model,
               "--port", str(port), *args]  # fmt: skip
    log = home / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/ping", proc)
    except RuntimeError as exc:
        stop(proc)
        raise RuntimeError(f"{exc}: {log.read_text()[-2000:]}") from None
    return proc, url


def mlflow_serve(python: str, work: Path, data_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Train the same LogisticRegression in MLflow's venv, save it, `mlflow models serve` it."""
    model_dir = work / "mlflow-lr"
    script = textwrap.dedent(f"""
        import pandas as pd, mlflow.sklearn
        from sklearn.linear_model import LogisticRegression
        data = pd.read_csv({str(data_file)!r})
        x, y = data.drop(columns=["target"]), data["target"]
        model = LogisticRegression(max_iter=1000).fit(x, y)
        mlflow.sklearn.save_model(model, {str(model_dir)!r}, input_example=x.head(3))
    """)
    subprocess.run([python, "-c", script], check=True, capture_output=True, timeout=600)
    port = free_port()
    mlflow = str(Path(python).parent / "mlflow")
    proc = subprocess.Popen(
        [mlflow, "models", "serve", "-m", str(model_dir), "-p", str(port), "-h", "127.0.0.1",
         "--env-manager", "local"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "PATH": f"{Path(python).parent}:{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/ping", proc, timeout=300)
    return proc, url


BENTO_SERVICE = """
import pickle

import bentoml
import numpy as np

FEATURES = {features!r}


@bentoml.service(workers=1)
class LogisticRegressionService:
    def __init__(self) -> None:
        with open({model!r}, "rb") as file:
            self.model = pickle.load(file)

    @bentoml.api
    def predict(self, inputs: list[dict[str, float]]) -> list[int]:
        rows = np.array([[record[f] for f in FEATURES] for record in inputs], dtype=float)
        return self.model.predict(rows).tolist()
"""


def bentoml_serve(
    python: str, work: Path, data_file: Path
) -> tuple[subprocess.Popen[bytes], str, str]:
    """Train the same LogisticRegression in BentoML's venv, write a service serving it
    (``POST /predict {"inputs": [records]}``, driftline's own body), `bentoml serve` it.

    BentoML does not bring pandas: the service predicts on a numpy array (cheaper than
    the DataFrame the other servers build, so this favours the peer)."""
    folder = work / "bentoml"
    folder.mkdir()
    model_file = folder / "lr.pkl"
    script = textwrap.dedent(f"""
        import pickle, numpy as np
        from sklearn.linear_model import LogisticRegression
        data = np.loadtxt({str(data_file)!r}, delimiter=",", skiprows=1)
        x, y = data[:, :-1], data[:, -1].astype(int)
        model = LogisticRegression(max_iter=1000).fit(x, y)
        with open({str(model_file)!r}, "wb") as file:
            pickle.dump(model, file)
    """)
    subprocess.run([python, "-c", script], check=True, capture_output=True, timeout=600)
    (folder / "service.py").write_text(
        BENTO_SERVICE.format(features=FEATURES, model=str(model_file)), encoding="utf-8"
    )
    version = subprocess.run(
        [python, "-c", "import bentoml; print(bentoml.__version__)"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(python).parent / "bentoml"), "serve", "service:LogisticRegressionService",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "BENTOML_DO_NOT_TRACK": "True", "PYTHONPATH": "",
             "PATH": f"{Path(python).parent}:{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/readyz", proc, timeout=300)
    return proc, url, version


def peer_python(given: str) -> str | None:
    """The peer's interpreter (relative paths from where the bench was started), if any."""
    path = Path(given).absolute()
    return str(path) if path.exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s per load run")
    parser.add_argument("--seconds", type=int, default=None, help="seconds per load run")
    parser.add_argument("--workers", type=int, default=1, help="driftline serve --workers")
    parser.add_argument(
        "--mlflow-python", default=".venvs/mlflow/bin/python", help="python of a venv with mlflow"
    )
    parser.add_argument(
        "--bentoml-python", default=".venvs/bentoml/bin/python",
        help="python of a venv with bentoml 1.4 and scikit-learn",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.mlflow_python = peer_python(args.mlflow_python)
    args.bentoml_python = peer_python(args.bentoml_python)
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    seconds = args.seconds or (5 if args.quick else 15)
    work = Path(tempfile.mkdtemp(prefix="driftline-bench-serving-"))
    home = work / ".driftline"
    data_file = work / "train.csv"
    split = {"dataframe_split": {"columns": FEATURES, "data": [list(ROW.values())]}}
    predict_body = {"inputs": [ROW]}
    results: dict[str, Any] = {
        "seconds_per_run": seconds, "workers": args.workers, "load_average": os.getloadavg(),
    }  # fmt: skip
    notes = ["The machine is shared (2 cores, other work running): figures are noisy."]
    workers = ["--workers", str(args.workers)]
    try:
        progress("training and registering lr and rf")
        results.update(build_models(home, data_file))
        progress("lr: 16 connections, logging on")
        proc, url = serve(home, "lr@champion", *workers)
        try:
            wrk(f"{url}/predict", predict_body, 4, 2)  # warm-up
            results["lr"] = wrk(f"{url}/predict", predict_body, 16, seconds)
            results["lr_invocations"] = wrk(f"{url}/invocations", split, 16, seconds)
            results["lr_one_conn"] = wrk(f"{url}/predict", predict_body, 1, seconds)
            results["rss_mb"] = rss_mb(proc.pid) if args.workers == 1 else float("nan")
        finally:
            stop(proc)
        progress("lr: 16 connections, logging off")
        proc, url = serve(home, "lr@champion", "--log-sample", "0", *workers)
        try:
            wrk(f"{url}/predict", predict_body, 4, 2)
            results["lr_nolog"] = wrk(f"{url}/predict", predict_body, 16, seconds)
        finally:
            stop(proc)
        for label, deployment in (("lr_canary", "lr-canary"), ("lr_shadow", "lr-shadow")):
            progress(f"{label}: 16 connections, deployment {deployment}")
            proc, url = serve(home, f"--deployment={deployment}", *workers)
            try:
                wrk(f"{url}/predict", predict_body, 4, 2)
                results[label] = wrk(f"{url}/predict", predict_body, 16, seconds)
            finally:
                stop(proc)
        for label, extra in (("rf", ()), ("rf_batched", ("--max-batch-size", "64",
                                                          "--max-latency-ms", "5"))):  # fmt: skip
            progress(f"{label}: 64 connections")
            proc, url = serve(home, "rf@champion", *workers, *extra)
            try:
                wrk(f"{url}/predict", predict_body, 4, 2)
                results[label] = wrk(f"{url}/predict", predict_body, 64, seconds)
            finally:
                stop(proc)
        if args.mlflow_python:
            progress("mlflow models serve: 16 connections")
            proc, url = mlflow_serve(args.mlflow_python, work, data_file)
            try:
                wrk(f"{url}/invocations", split, 4, 2)
                results["mlflow"] = wrk(f"{url}/invocations", split, 16, seconds)
            finally:
                stop(proc)
        else:
            notes.append("MLflow skipped: no .venvs/mlflow (or pass --mlflow-python)")
        if args.bentoml_python:
            progress("bentoml serve: 16 connections")
            proc, url, version = bentoml_serve(args.bentoml_python, work, data_file)
            try:
                wrk(f"{url}/predict", predict_body, 4, 2)
                results["bentoml"] = wrk(f"{url}/predict", predict_body, 16, seconds)
                results["bentoml"]["version"] = version
            finally:
                stop(proc)
        else:
            notes.append("BentoML skipped: no .venvs/bentoml (or pass --bentoml-python)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    report(results, notes)
    return 0


def report(r: dict[str, Any], notes: list[str]) -> None:
    def status(ok: bool | None) -> str:
        return "n/a" if ok is None else "PASS" if ok else "MISS"

    lr, nolog, one = r["lr"], r["lr_nolog"], r["lr_one_conn"]
    rf, rfb = r["rf"], r["rf_batched"]
    overhead = one["p50"] - r["twin_p50_ms"]
    cost = 1 - lr["rps"] / nolog["rps"] if nolog["rps"] else float("nan")
    ml, bento = r.get("mlflow"), r.get("bentoml")
    ratio = r["lr_invocations"]["rps"] / ml["rps"] if ml and ml["rps"] else None
    bento_ratio = lr["rps"] / bento["rps"] if bento and bento["rps"] else None
    canary, shadow = r["lr_canary"], r["lr_shadow"]
    rows = [
        ("LR 16 conn", "/predict req/s", f"{lr['rps']:,.0f}", "", ""),
        ("LR 16 conn", "/predict p50 / p99 ms", f"{lr['p50']:.1f} / {lr['p99']:.1f}",
         "p99 < 20", status(lr["p99"] < 20)),
        ("LR 16 conn", "/invocations req/s", f"{r['lr_invocations']['rps']:,.0f}", "", ""),
        ("LR 16 conn", "failed responses", str(lr["failed"] + r["lr_invocations"]["failed"]),
         "0", status(lr["failed"] + r["lr_invocations"]["failed"] == 0)),
        ("MLflow", "mlflow models serve req/s, p99 ms",
         "n/a" if not ml else f"{ml['rps']:,.0f}, {ml['p99']:.0f}", "", ""),
        ("MLflow", "driftline / mlflow req/s", "n/a" if ratio is None else f"{ratio:.1f}x",
         ">= 20x", status(None if ratio is None else ratio >= 20)),
        ("BentoML", f"bentoml {bento['version']} serve req/s, p99 ms" if bento else "bentoml",
         "n/a" if not bento else f"{bento['rps']:,.0f}, {bento['p99']:.0f}", "", ""),
        ("BentoML", "driftline / bentoml req/s (/predict)",
         "n/a" if bento_ratio is None else f"{bento_ratio:.1f}x", "> 1x",
         status(None if bento_ratio is None else bento_ratio > 1)),
        ("Routing 16 conn", "50/50 canary req/s (vs single)",
         f"{canary['rps']:,.0f} ({canary['rps'] / lr['rps']:.0%})", "", ""),
        ("Routing 16 conn", "shadow on req/s (vs single)",
         f"{shadow['rps']:,.0f} ({shadow['rps'] / lr['rps']:.0%})", "", ""),
        ("Routing 16 conn", "canary / shadow p99 ms",
         f"{canary['p99']:.1f} / {shadow['p99']:.1f}", "", ""),
        ("Routing 16 conn", "failed responses", str(canary["failed"] + shadow["failed"]), "0",
         status(canary["failed"] + shadow["failed"] == 0)),
        ("RF(100) 64 conn", "unbatched req/s", f"{rf['rps']:,.0f}", "", ""),
        ("RF(100) 64 conn", "batched (64 / 5 ms) req/s", f"{rfb['rps']:,.0f}", ">= 1,000",
         status(rfb["rps"] >= 1000)),
        ("RF(100) 64 conn", "batched / unbatched", f"{rfb['rps'] / rf['rps']:.1f}x", ">= 5x",
         status(rfb["rps"] >= 5 * rf["rps"])),
        ("Overhead 1 conn", "served p50 - raw twin predict p50 ms",
         f"{one['p50']:.2f} - {r['twin_p50_ms']:.2f} = {overhead:.2f}", "< 1",
         status(overhead < 1)),
        ("Overhead 1 conn", "raw predict p50 ms: estimator (DataFrame) / twin",
         f"{r['raw_p50_ms']:.3f} / {r['twin_p50_ms']:.3f}", "", ""),
        ("Logging", "cost (on vs off req/s)",
         f"{cost:.1%} ({lr['rps']:,.0f} vs {nolog['rps']:,.0f})", "< 10 %", status(cost < 0.10)),
        ("Memory", "RSS of the worker MB", f"{r['rss_mb']:.0f}", "< 150",
         status(None if r["rss_mb"] != r["rss_mb"] else r["rss_mb"] < 150)),
    ]  # fmt: skip
    load = ", ".join(f"{v:.2f}" for v in r["load_average"])
    print_rows(
        f"driftline serve, {r['workers']} worker(s), wrk {r['seconds_per_run']} s per run "
        f"(load average at start: {load})",
        rows,
        notes,
    )


if __name__ == "__main__":
    sys.exit(main())
