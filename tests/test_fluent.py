"""The module-level API (``dl.start_run``, ``dl.log_metric``, ...) over the default workspace."""

from __future__ import annotations

import asyncio
import math
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import driftline as dl
from driftline.errors import ConflictError, InvalidArgumentError, NotFoundError
from driftline.tracking import RunStatus
from driftline.workspace import Workspace


@pytest.fixture(params=["embedded", pytest.param("http", marks=pytest.mark.server)])
def configure_default(
    request: pytest.FixtureRequest, configure_default: Callable[..., Workspace]
) -> Callable[..., Workspace]:
    """The shared fixture, once embedded and once against a live server (``uri`` = its URL)."""
    if request.param == "embedded":
        return configure_default
    server = request.getfixturevalue("live_server")
    server.reset()

    def configure(**overrides: object) -> Workspace:
        return configure_default(**{"uri": server.url, **overrides})

    return configure


def test_configure_opens_the_default_workspace_and_replaces_it(
    configure_default: Callable[..., Workspace], tmp_path: Path
) -> None:
    first = configure_default()
    assert dl.get_workspace() is first
    second = configure_default(uri=f"sqlite:///{tmp_path / 'other.db'}")
    assert dl.get_workspace() is second is not first
    dl.create_experiment("only-in-second")
    with pytest.raises(NotFoundError):
        first.tracking.get_experiment("only-in-second")  # the first database never saw it


def test_the_default_workspace_comes_from_settings_when_not_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "envhome"))
    monkeypatch.setenv("DRIFTLINE_CAPTURE_ENVIRONMENT", "false")
    with dl.start_run(experiment="lazy") as run:
        dl.log_metric("m", 1.0)
    assert (tmp_path / "envhome" / "driftline.db").is_file()
    assert dl.get_run(run.id).metrics == {"m": 1.0}
    assert dl.get_workspace().settings.home == tmp_path / "envhome"


def test_logging_without_an_active_run_says_what_to_do(
    configure_default: Callable[..., Workspace],
) -> None:
    configure_default()
    for call in (
        lambda: dl.log_metric("m", 1.0),
        lambda: dl.log_param("p", 1),
        lambda: dl.set_tag("t", "v"),
        lambda: dl.log_metrics({"m": 1.0}),
    ):
        with pytest.raises(InvalidArgumentError, match="start_run"):
            call()
    assert dl.end_run() is None
    assert dl.active_run() is None


def test_the_whole_logging_api_round_trips(
    configure_default: Callable[..., Workspace], tmp_path: Path
) -> None:
    configure_default()
    experiment = dl.create_experiment("churn", description="who leaves", tags={"team": "risk"})
    assert dl.get_experiment("churn") == experiment
    (tmp_path / "files" / "sub").mkdir(parents=True)
    (tmp_path / "files" / "a.txt").write_text("A")
    (tmp_path / "files" / "sub" / "b.txt").write_text("B")
    with dl.start_run(experiment="churn", name="lr", tags={"owner": "ana"}) as run:
        assert dl.active_run() is run
        dl.log_param("C", 1.0)
        dl.log_params({"penalty": "l2"})
        dl.log_metric("loss", 0.5)
        dl.log_metric("loss", 0.25)
        dl.log_metrics({"auc": 0.8, "nan": math.nan}, step=3)
        dl.set_tag("stage", "dev")
        dl.set_tags({"stage": "prod"})
        single = dl.log_artifact(tmp_path / "files" / "a.txt", artifact_path="docs")
        many = dl.log_artifacts(tmp_path / "files", artifact_path="all")
        named = dl.log_artifacts(tmp_path / "files")
        at_root = dl.log_artifacts(tmp_path / "files", artifact_path="")
    assert single.path == "docs/a.txt"
    assert sorted(e.path for e in many) == ["all/a.txt", "all/sub/b.txt"]
    assert sorted(e.path for e in named) == ["files/a.txt", "files/sub/b.txt"]
    assert sorted(e.path for e in at_root) == ["a.txt", "sub/b.txt"]
    stored = dl.get_run(run.id)
    assert stored.name == "lr"
    assert stored.experiment_id == experiment.id
    assert stored.status is RunStatus.FINISHED
    assert stored.params == {"C": "1.0", "penalty": "l2"}
    assert stored.metrics["loss"] == 0.25
    assert stored.metrics["auc"] == 0.8
    assert math.isnan(stored.metrics["nan"])
    assert stored.tags == {"owner": "ana", "stage": "prod"}
    assert [p.step for p in dl.get_metric_history(run.id, "loss")] == [0, 1]
    page = dl.search_runs(experiment="churn", filter="metrics.auc > 0.5", order_by="metrics.auc")
    assert [r.id for r in page] == [run.id]


def test_search_and_get_see_what_was_just_logged(
    configure_default: Callable[..., Workspace],
) -> None:
    configure_default(async_logging=True, flush_interval=600)  # writes only when flushed
    run = dl.start_run(experiment="e")
    dl.log_metric("auc", 0.9)
    assert [r.id for r in dl.search_runs(filter="metrics.auc > 0.5")] == [run.id]
    assert dl.get_run(run.id).metrics == {"auc": 0.9}
    assert dl.end_run().status is RunStatus.FINISHED  # type: ignore[union-attr]


def test_end_run_with_a_status(configure_default: Callable[..., Workspace]) -> None:
    configure_default()
    run = dl.start_run(experiment="e")
    ended = dl.end_run("KILLED")
    assert ended is not None
    assert ended.status is RunStatus.KILLED
    assert dl.active_run() is None
    assert dl.get_run(run.id).status is RunStatus.KILLED


def test_a_run_started_inside_another_is_its_child(
    configure_default: Callable[..., Workspace],
) -> None:
    configure_default()
    with dl.start_run(experiment="sweep", name="parent") as parent:
        with dl.start_run(name="trial-1") as child:
            assert dl.active_run() is child
            dl.log_metric("m", 1.0)
        assert dl.active_run() is parent
        with dl.start_run(name="trial-2", parent_id=None) as second:
            pass
    assert dl.active_run() is None
    assert dl.get_run(child.id).parent_id == parent.id
    assert dl.get_run(second.id).parent_id == parent.id
    assert dl.get_run(parent.id).parent_id is None
    assert dl.get_run(child.id).metrics == {"m": 1.0}
    assert dl.get_run(parent.id).metrics == {}


def test_resuming_a_run(configure_default: Callable[..., Workspace]) -> None:
    configure_default()
    first = dl.start_run(experiment="e")
    dl.log_param("C", "1")
    dl.end_run()
    with pytest.raises(ConflictError, match="FINISHED"):
        dl.start_run(run_id=first.id)
    open_run = dl.get_workspace().tracking.create_run("e")
    with dl.start_run(run_id=open_run.id) as resumed:
        assert resumed.id == open_run.id
        dl.log_metric("m", 2.0)
    assert dl.get_run(open_run.id).status is RunStatus.FINISHED
    with pytest.raises(NotFoundError):
        dl.start_run(run_id="0" * 32)


def test_each_thread_has_its_own_active_run(configure_default: Callable[..., Workspace]) -> None:
    configure_default()
    seen: dict[str, object] = {}

    def other_thread() -> None:
        seen["active"] = dl.active_run()
        try:
            dl.log_metric("m", 1.0)
        except InvalidArgumentError as exc:
            seen["error"] = exc
        with dl.start_run(experiment="e", name="thread") as run:
            dl.log_metric("m", 2.0)
        seen["run"] = run

    with dl.start_run(experiment="e", name="main") as main:
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        dl.log_metric("m", 1.0)
    assert seen["active"] is None
    assert isinstance(seen["error"], InvalidArgumentError)
    thread_run = dl.get_run(seen["run"].id)  # type: ignore[attr-defined]
    assert thread_run.parent_id is None  # not a child of the main thread's run
    assert thread_run.metrics == {"m": 2.0}
    assert dl.get_run(main.id).metrics == {"m": 1.0}


def test_each_asyncio_task_has_its_own_active_run(
    configure_default: Callable[..., Workspace],
) -> None:
    configure_default()

    async def train(name: str, value: float) -> str:
        with dl.start_run(experiment="e", name=name) as run:
            for _ in range(3):
                dl.log_metric("m", value)
                await asyncio.sleep(0)  # let the other task run in between
        return run.id

    async def main() -> list[str]:
        return list(await asyncio.gather(train("a", 1.0), train("b", 2.0)))

    first, second = asyncio.run(main())
    for run_id, value in ((first, 1.0), (second, 2.0)):
        stored = dl.get_run(run_id)
        assert stored.parent_id is None
        assert [p.value for p in dl.get_metric_history(run_id, "m")] == [value] * 3


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_runs_capture_their_source(
    configure_default: Callable[..., Workspace], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=repo,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('v1')\n")
    git("add", "train.py")
    git("commit", "-q", "-m", "first")
    (repo / "train.py").write_text("print('v2')\n")  # uncommitted change
    commit = git("rev-parse", "HEAD")
    monkeypatch.chdir(repo)
    configure_default(capture_environment=True)
    with dl.start_run(experiment="e") as run:
        pass
    stored = dl.get_run(run.id)
    assert stored.code.commit == commit
    assert stored.code.branch == "main"
    assert stored.code.dirty is True
    assert stored.code.command
    assert stored.tags["driftline.python"].count(".") == 2
    assert stored.user_tags == {}
    paths = [e.path for e in dl.get_workspace().tracking.list_artifacts(run.id)]
    assert paths == ["_driftline/git.diff", "_driftline/requirements.txt"]
    out = tmp_path / "diff"
    dl.get_workspace().tracking.download_artifacts(run.id, "_driftline/git.diff", out)
    assert "+print('v2')" in (out / "git.diff").read_text()


def test_runs_started_here_get_heartbeats_until_they_end(
    configure_default: Callable[..., Workspace],
) -> None:
    ws = configure_default()
    with dl.start_run(experiment="e") as run:
        assert ws.live_runs() == [run.id]
    assert ws.live_runs() == []


def test_outside_git_only_the_process_is_captured(
    configure_default: Callable[..., Workspace], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # never find a repo above
    configure_default(capture_environment=True)
    with dl.start_run(experiment="e") as run:
        pass
    stored = dl.get_run(run.id)
    assert stored.code.commit is None
    assert stored.code.dirty is None
    assert {"driftline.python", "driftline.platform", "driftline.source.command"} <= set(
        stored.tags
    )
    entries = dl.get_workspace().tracking.list_artifacts(run.id)
    assert [e.path for e in entries] == ["_driftline/requirements.txt"]
    out = tmp_path / "req"
    dl.get_workspace().tracking.download_artifacts(run.id, "_driftline/requirements.txt", out)
    assert "driftline==" in (out / "requirements.txt").read_text().lower()


def test_reconfiguring_while_a_run_is_active_does_not_strand_it(
    configure_default: Callable[..., Workspace],
) -> None:
    configure_default()
    run = dl.start_run(experiment="e")
    writer = run.service.writer
    try:
        try:
            configure_default()  # e.g. a notebook cell with dl.configure run a second time
        except ConflictError:
            return  # refusing to reconfigure under an active run is a fine answer too
        dl.log_metric("m", 1.0)
        dl.flush(timeout=2)
        run.service.flush(timeout=2)
        assert dl.get_run(run.id).metrics == {"m": 1.0}
    finally:
        if writer is not None:  # let the teardown end the run without waiting 60 s
            writer.metrics.clear()
