"""Data-versions benchmark: hashing, commit and re-commit (vs DVC), table profile, validation.

Usage::

    python bench/data.py                 # full run: several minutes on 2 cores
    python bench/data.py --quick         # ~200 MiB set, 1M-row table: well under a minute
    python bench/data.py --json          # machine-readable results on stdout
    python bench/data.py --workdir DIR   # where generated data lives (reused across runs)
    python bench/data.py --dvc PATH      # the dvc executable to compare with

It measures, through driftline's public API:

1. ``driftline.core.hashing.hash_files`` over a mixed set (20 x 50 MiB + 10,000 x 100 KiB
   random files, ~2 GiB) with as many workers as ``driftline.data.scan.ingest`` uses;
2. the first commit of that set as a user types it, ``driftline data commit bench
   folder`` in a fresh process, and in process (``ws.data.commit("bench", folder)``),
   against ``dvc add`` of its own copy of the same set in a fresh ``git init`` +
   ``dvc init`` repository, in alternating rounds (three of each; the figures are
   medians);
3. re-committing the unchanged set, and an unchanged 10,000-file folder alone (through
   the ``driftline`` CLI and in process), and ``dvc add`` again, CLI and DVC alternating.

Workspace and repository creation (``driftline init``, ``git init`` + ``dvc init``) are
not timed; every CLI figure is a fresh process, as a user's command is.

The headline, printed first, is the CLI against ``dvc add``: users compare the
commands they type, so the targets (>= 5x ``dvc add`` for a first commit, < 0.5 s for
an unchanged re-commit) hold for the CLI; the in-process figures stand beside it.
4. committing a 10M-row x 20-column Parquet file (which profiles it) in a subprocess,
   with the subprocess's peak RSS from ``os.wait4``;
5. ``driftline.data.validation.validate`` of 1M rows x 20 columns against a 20-column
   schema inferred from a reference profile.

Generated inputs (the file set, the Parquet files) are written once into the work
folder and reused; every run works in a fresh ``run-*`` folder inside it (deleted at the
end) with its own copies of the set for driftline and for DVC. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from _report import print_rows  # bench/_report.py: python puts bench/ on sys.path

GIB = 1 << 30
MIB = 1 << 20
KIB = 1 << 10

# Targets: (figure key, comparison, threshold). Figures are in the units of the table.
TARGETS: dict[str, tuple[str, float]] = {
    "hash.gib_per_s": (">=", 1.0),
    "ratio.first_cli": (">=", 5.0),
    "recommit.driftline_cli.set_s": ("<", 0.5),
    "recommit.set_s": ("<", 0.2),
    "recommit.small_s": ("<", 0.2),
    "table.commit_s": ("<", 10.0),
    "table.peak_rss_mib": ("<", 2048),
    "validate.median_s": ("<", 2.0),
}


@dataclass(frozen=True)
class Sizes:
    big_files: int
    big_mib: int
    small_files: int
    small_kib: int
    table_rows: int
    validate_rows: int
    hash_passes: int
    first_rounds: int
    recommit_repeats: int
    cli_repeats: int
    validate_repeats: int

    @property
    def set_tag(self) -> str:
        return f"set-{self.big_files}x{self.big_mib}MiB-{self.small_files}x{self.small_kib}KiB"

    @property
    def set_bytes(self) -> int:
        return self.big_files * self.big_mib * MIB + self.small_files * self.small_kib * KIB


FULL = Sizes(
    big_files=20,
    big_mib=50,
    small_files=10_000,
    small_kib=100,
    table_rows=10_000_000,
    validate_rows=1_000_000,
    hash_passes=3,
    first_rounds=3,
    recommit_repeats=5,
    cli_repeats=5,
    validate_repeats=3,
)
QUICK = Sizes(
    big_files=2,
    big_mib=50,
    small_files=1_000,
    small_kib=100,
    table_rows=1_000_000,
    validate_rows=200_000,
    hash_passes=2,
    first_rounds=3,
    recommit_repeats=3,
    cli_repeats=3,
    validate_repeats=2,
)

ROW_GROUP = 1_000_000
TABLE_COLUMNS = 20


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


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


# -- generated inputs -------------------------------------------------------------------


def random_bytes(rng: Any, n: int) -> bytes:
    """``n`` incompressible bytes (PCG64 raw output: ~600 MiB/s, unlike ``rng.bytes``)."""
    words = (n + 7) // 8
    data: bytes = rng.bit_generator.random_raw(words).tobytes()[:n]
    return data


def ensure_file_set(workdir: Path, sizes: Sizes) -> Path:
    """The mixed set (``large/`` and ``small/``), generated once and reused."""
    import numpy as np

    final = workdir / sizes.set_tag
    if final.is_dir():
        progress(f"reusing {final.name}")
        return final
    partial = workdir / f"{sizes.set_tag}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "large").mkdir(parents=True)
    (partial / "small").mkdir(parents=True)
    progress(f"generating {final.name} ({sizes.set_bytes / GIB:.2f} GiB of random bytes)")
    rng = np.random.default_rng(20240601)
    for i in range(sizes.big_files):
        (partial / "large" / f"big-{i:03d}.bin").write_bytes(random_bytes(rng, sizes.big_mib * MIB))
    batch = 256
    size = sizes.small_kib * KIB
    for lo in range(0, sizes.small_files, batch):
        count = min(batch, sizes.small_files - lo)
        blob = random_bytes(rng, count * size)
        for j in range(count):
            (partial / "small" / f"f-{lo + j:05d}.bin").write_bytes(blob[j * size : (j + 1) * size])
    os.sync()
    partial.rename(final)
    return final


def table_batch(rng: Any, n: int, start: int = 0, drift: bool = False) -> Any:
    """``n`` rows x 20 columns: 8 float, 6 int and 6 low-cardinality string columns."""
    import numpy as np
    import pyarrow as pa

    cols: dict[str, Any] = {}
    for k in range(8):
        values = rng.normal(loc=10.0 * k, scale=1.0 + k, size=n)
        if drift and k == 0:
            values = values + 5.0  # five standard deviations
        mask = rng.random(n) < 0.01 if k == 1 else None
        cols[f"f{k:02d}"] = pa.array(values, mask=mask)
    cols["i00"] = pa.array(rng.integers(0, 1_000_000, size=n))
    cols["i01"] = pa.array(rng.poisson(3.0, size=n).astype(np.int64))
    cols["i02"] = pa.array(np.arange(start, start + n, dtype=np.int64))
    cols["i03"] = pa.array(rng.integers(-1000, 1000, size=n))
    cols["i04"] = pa.array(rng.integers(18, 91, size=n))
    cols["i05"] = pa.array(rng.integers(0, 2, size=n))
    categories = {
        "s00": [f"country_{c}" for c in range(20)],
        "s01": ["active", "churned", "trial", "paused", "closed"],
        "s02": ["bronze", "silver", "gold"],
        "s03": [f"city_{c:02d}" for c in range(50)],
        "s04": [f"product_{c}" for c in range(10)],
        "s05": [f"segment_{c:03d}" for c in range(100)],
    }
    for name, cats in categories.items():
        weights = 1.0 / np.arange(1, len(cats) + 1)  # Zipf-like: a few common values
        weights /= weights.sum()
        idx = rng.choice(len(cats), size=n, p=weights).astype(np.int32)
        mask = rng.random(n) < 0.005 if name == "s01" else None
        codes = pa.array(idx, mask=mask)
        cols[name] = pa.DictionaryArray.from_arrays(codes, pa.array(cats)).cast(pa.string())
    return pa.table(cols)


def ensure_parquet(path: Path, rows: int, seed: int) -> Path:
    """A Parquet file of ``rows`` rows in row groups of 1M, generated once and reused."""
    import numpy as np
    import pyarrow.parquet as pq

    if path.is_file():
        progress(f"reusing {path.name}")
        return path
    progress(f"generating {path.name} ({rows:,} rows x {TABLE_COLUMNS} columns)")
    partial = path.with_name(path.name + ".partial")
    rng = np.random.default_rng(seed)
    writer = None
    try:
        for lo in range(0, rows, ROW_GROUP):
            batch = table_batch(rng, min(ROW_GROUP, rows - lo), start=lo)
            if writer is None:
                writer = pq.ParquetWriter(partial, batch.schema, compression="snappy")
            writer.write_table(batch, row_group_size=ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()
    partial.rename(path)
    return path


# -- helpers --------------------------------------------------------------------------


def all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def copy_set(source: Path, dest: Path) -> float:
    """Copy a folder (contents and mtimes) to ``dest``; return seconds taken."""
    start = time.perf_counter()
    shutil.copytree(source, dest, copy_function=shutil.copy2)
    return time.perf_counter() - start


def warm(folder: Path) -> None:
    """Read every file under ``folder`` so it is in the page cache.

    Each tool commits a hot source: DVC's copy is made just before its round, and
    driftline's source would otherwise be evicted by the gigabytes the other rounds
    write (which made an earlier CLI figure a measure of the disk, not of driftline).
    """
    for path in all_files(folder):
        with open(path, "rb") as handle:
            while handle.read(16 * MIB):
                pass


def wait_not_racy(folder: Path, seconds: float = 2.1) -> None:
    """Sleep until every file under ``folder`` is older than driftline's racy window.

    ``scan.ingest`` does not cache the hash of a file modified < 2 s before it was read;
    copies keep their source's mtime, so this only waits right after generating the set.
    """
    newest = max(p.stat().st_mtime for p in all_files(folder))
    delay = newest + seconds - time.time()
    if delay > 0:
        time.sleep(delay)


def median(values: list[float]) -> float:
    return statistics.median(values)


def instrument(obj: Any, name: str, timings: dict[str, float], key: str) -> Callable[[], None]:
    """Time calls of ``obj.name`` (summed into ``timings[key]``) if it exists; return undo.

    The call itself is unchanged: this only brackets it with a clock.
    """
    original = getattr(obj, name, None)
    if original is None:
        return lambda: None

    def timed_call(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - start

    own = name in getattr(obj, "__dict__", {})
    setattr(obj, name, timed_call)
    return lambda: setattr(obj, name, original) if own else delattr(obj, name)


def open_workspace(home: Path) -> Any:
    from driftline.settings import Settings
    from driftline.workspace import Workspace

    return Workspace.from_settings(Settings.load(home=home, capture_environment=False))


def driftline_script() -> str | None:
    """The ``driftline`` console script of this interpreter (not a version-manager shim)."""
    scripts = Path(sys.executable).parent
    for name in ("driftline", "driftline.exe"):
        candidate = scripts / name
        if candidate.is_file():
            return str(candidate)
    return shutil.which("driftline")


def wall(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    """Wall time of a subprocess; raises with its output if it fails."""
    return wall_output(argv, cwd, env)[0]


def wall_output(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, str]:
    """Wall time and standard output of a subprocess; raises with its output if it fails."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout)[-2000:]}"
        )
    return elapsed, done.stdout


def cli_commit(script: str, home: Path, name: str, folder: Path, files: int) -> tuple[float, str]:
    """``driftline --home HOME data commit NAME FOLDER`` as a user types it: wall time and
    its one-line answer (checked to name the expected number of files)."""
    argv = [script, "--home", str(home), "data", "commit", name, str(folder)]
    home.parent.mkdir(parents=True, exist_ok=True)  # the project folder it runs in
    elapsed, out = wall_output(argv, home.parent)
    if f" {files} files," not in out:
        raise RuntimeError(f"{' '.join(argv)} answered {out!r}; expected {files} files")
    return elapsed, out.strip()


# -- 1. hashing ----------------------------------------------------------------------------


def bench_hashing(master: Path, sizes: Sizes, results: Results) -> None:

    from driftline.core.hashing import hash_files

    files = all_files(master)
    total = sum(p.stat().st_size for p in files)
    large = [p for p in files if p.parent.name == "large"]
    small = [p for p in files if p.parent.name == "small"]
    workers = min(8, 2 * (os.cpu_count() or 2))  # the pool size scan.ingest uses

    def one_pass(paths: list[Path]) -> float:
        start = time.perf_counter()
        digests = hash_files(paths, workers=workers)
        elapsed = time.perf_counter() - start
        if len({d for d, _ in digests}) != len(paths):
            raise RuntimeError("hash_files gave equal digests for different random files")
        return elapsed

    progress(f"hashing {len(files):,} files, {total / GIB:.2f} GiB: first pass (warms cache)")
    first = one_pass(files)
    passes = []
    for i in range(sizes.hash_passes):
        progress(f"hashing: timed pass {i + 1}/{sizes.hash_passes}")
        passes.append(one_pass(files))
    large_bytes = sum(p.stat().st_size for p in large)
    small_bytes = sum(p.stat().st_size for p in small)
    large_s = min(one_pass(large) for _ in range(2))
    small_s = min(one_pass(small) for _ in range(2))
    one_thread, all_threads = blake3_ceiling()
    results.set(
        "hash",
        {
            "files": len(files),
            "bytes": total,
            "workers": workers,
            "first_pass_s": first,
            "first_pass_gib_per_s": total / GIB / first,
            "passes_s": passes,
            "median_s": median(passes),
            "gib_per_s": total / GIB / median(passes),
            "large_gib_per_s": large_bytes / GIB / large_s,
            "small_gib_per_s": small_bytes / GIB / small_s,
            "small_files_per_s": len(small) / small_s,
            "blake3_memory_1_thread_gib_per_s": one_thread,
            "blake3_memory_all_threads_gib_per_s": all_threads,
        },
    )


def blake3_ceiling() -> tuple[float, float]:
    """GiB/s of BLAKE3 over 256 MiB already in memory: one thread, and all threads."""
    import blake3
    import numpy as np

    buf = random_bytes(np.random.default_rng(1), 256 * MIB)
    rates = []
    for threads in (1, blake3.blake3.AUTO):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            blake3.blake3(buf, max_threads=threads).digest()
            best = min(best, time.perf_counter() - start)
        rates.append(256 * MIB / GIB / best)
    return rates[0], rates[1]


# -- 2 and 3. commits: driftline ----------------------------------------------------------


def bench_first_commits(
    run: Path, master: Path, src: Path, sizes: Sizes, dvc: str | None, results: Results
) -> tuple[Path, Path | None]:
    """First commits of the set, driftline and ``dvc add`` in turn, several rounds each.

    Each round commits into a fresh driftline workspace and adds a fresh copy of the set
    in a fresh DVC repository; each tool's figure is the median of its rounds. One sample
    is not enough on a VM: the same commit took 1.6 s or 3.3 s here depending on how much
    memory the copies made just before it had claimed. Rounds alternate so both tools
    meet the same conditions. The last round's workspace and repository are kept for the
    re-commit figures; they are returned.
    """
    expected = sizes.big_files + sizes.small_files
    env = dvc_env()
    script = driftline_script()
    if script is None:
        results.note("the driftline CLI is not installed: no CLI figures")
    home = repo = None
    ours: list[float] = []
    cli: list[float] = []
    theirs: list[float] = []
    for i in range(sizes.first_rounds):
        last = i == sizes.first_rounds - 1
        if script is not None:
            cli_home = run / f"driftline-cli-first-{i}" / ".driftline"
            cli_home.parent.mkdir(parents=True)
            wall([script, "init"], cli_home.parent)  # not timed, as `dvc init` is not
            warm(src)
            progress(f"driftline CLI: first commit of the set (round {i + 1}/{sizes.first_rounds})")
            cli.append(cli_commit(script, cli_home, "bench", src, expected)[0])
            timed(os.sync)
            shutil.rmtree(cli_home.parent)
            os.sync()
        home = run / f"driftline-first-{i}" / ".driftline"
        warm(src)
        ws = open_workspace(home)
        try:
            progress(f"driftline: first commit of the set (round {i + 1}/{sizes.first_rounds})")
            elapsed, version = timed(partial(ws.data.commit, "bench", src))
        finally:
            ws.close()
        if version.file_count != expected or version.size != sizes.set_bytes:
            raise RuntimeError(f"committed {version.file_count} files, {version.size} bytes")
        ours.append(elapsed)
        sync_after_s = timed(os.sync)[0]  # not part of the figure: what is left to flush
        if not last:
            shutil.rmtree(home.parent)
            os.sync()  # the deletion's journal work done before the next tool's round
        if dvc is None:
            continue
        repo = run / f"dvc-first-{i}"
        dvc_repo(dvc, repo, env)
        copy_set(master, repo / "set")
        os.sync()
        progress(f"dvc: first add of the set (round {i + 1}/{sizes.first_rounds})")
        theirs.append(wall([dvc, "add", "set"], repo, env))
        dvc_sync_s = timed(os.sync)[0]  # not counted either: DVC does not fsync its cache
        if not last:
            shutil.rmtree(repo)
            os.sync()
    results.set(
        "first.driftline",
        {
            "s": median(ours),
            "runs_s": ours,
            "sync_after_s": sync_after_s,
            "gib_per_s": sizes.set_bytes / GIB / median(ours),
            "files": expected,
            "version": version.id,
        },
    )
    if cli:
        results.set(
            "first.driftline_cli",
            {"s": median(cli), "runs_s": cli, "gib_per_s": sizes.set_bytes / GIB / median(cli)},
        )
    if theirs:
        results.set(
            "first.dvc",
            {
                "s": median(theirs),
                "runs_s": theirs,
                "gib_per_s": sizes.set_bytes / GIB / median(theirs),
                "sync_after_s": dvc_sync_s,
            },
        )
    assert home is not None
    return home, repo


def bench_driftline_commits(home: Path, src: Path, sizes: Sizes, results: Results) -> None:
    """Re-commits of the set (into the workspace that committed it first) and of ``small/``."""
    ws = open_workspace(home)
    try:
        version = ws.data.get("bench@latest")
        progress("driftline: re-commits of the unchanged set")
        again = []
        for _ in range(sizes.recommit_repeats):
            elapsed, same = timed(lambda: ws.data.commit("bench", src))
            if same.id != version.id or same.number != version.number:
                raise RuntimeError("re-commit of unchanged data made a new version")
            again.append(elapsed)
        progress("driftline: first commit and re-commits of small/ alone")
        small_first_s, small = timed(lambda: ws.data.commit("bench-small", src / "small"))
        small_again = []
        for _ in range(sizes.recommit_repeats):
            elapsed, same = timed(lambda: ws.data.commit("bench-small", src / "small"))
            if same.id != small.id:
                raise RuntimeError("re-commit of unchanged data made a new version")
            small_again.append(elapsed)
    finally:
        ws.close()
    results.set(
        "recommit.driftline",
        {
            "set_runs_s": again,
            "set_s": median(again),
            "small_first_s": small_first_s,
            "small_runs_s": small_again,
            "small_s": median(small_again),
            "small_files": small.file_count,
        },
    )
    results.figures.setdefault("recommit", {})
    results.figures["recommit"]["set_s"] = median(again)
    results.figures["recommit"]["small_s"] = median(small_again)


def bench_recommit_cli(
    home: Path,
    src: Path,
    sizes: Sizes,
    dvc: str | None,
    repo: Path | None,
    small_repo: Path | None,
    results: Results,
) -> None:
    """Unchanged re-commits through the CLI (a fresh process each), alternating with
    ``dvc add`` of the same unchanged data, so both meet the same load."""
    script = driftline_script()
    if script is None:
        return
    env = dvc_env()
    peer = (dvc, repo, small_repo) if dvc and repo and small_repo else None
    if peer is not None:
        progress("dvc: first add of small/ alone (its own repository)")
        small_first = wall([peer[0], "add", "small"], peer[2], env)
        os.sync()
    expected = sizes.big_files + sizes.small_files
    set_runs: list[float] = []
    small_runs: list[float] = []
    dvc_set: list[float] = []
    dvc_small: list[float] = []
    answer = ""
    progress("driftline CLI and dvc add: re-commits of the unchanged set, in turn")
    for _ in range(sizes.cli_repeats):
        elapsed, answer = cli_commit(script, home, "bench", src, expected)
        set_runs.append(elapsed)
        if peer is not None:
            dvc_set.append(wall([peer[0], "add", "set"], peer[1], env))
    if results.figures["first.driftline"]["version"] not in answer:
        raise RuntimeError(f"the CLI re-commit of unchanged data answered {answer!r}")
    progress("driftline CLI and dvc add: re-commits of small/ alone, in turn")
    for _ in range(sizes.cli_repeats):
        small_runs.append(
            cli_commit(script, home, "bench-small", src / "small", sizes.small_files)[0]
        )
        if peer is not None:
            dvc_small.append(wall([peer[0], "add", "small"], peer[2], env))
    help_s = min(wall([script, "--help"], home.parent) for _ in range(3))
    results.set(
        "recommit.driftline_cli",
        {
            "set_s": median(set_runs),
            "set_runs_s": set_runs,
            "small_s": median(small_runs),
            "small_runs_s": small_runs,
            "help_s": help_s,
        },
    )
    if peer is not None:
        version_s = min(wall([peer[0], "--version"], peer[1], env) for _ in range(3))
        results.set(
            "recommit.dvc",
            {
                "set_s": median(dvc_set),
                "set_runs_s": dvc_set,
                "small_first_s": small_first,
                "small_s": median(dvc_small),
                "small_runs_s": dvc_small,
                "version_s": version_s,
            },
        )


# Runs the measured command as ITS child and reports that child's wait4 rusage. Linux
# carries a process's peak-RSS mark across exec, so a child forked straight from this
# (large) process would report at least this process's own peak; a grandchild forked
# from a small interpreter reports its own.
RSS_TRAMPOLINE = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_pid, status, usage = os.wait4(proc.pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as out:
    json.dump({"maxrss_kib": usage.ru_maxrss, "exit": code}, out)
sys.exit(code)
"""


def bench_table(table: Path, run: Path, sizes: Sizes, results: Results) -> None:
    """Commit (and so profile) the table in a subprocess; read its peak RSS via wait4."""
    home = run / "table-workspace" / ".driftline"
    with open(table, "rb") as handle:  # the same page-cache state on every run: hot
        while handle.read(16 * MIB):
            pass
    out, err, usage = run / "table-child.json", run / "table-child.err", run / "table-rss.json"
    child = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child-table",
        str(table),
        "--child-home",
        str(home),
        "--child-rows",
        str(sizes.table_rows),
    ]
    progress(f"table: commit + profile of {table.name} in a subprocess")
    start = time.perf_counter()
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        code = subprocess.call(
            [sys.executable, "-c", RSS_TRAMPOLINE, str(usage), *child], stdout=stdout, stderr=stderr
        )
    child_wall = time.perf_counter() - start
    if code != 0:
        tail = err.read_text(errors="replace").strip().splitlines()[-3:]
        results.note(f"table commit subprocess failed: {' | '.join(tail)}")
        results.set("table", {"error": " | ".join(tail)})
        return
    figures = json.loads(out.read_text())
    figures.update(
        {
            "peak_rss_mib": json.loads(usage.read_text())["maxrss_kib"] / 1024,  # KiB on Linux
            "process_wall_s": child_wall,
            "file_mib": table.stat().st_size / MIB,
        }
    )
    results.set("table", figures)


def proc_status_mib(field_name: str) -> float | None:
    """``VmRSS``/``VmHWM`` of this process in MiB (Linux), else ``None``."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child_table(table: Path, home: Path, rows: int) -> int:
    """Subprocess body: open a workspace, commit the table, print timings as JSON."""
    ws = open_workspace(home)
    timings: dict[str, float] = {}
    service = ws.data
    # Instrumentation only (the same calls, timed), where these internals exist.
    instrument(service, "_profile", timings, "profile_s")
    instrument(service.content, "sync", timings, "sync_s")
    rss_before = proc_status_mib("VmRSS")
    try:
        commit_s, version = timed(lambda: service.commit("table", table))
        profile = service.profile(version)
    finally:
        ws.close()
    print(
        json.dumps(
            {
                "commit_s": commit_s,
                "profile_s": timings.get("profile_s"),
                "sync_s": timings.get("sync_s"),
                "store_s": commit_s - timings["profile_s"] if "profile_s" in timings else None,
                "rss_before_commit_mib": rss_before,
                "vm_hwm_mib": proc_status_mib("VmHWM"),
                "tabular": version.tabular,
                "profile_rows": profile.rows,
                "profile_columns": len(profile.columns),
                "verified": bool(
                    version.tabular
                    and profile.rows == rows
                    and len(profile.columns) == TABLE_COLUMNS
                ),
            }
        )
    )
    return 0


# -- 2 and 3. commits: DVC -----------------------------------------------------------------


def find_dvc(explicit: str | None, workdir: Path) -> str | None:
    for candidate in (explicit, os.environ.get("DVC_BIN")):
        if candidate:
            return candidate
    on_path = shutil.which("dvc")
    if on_path:
        return on_path
    venv = workdir / "dvc-venv" / "bin" / "dvc"  # where bench/README.md says to install it
    return str(venv) if venv.is_file() else None


def dvc_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"})
    return env


def dvc_repo(dvc: str, repo: Path, env: dict[str, str]) -> None:
    """``git init`` + ``dvc init`` with analytics, autostage and update checks off.

    DVC keeps its hash cache (state) in a per-machine "site cache" folder keyed by the
    repository path; pointing it inside the fresh repository means no earlier run's
    hashes are reused.
    """
    repo.mkdir(parents=True, exist_ok=True)
    wall(["git", "init", "-q"], repo, env)
    wall([dvc, "init", "-q"], repo, env)
    for key, value in (
        ("core.analytics", "false"),
        ("core.autostage", "false"),
        ("core.check_update", "false"),
        ("core.site_cache_dir", str(repo / ".dvc-site-cache")),
    ):
        wall([dvc, "config", key, value], repo, env)
    (repo / ".gitignore").write_text("/.dvc-site-cache\n")


def dvc_version(dvc: str) -> str | None:
    try:
        done = subprocess.run(
            [dvc, "--version"], capture_output=True, text=True, env=dvc_env(), timeout=120
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# -- 5. validation ---------------------------------------------------------------------


def bench_validation(workdir: Path, sizes: Sizes, results: Results) -> None:
    import numpy as np

    try:
        from driftline.data.profile import profile_table
        from driftline.data.schema import infer_schema
        from driftline.data.validation import validate
    except ImportError as exc:
        results.note(f"validation skipped: {exc} (profile/schema/validation not there yet)")
        return
    reference = ensure_parquet(
        workdir / f"reference-{sizes.validate_rows}.parquet", sizes.validate_rows, seed=11
    )
    progress("validation: reference profile and schema (not timed)")
    profile_s, profile = timed(lambda: profile_table([str(reference)]))
    schema = infer_schema(profile)
    batch = table_batch(np.random.default_rng(12), sizes.validate_rows)
    drifted = table_batch(np.random.default_rng(13), sizes.validate_rows, drift=True)
    progress(f"validation: {sizes.validate_rows:,} rows x {TABLE_COLUMNS} columns")
    runs = []
    report = None
    for _ in range(sizes.validate_repeats + 1):  # the first one is the cold call
        elapsed, report = timed(lambda: validate(batch, schema=schema, reference=profile))
        runs.append(elapsed)
    drift_s, drift_report = timed(lambda: validate(drifted, schema=schema, reference=profile))
    flagged = sorted(
        {str(getattr(a, "column", None)) for a in getattr(drift_report, "anomalies", [])}
    )
    results.set(
        "validate",
        {
            "rows": sizes.validate_rows,
            "columns": TABLE_COLUMNS,
            "schema_columns": len(getattr(schema, "columns", [])),
            "reference_profile_s": profile_s,
            "cold_s": runs[0],
            "runs_s": runs[1:],
            "median_s": median(runs[1:]),
            "ok_same_distribution": bool(getattr(report, "ok", False)),
            "anomalies_same_distribution": [
                f"{getattr(a, 'column', '')}:{getattr(a, 'kind', '')}"
                for a in getattr(report, "anomalies", [])
            ][:10],
            "drifted_s": drift_s,
            "drift_flagged_f00": "f00" in flagged,
            "verified": "f00" in flagged,
            "drift_flagged_columns": flagged[:10],
        },
    )


# -- orchestration -------------------------------------------------------------------------


def run_commits(run: Path, master: Path, sizes: Sizes, dvc: str | None, results: Results) -> None:
    src = run / "driftline-src"
    progress("copying the set for driftline")
    copy_dl = copy_set(master, src)
    small_repo = None
    if dvc is not None:
        small_repo = run / "dvc-small-repo"
        dvc_repo(dvc, small_repo, dvc_env())
        progress("copying small/ for a second DVC repository")
        copy_set(master / "small", small_repo / "small")
    results.set("copies", {"driftline_s": copy_dl})
    progress("sync: every copy clean in the page cache before timing")
    os.sync()
    wait_not_racy(src)
    home, repo = bench_first_commits(run, master, src, sizes, dvc, results)
    if dvc is None:
        results.note("dvc not installed: skipped (pass --dvc PATH or set DVC_BIN)")
    bench_driftline_commits(home, src, sizes, results)
    os.sync()
    bench_recommit_cli(home, src, sizes, dvc, repo, small_repo, results)
    add_ratios(results.figures)


def add_ratios(figures: dict[str, Any]) -> None:
    first_dl = figures.get("first.driftline")
    first_cli = figures.get("first.driftline_cli")
    first_dvc = figures.get("first.dvc")
    if first_dl and first_dvc:
        figures["first.ratio"] = first_dvc["s"] / first_dl["s"]
    if first_cli and first_dvc:
        figures["ratio.first_cli"] = first_dvc["s"] / first_cli["s"]
    again_dvc = figures.get("recommit.dvc")
    again_dl = figures.get("recommit.driftline")
    cli = figures.get("recommit.driftline_cli")
    if again_dvc and again_dl:
        figures["ratio.recommit_set_api"] = again_dvc["set_s"] / again_dl["set_s"]
        figures["ratio.recommit_small_api"] = again_dvc["small_s"] / again_dl["small_s"]
    if again_dvc and cli:
        figures["ratio.recommit_set_cli"] = again_dvc["set_s"] / cli["set_s"]
        figures["ratio.recommit_small_cli"] = again_dvc["small_s"] / cli["small_s"]


# -- report -----------------------------------------------------------------------------


def lookup(figures: dict[str, Any], path: str) -> Any:
    if path in figures and not isinstance(figures[path], dict):
        return figures[path]
    head, _, leaf = path.rpartition(".")
    section = figures.get(head)
    if isinstance(section, dict):
        return section.get(leaf)
    return None


def verdict(path: str, value: Any) -> str:
    if path not in TARGETS:
        return ""
    if value is None:
        return "n/a"
    op, threshold = TARGETS[path]
    ok = value >= threshold if op == ">=" else value < threshold
    return "PASS" if ok else "MISS"


def fmt(value: Any, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value:,.3f} s" if value < 1 else f"{value:,.2f} s"
    if unit == "x":
        return f"{value:,.1f}x"
    if unit in ("GiB/s", "MiB"):
        return f"{value:,.2f} {unit}" if unit == "GiB/s" else f"{value:,.0f} {unit}"
    if isinstance(value, float):
        return f"{value:,.0f} {unit}".strip()
    return f"{value} {unit}".strip()


def runs_text(runs: list[float]) -> str:
    return " / ".join(f"{run:.2f}" for run in runs) + " s"


def target_text(path: str, unit: str) -> str:
    if path not in TARGETS:
        return ""
    op, threshold = TARGETS[path]
    shown = f"{threshold:g}" if unit != "MiB" else f"{threshold:,.0f}"
    return f"{op} {shown} {unit}"


def rows_for(figures: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    out: list[tuple[str, str, str, str, str]] = []

    def add(section: str, label: str, path: str, unit: str, value: Any = None) -> None:
        value = lookup(figures, path) if value is None else value
        out.append(
            (section, label, fmt(value, unit), target_text(path, unit), verdict(path, value))
        )

    def info(section: str, label: str, text: str, status: str = "") -> None:
        out.append((section, label, text, "", status))

    h = figures.get("hash")
    if h:
        sec = "Hashing"
        info(
            sec,
            f"set: {h['files']:,} files, {h['bytes'] / GIB:.2f} GiB, {h['workers']} threads",
            "",
        )
        add(
            sec,
            f"hash_files, median of {len(h['passes_s'])} warm passes",
            "hash.gib_per_s",
            "GiB/s",
        )
        add(sec, "  first pass", "hash.first_pass_gib_per_s", "GiB/s")
        add(sec, "  large files only (mmap + BLAKE3 threads)", "hash.large_gib_per_s", "GiB/s")
        add(sec, "  small files only", "hash.small_gib_per_s", "GiB/s")
        add(sec, "  small files only", "hash.small_files_per_s", "files/s")
        add(sec, "  BLAKE3 in memory, 1 thread", "hash.blake3_memory_1_thread_gib_per_s", "GiB/s")
        add(
            sec,
            "  BLAKE3 in memory, all threads",
            "hash.blake3_memory_all_threads_gib_per_s",
            "GiB/s",
        )
    dl = figures.get("first.driftline")
    if dl:
        sec = "First commit"
        cli = figures.get("first.driftline_cli")
        if cli:
            add(
                sec,
                "driftline data commit (CLI, fresh process), median",
                "first.driftline_cli.s",
                "s",
            )
            info(sec, "  rounds", runs_text(cli["runs_s"]))
            add(sec, "  throughput", "first.driftline_cli.gib_per_s", "GiB/s")
        add(sec, "driftline ws.data.commit (in process), median", "first.driftline.s", "s")
        info(sec, "  rounds", runs_text(dl["runs_s"]))
        add(sec, "  os.sync after it (not counted)", "first.driftline.sync_after_s", "s")
        add(sec, "  throughput", "first.driftline.gib_per_s", "GiB/s")
        dvc = figures.get("first.dvc")
        label = figures.get("dvc.version") or "dvc"
        if dvc:
            add(sec, f"dvc add ({label}), median", "first.dvc.s", "s")
            info(sec, "  rounds", runs_text(dvc["runs_s"]))
            add(sec, "  os.sync after it (not counted)", "first.dvc.sync_after_s", "s")
        else:
            info(sec, "dvc add", "skipped", "n/a")
        add(sec, "ratio dvc / driftline CLI", "ratio.first_cli", "x")
        add(sec, "ratio dvc / driftline in process", "first.ratio", "x")
    again = figures.get("recommit.driftline")
    if again:
        sec = "Re-commit"
        n_set = figures.get("hash", {}).get("files")
        cli = figures.get("recommit.driftline_cli")
        if cli:
            add(
                sec,
                f"driftline CLI, whole set ({n_set or '?'} files), median",
                "recommit.driftline_cli.set_s",
                "s",
            )
            info(sec, "  runs", runs_text(cli["set_runs_s"]))
            add(sec, "driftline CLI, small/ alone, median", "recommit.driftline_cli.small_s", "s")
            add(sec, "  driftline --help (start-up)", "recommit.driftline_cli.help_s", "s")
        add(sec, "driftline in process, whole set, median", "recommit.set_s", "s")
        add(
            sec,
            f"driftline in process, small/ alone ({again['small_files']:,} files), median",
            "recommit.small_s",
            "s",
        )
        add(sec, "  first commit of small/ alone", "recommit.driftline.small_first_s", "s")
        dvc = figures.get("recommit.dvc")
        if dvc:
            add(sec, "dvc add again, whole set, median", "recommit.dvc.set_s", "s")
            info(sec, "  runs", runs_text(dvc["set_runs_s"]))
            add(sec, "dvc add again, small/ alone, median", "recommit.dvc.small_s", "s")
            add(sec, "  dvc add small/ first time", "recommit.dvc.small_first_s", "s")
            add(sec, "  dvc --version (start-up)", "recommit.dvc.version_s", "s")
            if cli:
                add(sec, "ratio dvc / driftline CLI, set", "ratio.recommit_set_cli", "x")
                add(sec, "ratio dvc / driftline CLI, small/", "ratio.recommit_small_cli", "x")
            add(sec, "ratio dvc / driftline in process, set", "ratio.recommit_set_api", "x")
            add(sec, "ratio dvc / driftline in process, small/", "ratio.recommit_small_api", "x")
        else:
            info(sec, "dvc add again", "skipped", "n/a")
    t = figures.get("table")
    if t:
        sec = "Table"
        if "error" in t:
            info(sec, "commit + profile", "failed", "n/a")
        else:
            rows = f"{t['profile_rows']:,}" if t.get("profile_rows") else "?"
            add(
                sec,
                f"commit + profile, {rows} rows ({t['file_mib']:,.0f} MiB Parquet)",
                "table.commit_s",
                "s",
            )
            add(sec, "  of which profile", "table.profile_s", "s")
            add(sec, "  of which store (copy + hash)", "table.store_s", "s")
            if t.get("sync_s") is not None:
                add(sec, "  of which os.sync", "table.sync_s", "s")
            add(sec, "peak RSS of the subprocess", "table.peak_rss_mib", "MiB")
            add(sec, "  VmHWM the subprocess reports itself", "table.vm_hwm_mib", "MiB")
            add(sec, "  RSS before the commit (imports)", "table.rss_before_commit_mib", "MiB")
            info(
                sec,
                "  profile rows / columns checked",
                f"{rows} / {t.get('profile_columns')}",
                "ok" if t.get("verified") else "WRONG",
            )
    v = figures.get("validate")
    if v:
        sec = "Validation"
        add(
            sec,
            f"validate {v['rows']:,} rows x {v['columns']}, median of {len(v['runs_s'])}",
            "validate.median_s",
            "s",
        )
        add(sec, "  first call in the process", "validate.cold_s", "s")
        add(sec, "  reference profile (not timed)", "validate.reference_profile_s", "s")
        info(sec, "  same distribution passes", "yes" if v["ok_same_distribution"] else "NO")
        info(
            sec,
            "  5-sigma shift of f00 flagged",
            "yes" if v["drift_flagged_f00"] else "NO",
            "ok" if v["drift_flagged_f00"] else "WRONG",
        )
    return out


def headline(figures: dict[str, Any]) -> list[str]:
    """The commands users type, against ``dvc add``, with the in-process figures beside."""
    first_cli = lookup(figures, "first.driftline_cli.s")
    again_cli = lookup(figures, "recommit.driftline_cli.set_s")
    if first_cli is None or again_cli is None:
        return []
    dvc_first = lookup(figures, "first.dvc.s")
    dvc_again = lookup(figures, "recommit.dvc.set_s")

    def versus(ours: float, theirs: float | None, in_process: float) -> str:
        peer = f" vs dvc add {theirs:.2f} s = {theirs / ours:.1f}x" if theirs else ""
        return f"{ours:.2f} s{peer} (in process {in_process:.2f} s)"

    ratio = lookup(figures, "ratio.first_cli")
    return [
        "driftline data commit (CLI, fresh process) against dvc add, medians:",
        f"  first commit:       {versus(first_cli, dvc_first, figures['first.driftline']['s'])}"
        f"  target >= 5x: {verdict('ratio.first_cli', ratio) or 'n/a'}",
        f"  unchanged re-commit: {versus(again_cli, dvc_again, figures['recommit']['set_s'])}"
        f"  target < 0.5 s: {verdict('recommit.driftline_cli.set_s', again_cli)}",
    ]


def print_table(results: Results, header: str) -> None:
    for line in headline(results.figures):
        print(line)
    print_rows(header, rows_for(results.figures), results.notes, label_width=52, width=130)


# -- main ---------------------------------------------------------------------------------


def check_workdir(workdir: Path) -> None:
    repo_root = Path(__file__).resolve().parents[1]
    resolved = workdir.resolve()
    if resolved == repo_root or repo_root in resolved.parents:
        raise SystemExit(f"--workdir {workdir} is inside the repository; pick a folder outside it")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data: well under a minute")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "driftline-bench-data",
        help="generated data (reused) and per-run scratch (default: <tmp>/driftline-bench-data)",
    )
    parser.add_argument(
        "--dvc", help="dvc executable (default: $DVC_BIN, dvc on PATH, <workdir>/dvc-venv/bin/dvc)"
    )
    parser.add_argument("--keep-run", action="store_true", help="keep the run-* scratch folder")
    parser.add_argument("--child-table", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_table is not None:
        return child_table(args.child_table, args.child_home, args.child_rows)

    import driftline

    sizes = QUICK if args.quick else FULL
    workdir: Path = args.workdir.absolute()
    check_workdir(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    results = Results()
    results.set("mode", "quick" if args.quick else "full")
    load_start = os.getloadavg()
    results.set(
        "machine",
        {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "driftline": driftline.__version__,
            "load_at_start": [round(x, 2) for x in load_start],
        },
    )
    if sys.flags.dont_write_bytecode:
        results.note(
            "PYTHONDONTWRITEBYTECODE is set: CLI processes compile modules that have no "
            "cached bytecode yet, on every call"
        )
    if load_start[0] > 1.5:
        results.note(f"load average {load_start[0]:.2f} at start: other work shares the cores")
    free = shutil.disk_usage(workdir).free
    need = int(sizes.set_bytes * 7.5) + sizes.table_rows * 250
    if free < need:
        raise SystemExit(
            f"{workdir} has {free / GIB:.1f} GiB free; this run needs about {need / GIB:.0f} GiB"
        )
    dvc = find_dvc(args.dvc, workdir)
    if dvc is not None:
        version = dvc_version(dvc)
        if version is None:
            results.note(f"{dvc} --version failed: DVC skipped")
            dvc = None
        else:
            results.set("dvc.version", f"dvc {version}")
    began = time.perf_counter()
    run = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    try:
        master = ensure_file_set(workdir, sizes)
        table = ensure_parquet(workdir / f"table-{sizes.table_rows}.parquet", sizes.table_rows, 7)
        bench_hashing(master, sizes, results)
        run_commits(run, master, sizes, dvc, results)
        bench_table(table, run, sizes, results)
        bench_validation(workdir, sizes, results)
    finally:
        if args.keep_run:
            progress(f"kept {run}")
        else:
            shutil.rmtree(run, ignore_errors=True)
    results.set("elapsed_s", time.perf_counter() - began)
    results.figures["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    targets = {
        path: {
            "target": f"{op} {threshold}",
            "value": lookup(results.figures, path),
            "status": verdict(path, lookup(results.figures, path)),
        }
        for path, (op, threshold) in TARGETS.items()
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
                    "headline": headline(results.figures),
                    "targets": targets,
                    "verified": verified,
                    "notes": results.notes,
                },
                indent=2,
            )
        )
    else:
        load = results.figures["machine"]
        header = (
            f"driftline data benchmark ({results.figures['mode']}, {os.cpu_count()} cores, "
            f"{results.figures['elapsed_s']:.0f} s, load {load['load_at_start'][0]:.2f} -> "
            f"{load['load_at_end'][0]:.2f})"
        )
        print_table(results, header)
    return 0 if verified else 1


if __name__ == "__main__":
    sys.exit(main())
