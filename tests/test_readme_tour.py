"""The README's "A short tour", run as a reader follows it: top to bottom, in a fresh folder.

The Python blocks (and ``gates.yaml``) are taken from README.md itself, so the test fails
when a block stops working. They run in one fresh interpreter after a prelude that makes
only what a reader brings: a customers table, a picture and a folder of reports, a folder
of images, training arrays from the table and a new batch to validate. Then the
command-line block's read-only commands run against what the tour made.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

PRELUDE = """
import numpy as np
import pandas as pd
from pathlib import Path

def customers(n, seed):
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    calls = rng.poisson(1.5, n)
    spend = rng.normal(70, 20, n).round(2)
    risk = 2.0 - 0.08 * tenure + 0.9 * calls - 0.01 * spend
    return pd.DataFrame({
        "customer_id": np.arange(n),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "tenure": tenure,
        "support_calls": calls,
        "spend": spend,
        "churned": (rng.random(n) < 1 / (1 + np.exp(-risk))).astype("int64"),
    })

Path("data/images").mkdir(parents=True)
customers(400, seed=0).to_parquet("data/customers.parquet")
for name in ("cat.jpg", "dog.jpg"):
    Path("data/images", name).write_bytes(name.encode() * 100)
Path("confusion.png").write_bytes(b"\\x89PNG not really")
Path("reports").mkdir()
Path("reports/summary.html").write_text("<p>baseline</p>")

train = pd.read_parquet("data/customers.parquet")
X, y = train[["tenure", "support_calls", "spend"]], train["churned"]
new_df = customers(400, seed=1)
"""

# Commands of the command-line block that read what the tour made, or write only
# files here (reports, schemas); RUN_ID is the tour's first run. The others create
# things (init, commits, registrations), need a remote or a server, or were done in
# Python already.
READ_ONLY = (
    "experiments list",
    "runs list",
    "runs search",
    "runs show",
    "runs compare",
    "artifacts list",
    "artifacts get",
    "data log",
    "data diff",
    "data schema infer",
    "data validate",
    "data lineage",
    "gc --dry-run",
    "models evaluate",
    "models compare",
    "models card",
    "audit log",
    "audit verify",
)


def tour_section() -> str:
    """From "A short tour" to the end of its "The command line" (the server and the
    configuration that follow need a server or change settings)."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## A short tour\n")
    cli = text.index("\n### The command line\n", start)
    return text[start : text.index("\n#", cli + 1)]


def blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)


def commands(block: str) -> list[list[str]]:
    """The block's commands, continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A reader's environment: no driftline settings, no config file, this folder only."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    clean.update(
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        DRIFTLINE_HOME=str(tmp_path / ".driftline"),
    )
    return clean


@pytest.mark.slow
def test_the_tour_runs_top_to_bottom(tmp_path: Path, env: dict[str, str]) -> None:
    section = tour_section()
    python = blocks(section, "python")
    (gates,) = blocks(section, "yaml")
    (cli_block,) = blocks(section, "bash")
    assert len(python) == 3, "the tour's Python blocks changed; update this test"
    assert gates.startswith("# gates.yaml\n")
    (tmp_path / "gates.yaml").write_text(gates, encoding="utf-8")

    steps = [PRELUDE, *python, "print('FIRST_RUN=' + first_run)"]
    # The first block's run is the one with artifacts; later blocks rebind `run`.
    steps.insert(2, "first_run = run.id")
    script = "\n\n".join(textwrap.dedent(step) for step in steps)
    (tmp_path / "tour.py").write_text(script, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "tour.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    run_id = done.stdout.rsplit("FIRST_RUN=", 1)[1].strip()

    chosen = [
        [run_id if a == "RUN_ID" else a for a in argv[1:]]
        for argv in commands(cli_block)
        if argv[0] == "driftline" and " ".join(argv[1:]).startswith(READ_ONLY)
    ]
    # One interpreter runs them in turn, each as the console script would (its own
    # workspace, its exit code): a process per command would add a second each.
    runner = (
        "import json, sys\n"
        "from driftline.cli import main\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    print('COMMAND', json.dumps(argv), flush=True)\n"
        "    try:\n"
        "        main(argv)\n"
        "        code = 0\n"
        "    except SystemExit as exc:\n"
        "        code = exc.code if isinstance(exc.code, int) else 1\n"
        "    print('EXIT', code, flush=True)\n"
        "    if code:\n"
        "        sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", runner, json.dumps(chosen)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout[-4000:]}{result.stderr[-4000:]}"
    assert result.stdout.count("EXIT 0") == len(chosen)
    ran = [" ".join(argv[:2]) for argv in chosen]
    # The block must keep showing these (they are what a reader checks the tour with).
    for needed in ("runs list", "data log", "models card", "audit verify", "artifacts get"):
        assert needed in ran, f"`driftline {needed}` is no longer in the README's CLI block"
    assert (tmp_path / "reports" / "summary.html").read_text() == "<p>baseline</p>"
    assert (tmp_path / "run" / "reports" / "summary.html").exists()
    assert (tmp_path / "run" / "confusion.png").exists()
    assert (tmp_path / "card.html").exists()
