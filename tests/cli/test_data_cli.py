"""`driftline data ...` and `driftline gc` as a user drives them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli  # the runner fixture's type (tests/cli/conftest.py)


@pytest.fixture
def project(workdir: Path) -> Path:
    tmp_path = workdir
    (tmp_path / "images" / "cats").mkdir(parents=True)
    (tmp_path / "images" / "cats" / "1.jpg").write_bytes(b"cat-1")
    (tmp_path / "images" / "readme.txt").write_text("v1")
    return tmp_path


def test_commit_log_show_diff_tag_checkout(project: Path, cli: Cli) -> None:
    first = cli.json("data", "commit", "images", "images", "-m", "first", "-t", "v1")
    assert (first["number"], first["file_count"], first["tags"]) == (1, 2, ["v1"])
    (project / "images" / "readme.txt").write_text("v2!")
    (project / "images" / "cats" / "2.jpg").write_bytes(b"cat-2")
    second = cli.json("data", "commit", "images", "images")
    assert second["number"] == 2
    assert second["parent"] == 1

    history = cli.json("data", "log", "images")
    assert [v["number"] for v in history] == [2, 1]
    code, out, _ = cli("data", "log", "images")
    assert code == 0
    assert "images@1" in out
    assert "first" in out

    shown = cli.json("data", "show", "images@v1")
    assert [f["path"] for f in shown["files"]] == ["cats/1.jpg", "readme.txt"]

    changes = cli.json("data", "diff", "images@1", "images@2")
    assert {(c["kind"], c["path"]) for c in changes["files"]} == {
        ("added", "cats/2.jpg"),
        ("modified", "readme.txt"),
    }

    code, _, err = cli("data", "tag", "images@2", "v1")
    assert code == 1
    assert err.startswith("ConflictError: ")
    assert cli("data", "tag", "images@2", "gold")[0] == 0
    code, _, _ = cli("data", "checkout", "images@gold", "work")
    assert code == 0
    assert (project / "work" / "readme.txt").read_text() == "v2!"
    assert [d["name"] for d in cli.json("data", "list")] == ["images"]


def test_checkout_copies_by_default_and_hard_links_on_request(project: Path, cli: Cli) -> None:
    (project / "images" / "big.bin").write_bytes(os.urandom(2 << 20))  # stored loose
    assert cli("data", "commit", "images", "images")[0] == 0
    assert cli("data", "checkout", "images", "copied")[0] == 0
    assert cli("data", "checkout", "images", "linked", "--link", "hardlink")[0] == 0
    copied, linked = project / "copied" / "big.bin", project / "linked" / "big.bin"
    assert copied.read_bytes() == linked.read_bytes()
    assert copied.stat().st_nlink == 1
    assert linked.stat().st_nlink == 2  # the stored object and this checkout
    code, _, err = cli("data", "checkout", "images", "other", "--link", "symlink")
    assert code == 1
    assert "reflink, copy, hardlink" in err


def test_push_pull_and_gc(project: Path, cli: Cli) -> None:
    cli.json("data", "commit", "images", "images")
    remote = str(project / "remote")
    pushed = cli.json("data", "push", "--remote", remote)
    assert pushed["versions"] == ["images@1"]
    assert pushed["objects"] == 3  # two files and the manifest
    assert cli.json("data", "push", "--remote", remote)["objects"] == 0
    code, _, err = cli("data", "push")
    assert code == 1
    assert "No remote" in err

    other = project / "other"
    other.mkdir()
    code, out, err = cli("--home", str(other / ".driftline"), "data", "pull", "--remote", remote)
    assert code == 0, err
    assert "Pulled 1 versions" in out

    dry = cli.json("gc", "--dry-run", "--grace-hours", "0")
    assert dry["unreferenced"] == []
    assert dry["referenced"] >= 3
    # What a crashed write left behind goes once it is older than the grace period.
    crashed = project / ".driftline" / "artifacts" / ".tmp" / "tmp-crashed"
    crashed.write_bytes(b"half an object")
    os.utime(crashed, (time.time() - 7200,) * 2)
    code, out, _ = cli("gc", "--dry-run", "--grace-hours", "1")
    assert "Would delete 1 files left by interrupted writes (14 B)" in out
    assert ".tmp/tmp-crashed" in out
    assert crashed.exists()
    assert cli.json("gc", "--grace-hours", "1")["leftovers"] == [".tmp/tmp-crashed"]
    assert not crashed.exists()


def test_errors_name_the_problem(project: Path, cli: Cli) -> None:
    code, _, err = cli("data", "commit", "images", "nowhere")
    assert code == 1
    assert err.startswith("InvalidArgumentError: Cannot commit nowhere: no such file")
    cli.json("data", "commit", "images", "images")
    code, _, err = cli("data", "show", "imagse@1")
    assert code == 1
    assert err == "NotFoundError: No dataset named 'imagse'; did you mean 'images'?\n"
    code, _, err = cli("data", "profile", "images@1")
    assert code == 1
    assert "is not tabular" in err


def test_validate_takes_a_dataset_version_as_the_batch(workdir: Path, cli: Cli) -> None:
    import pandas as pd

    frame = pd.DataFrame({"customer_id": range(200), "spend": [float(i % 50) for i in range(200)]})
    frame.to_parquet(workdir / "customers.parquet")
    assert cli("data", "commit", "customers", "customers.parquet")[0] == 0
    frame.assign(spend=frame["spend"] + 1000).to_parquet(workdir / "customers.parquet")
    assert cli("data", "commit", "customers", "customers.parquet")[0] == 0
    schema = ("--schema", "customers.schema.yaml")
    assert cli("data", "schema", "infer", "customers@1", "-o", "customers.schema.yaml")[0] == 0

    code, out, err = cli("data", "validate", "customers@1", *schema, "--reference", "customers@1")
    assert code == 0, err
    assert "customers@1: 200 rows, validation passed" in out
    report = cli("data", "validate", "customers@2", *schema, "-r", "customers@1", "--json")
    assert report[0] == 1  # the shifted version fails: exit 1, a CI gate
    code, _, err = cli("data", "validate", "customers@3", *schema)
    assert code == 1
    assert err.startswith(
        "NotFoundError: Cannot read 'customers@3': it is no file or folder here, nor a "
        "dataset version (No version '3' of dataset customers"
    )


def test_lineage_tree(project: Path, cli: Cli) -> None:
    import driftline as dl

    dl.configure()
    try:
        raw = dl.data.commit("images", project / "images")
        with dl.start_run(experiment="prep"):
            dl.log_input(raw)
            dl.data.commit("thumbs", project / "images" / "cats")
    finally:
        from driftline import _fluent

        _fluent._at_exit()
    graph = cli.json("data", "lineage", "thumbs@1")
    assert graph["upstream"][1]["source"] == "data:images@1"
    code, out, _ = cli("data", "lineage", "images@1")
    assert code == 0
    assert "thumbs@1" in out


def test_an_unchanged_recommit_from_the_command_line_reads_no_file(project: Path) -> None:
    """Two real ``driftline data commit`` processes: the second trusts the stat cache.

    Root reads a chmod 000 file all the same, so the test changes a file's bytes in place
    and puts back its size and mtime (its inode is the same): a process that read the
    file would see new content and make version 2.
    """
    stamp = time.time_ns() - 10_000_000_000  # older than the racy window
    for file in (project / "images").rglob("*"):
        os.utime(file, ns=(stamp, stamp))

    argv = ["data", "commit", "images", "images"]

    def commit() -> str:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "driftline.cli", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
        assert not {"pandas", "pyarrow"} & imported  # a commit of plain files needs neither
        return done.stdout

    first = commit()
    assert first.startswith("images@1 ")
    assert "(unchanged)" not in first
    readme = project / "images" / "readme.txt"
    inode = readme.stat().st_ino
    with open(readme, "r+b") as handle:
        handle.write(b"XX")  # same size, same inode
    os.utime(readme, ns=(stamp, stamp))
    assert readme.stat().st_ino == inode
    again = commit()
    assert again.startswith("images@1 ")
    assert "2 files" in again
    assert again.rstrip().endswith("(unchanged)")
