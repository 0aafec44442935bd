"""Pipeline overheads: a 100-step chain in process, its fully cached re-run, deciding a
hit for a step with a large input, and ``driftline pipelines run`` in a fresh process;
with Kedro / Prefect side by side when their virtualenvs exist.

    python bench/pipelines.py [--quick] [--json] [--steps 100] [--no-ray]

With Ray installed (``pip install 'driftline[ray]'``) it also runs the chain as Ray
tasks on a local 2-CPU Ray, timed after Ray is up and its workers have started.

Peers run in their own virtualenvs (``.venvs/kedro``, ``.venvs/prefect``, or
``--kedro-python`` / ``--prefect-python``) on the same chain of trivial steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

CHAIN = """
import driftline as dl

@dl.step
def inc(x: int) -> int:
    return x + 1

@dl.pipeline
def chain(n: int = {n}):
    x = inc(0)
    for _ in range(n - 1):
        x = inc(x)
    return x
"""

BIG = """
import driftline as dl

@dl.step(pickle=True)
def big(size: int) -> bytes:
    return b"x" * size

@dl.step
def length(data: bytes) -> int:
    return len(data)

@dl.pipeline
def large(size: int = 1):
    return length(big(size))
"""

KEDRO = """
import time
from kedro.pipeline import node, pipeline
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

def inc(x):
    return x + 1

N = {n}
nodes = [node(inc, "x0" if i == 0 else f"x{{i}}", f"x{{i + 1}}", name=f"n{{i}}") for i in range(N)]
catalog = DataCatalog({{"x0": MemoryDataset(0)}})
start = time.perf_counter()
SequentialRunner().run(pipeline(nodes), catalog)
print(time.perf_counter() - start)
"""

PREFECT = """
import time
from prefect import flow, task

@task
def inc(x):
    return x + 1

@flow
def chain(n):
    x = 0
    for _ in range(n):
        x = inc(x)
    return x

chain(2)  # first start (server, database) is not what we compare
start = time.perf_counter()
chain({n})
print(time.perf_counter() - start)
"""


def _work_seconds(n: int) -> float:
    """What the chain's steps themselves cost (the function calls)."""

    def inc(x: int) -> int:
        return x + 1

    start = time.perf_counter()
    x = 0
    for _ in range(n):
        x = inc(x)
    return time.perf_counter() - start


def _peer(python: str | None, script: str, n: int) -> float | None:
    if not python or not Path(python).exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "peer.py"
        path.write_text(textwrap.dedent(script.format(n=n)))
        done = subprocess.run(
            [python, str(path)], cwd=tmp, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return None
        return float(done.stdout.strip().splitlines()[-1])


def _agent_once(tmp: Path, env: dict[str, str], repeat: int = 5) -> tuple[float, float]:
    """``driftline agent --once`` with a schedule and a dataset trigger, nothing due:
    the median wall time and CPU time (user + system) of a fresh process."""
    import resource
    import statistics

    import pandas as pd

    import driftline as dl
    from driftline.pipelines.automation import Automation

    auto = Automation.for_workspace(dl.get_workspace())
    auto.workspace.data.commit("bench_customers", pd.DataFrame({"x": [1, 2, 3]}))
    auto.create_schedule("bench-nightly", "chain", cron="0 3 * * *", module="bench_chain")
    auto.create_trigger("bench-new-data", "chain", on_dataset="bench_customers")
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "driftline.cli", "agent", "--once"],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        assert "Nothing was due" in done.stdout, done.stdout + done.stderr
    return statistics.median(walls), statistics.median(cpus)


def _ray(bench_chain: Any, n: int) -> dict[str, float] | None:
    """The chain as Ray tasks on a local 2-CPU Ray: start-up, then a forced run."""
    try:
        import ray
    except ImportError:
        return None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    up = time.perf_counter() - start
    try:
        bench_chain.chain.run(n=2, executor="ray", force=True)  # the workers start
        start = time.perf_counter()
        done = bench_chain.chain.run(executor="ray", force=True)
        seconds = time.perf_counter() - start
        assert done.result == n
    finally:
        ray.shutdown()
    return {"ray_start_s": up, "ray_chain_s": seconds, "ray_per_step_ms": seconds / n * 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--kedro-python", default=".venvs/kedro/bin/python")
    parser.add_argument("--prefect-python", default=".venvs/prefect/bin/python")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray figures")
    args = parser.parse_args()
    # The run moves into a temporary workspace: peer interpreters are found from here.
    args.kedro_python = str(Path(args.kedro_python).absolute())
    args.prefect_python = str(Path(args.prefect_python).absolute())
    n = 20 if args.quick else args.steps
    big = 16 if args.quick else args.big_mib

    import driftline as dl

    tmp = Path(tempfile.mkdtemp(prefix="driftline-bench-pipelines-"))
    (tmp / "bench_chain.py").write_text(textwrap.dedent(CHAIN.format(n=n)))
    (tmp / "bench_big.py").write_text(textwrap.dedent(BIG))
    sys.path.insert(0, str(tmp))
    os.chdir(tmp)
    dl.configure(
        home=tmp / ".driftline",
        uri=f"sqlite:///{tmp / '.driftline' / 'driftline.db'}",
        artifact_root=str(tmp / ".driftline" / "artifacts"),
        capture_environment=False,
    )
    import bench_big
    import bench_chain

    work = _work_seconds(n)
    # What a process pays once (opening and creating the database, first imports) is
    # not per-step overhead: a two-step pipeline of its own pays it first.
    start = time.perf_counter()
    bench_big.large.run(size=1)
    first_use = time.perf_counter() - start
    start = time.perf_counter()
    first = bench_chain.chain.run()
    cold = time.perf_counter() - start
    assert first.result == n
    start = time.perf_counter()
    cached = bench_chain.chain.run()
    warm = time.perf_counter() - start
    assert {s.status.value for s in cached.record.steps} == {"CACHED"}

    # A step whose input is large: the key uses the digest stored with the upstream
    # output, so deciding the hit reads no input bytes (only the step's small output is
    # re-verified).
    size = big << 20
    bench_big.large.run(size=size)
    start = time.perf_counter()
    again = bench_big.large.run(size=size)
    whole = time.perf_counter() - start
    assert again.record.step("length").cache.hit
    from driftline.pipelines.service import PipelineService

    service = PipelineService(dl.get_workspace())
    history = service.list_runs("large", 20)
    from driftline.pipelines.scheduler import Scheduler

    graph = bench_big.large.graph(size=size)
    scheduler = Scheduler(service, graph, history, "bench", "large", False, None)  # type: ignore[arg-type]
    scheduler.steps["big"] = again.record.step("big")
    start = time.perf_counter()
    scheduler._decide("length")
    decide_ms = (time.perf_counter() - start) * 1000
    assert scheduler.steps["length"].cache.hit  # type: ignore[union-attr]

    env = {**os.environ, "DRIFTLINE_HOME": str(tmp / ".driftline")}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "pipelines", "run", "chain",
         "--module", "bench_chain"],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    cli = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)

    agent_wall, agent_cpu = _agent_once(tmp, env)
    ray_figures = None if args.no_ray else _ray(bench_chain, n)

    per_step = (cold - work) / n * 1000
    kedro = _peer(args.kedro_python, KEDRO, n)
    prefect = _peer(args.prefect_python, PREFECT, n)
    figures = {
        "steps": n,
        "per_step_overhead_ms": per_step,
        "first_use_s": first_use,
        "cached_rerun_s": warm,
        "cached_per_step_ms": warm / n * 1000,
        "decide_hit_large_input_ms": decide_ms,
        "large_input_mib": big,
        "large_rerun_s": whole,
        "cli_run_cached_s": cli,
        "agent_once_idle_s": agent_wall,
        "agent_once_idle_cpu_s": agent_cpu,
        "kedro_per_step_ms": None if kedro is None else kedro / n * 1000,
        "prefect_per_step_ms": None if prefect is None else prefect / n * 1000,
        **(ray_figures or {}),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    from _report import print_rows

    def status(value: float, target: float) -> str:
        return "PASS" if value < target else "MISS"

    rows = [
        ("in process", f"per-step overhead ({n}-step chain)", f"{per_step:.1f} ms",
         "< 2 ms", status(per_step, 2)),
        ("in process", "first pipeline run of the process (2 steps)", f"{first_use:.2f} s",
         "", ""),
        ("in process", "fully cached re-run", f"{warm:.3f} s", "< 0.5 s", status(warm, 0.5)),
        ("in process", f"decide a hit, {big} MiB input", f"{decide_ms:.2f} ms", "< 10 ms",
         status(decide_ms, 10)),
        ("CLI", "`driftline pipelines run` (cached, fresh process)", f"{cli:.2f} s", "", ""),
        ("CLI", "`driftline agent --once`, nothing due (wall)", f"{agent_wall:.2f} s",
         "< 1 s", status(agent_wall, 1)),
        ("CLI", "`driftline agent --once`, nothing due (CPU)", f"{agent_cpu:.2f} s", "", ""),
    ]  # fmt: skip
    if ray_figures is not None:
        ray_s = ray_figures["ray_chain_s"]
        rows += [
            ("Ray (local, 2 CPUs)", "start Ray", f"{ray_figures['ray_start_s']:.1f} s", "", ""),
            ("Ray (local, 2 CPUs)", f"{n} trivial steps, Ray up", f"{ray_s:.2f} s",
             "< 5 s", status(ray_s, 5)),
        ]  # fmt: skip
    for name, value in (("Kedro", figures["kedro_per_step_ms"]),
                        ("Prefect 3", figures["prefect_per_step_ms"])):  # fmt: skip
        if value is None:
            rows.append(("peers", f"{name} per-step overhead", "n/a", "", "n/a"))
        else:
            rows.append(("peers", f"{name} per-step overhead", f"{value:.1f} ms",
                         f"driftline x{per_step / value:.2f}", ""))  # fmt: skip
    notes = [
        "The per-step overhead includes starting and ending one nested tracking run per "
        "executed step (SQLite file, one transaction each): that is most of it.",
        "The machine is shared with other work right now: figures are noisy.",
    ]
    print_rows("Pipelines", rows, notes, label_width=48)
    return 0


if __name__ == "__main__":
    sys.exit(main())
