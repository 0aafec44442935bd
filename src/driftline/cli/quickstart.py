"""``driftline quickstart``: the whole loop on bundled data, in the current folder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from driftline.cli._context import CliState
from driftline.cli._output import JsonOption, console, fmt_number, print_json, table

if TYPE_CHECKING:
    from driftline.quickstart import Progress
    from driftline.quickstart_loop import LoopCheck


def register(app: typer.Typer) -> None:
    """Add ``quickstart`` to the root command."""

    @app.command()
    def quickstart(
        ctx: typer.Context,
        metric: str = typer.Option(
            "auc", "--metric", "-m", help="Rank by auc, accuracy, f1 or log_loss."
        ),
        experiment: str = typer.Option("quickstart", "--experiment", "-e"),
        serve: bool = typer.Option(
            True, "--serve/--no-serve", help="Also serve the workspace and use it remotely."
        ),
        json: bool = JsonOption,
    ) -> None:
        """Train a few scikit-learn models on bundled data, track each run, compare them."""
        clock = _Clock()
        import importlib.util

        import driftline as dl
        from driftline.quickstart import (
            METRICS,
            MODEL_NAME,
            ServingProcess,
            WorkspaceServer,
            check_monitoring,
            check_serving,
            check_through_server,
            run_quickstart,
        )
        from driftline.quickstart_loop import check_retraining

        for needed in ("sklearn", "matplotlib"):
            # Found, not imported: the training imports them while the server boots.
            if importlib.util.find_spec(needed) is None:
                from driftline.errors import BackendError

                raise BackendError(
                    f"The quickstart needs {needed}: pip install 'driftline[quickstart]'"
                )
        state: CliState = ctx.find_root().obj
        ws = dl.configure(**state.overrides)
        # Already a remote client (DRIFTLINE_URI=http://...): stages 1-3 go through that
        # server, and a server cannot serve another server's workspace.
        serve = serve and not ws.is_remote
        # The workspace's server boots while scikit-learn is imported and the models
        # train (it needs only the workspace), on the core they leave free.
        server = WorkspaceServer() if serve else None
        serving: ServingProcess | None = None
        looping: ServingProcess | None = None
        try:
            with _progress(quiet=json, clock=clock) as advance:
                result = run_quickstart(metric=metric, experiment=experiment, progress=advance)
                if server is not None:
                    # `driftline serve` boots while the workspace server is checked.
                    serving = ServingProcess()
                    advance("Serving the workspace over HTTP", 1, 0)
                    served = check_through_server(result, server=server)
                    advance("Deploying the champion, rolling out canaries", 1, 0)
                    scored = check_serving(result, server=serving)
                    # The loop's `driftline serve` boots while the monitor runs.
                    looping = ServingProcess(deploy=False)
                    advance("Monitoring the deployment for drift", 1, 0)
                    monitored = check_monitoring(Path("monitoring-report.html").resolve())
                    advance("Closing the retraining loop", 1, 0)
                    looped = check_retraining(looping, Path.cwd(), result.data)
        finally:
            for process in (serving, looping):
                if process is not None:
                    process.stop()
            if server is not None:
                server.stop()
        clock.stop()
        if json:
            print_json(
                {
                    "experiment": result.experiment,
                    "parent_run_id": result.parent_run_id,
                    "metric": metric,
                    "runs": result.runs,
                    "rerun": result.rerun,
                    "data": result.data,
                    "validation": result.validation.to_dict(),
                    "model_version": result.model_version,
                    "evaluation": result.evaluation,
                    "promotion": result.promotion,
                    "server": served if serve else None,
                    "serving": scored if serve else None,
                    "monitoring": monitored if serve else None,
                    "retraining": looped if serve else None,
                    "timings": clock.to_dict(),
                }
            )
            return
        train_ref, test_ref = result.data
        verdict = "passed" if result.validation.ok else "FAILED"
        errors = sum(a.severity == "error" for a in result.validation.anomalies)
        warnings = len(result.validation.anomalies) - errors
        # What the warnings are, so nobody has to run validate again to find out: on a
        # split of a few hundred rows they are shifts within sampling noise.
        small = sum(
            a.kind == "drift" and a.severity == "warning" for a in result.validation.anomalies
        )
        warned = f"{warnings} warnings" + (
            f": {small} columns shifted less than sampling noise allows at this size"
            if small == warnings and small
            else ""
        )
        console.print(f"Workspace: {ws.settings.uri if ws.is_remote else ws.settings.home}")
        console.print(
            f"[bold]1. Data[/]  {train_ref} and {test_ref} (versioned, profiled); "
            f"{test_ref} validated against {train_ref}'s schema: {verdict} "
            f"({errors} errors, {warned})",
            highlight=False,
        )
        keys = [metric, *(k for k in METRICS if k != metric)]
        table(
            f"2. Experiments: models ranked by {metric} on the held-out test set "
            f"({'higher' if METRICS[metric] else 'lower'} is better)",
            ["rank", "run", *keys],
            [
                (i + 1, r.name, *(fmt_number(r.metrics[k]) for k in keys))
                for i, r in enumerate(result.runs)
            ],
        )
        rerun = result.rerun
        console.print(
            f"Trained by the pipeline quickstart_training (run {result.parent_run_id}); "
            f"re-run: {rerun.cached} of {rerun.steps} steps cached in {rerun.seconds:.2f} s "
            f"(see `driftline pipelines show quickstart_training -m driftline.quickstart`)",
            highlight=False,
        )
        best = result.runs[0]
        version = result.model_version
        console.print(
            f"[bold]3. Registry[/]  {best.name} registered as {version.uri}; "
            f"evaluated on {test_ref}: roc_auc "
            f"{result.evaluation.metrics.get('roc_auc', float('nan')):.4f}",
            highlight=False,
        )
        table(
            "Quality gates",
            ["gate", "passed", "measured", "threshold"],
            [
                (
                    g.gate,
                    "yes" if g.passed else "NO",
                    fmt_number(g.measured),
                    fmt_number(g.threshold),
                )
                for g in result.promotion.gates
            ],
        )
        previous = result.promotion.previous_version
        console.print(
            f"Promoted to [bold green]{version.name}@champion[/] "
            f"(was {f'v{previous}' if previous else 'unset'})"
        )
        if ws.is_remote:
            console.print(
                f"[bold]4. Server[/]  every step above went through the server at "
                f"{ws.settings.uri} (remote mode)",
                highlight=False,
            )
        elif serve:
            console.print(
                f"[bold]4. Server[/]  `driftline server` on {served.url}: through it a remote "
                f"client saw {served.runs_seen} runs and {MODEL_NAME}@champion = "
                f"v{served.champion.rsplit('/', 1)[1]}, logged run {served.remote_run_id} over "
                "HTTP and read it back, and the champion it loaded from the "
                f"server predicts {'exactly like' if served.predictions_match else 'UNLIKE'} "
                "the local one",
                highlight=False,
            )
        if serve:
            console.print(
                f"[bold]5. Serving[/]  `driftline serve --deployment {MODEL_NAME}` on "
                f"{scored.url}: {scored.model} answered {scored.ok} of {scored.requests} "
                f"requests (/predict and MLflow's /invocations), latency p50 "
                f"{scored.p50_ms:.1f} ms, p99 {scored.p99_ms:.1f} ms. Then a challenger was "
                f"rolled out as a canary: {scored.promoted}, {MODEL_NAME}@champion is now "
                f"{scored.champion}; a buggy canary failed {scored.canary_errors} requests "
                f"and was {scored.rolled_back.replace('_', ' ')} automatically. The "
                f"prediction log holds {scored.logged} rows (of {scored.sent} requests), "
                f"in {scored.log_root}",
                highlight=False,
            )
            table(
                f"Rollout timeline of deployment {MODEL_NAME} (from the audit log)",
                ["+s", "action", "what happened"],
                [(f"{at:.2f}", action, message) for at, action, message in scored.timeline],
            )
            found = monitored.alert
            console.print(
                f"[bold]6. Monitoring[/]  monitor {monitored.monitor}: the ordinary hour was "
                f"{'healthy' if monitored.healthy_before else 'NOT healthy'}; with drift "
                "injected into the next hour it raised "
                + (f"a {found.severity} alert ({found.message})" if found else "NO alert")
                + f"; report: {monitored.report}",
                highlight=False,
            )
        if serve:
            _print_loop(looped)
        console.print(f"[bold]Time[/]  {clock.summary()}", highlight=False)
        console.print("Explore:")
        for command in (
            f"driftline runs show {best.id}",
            f"driftline runs compare {' '.join(r.id for r in result.runs[:3])}",
            f'driftline runs search -e {experiment} -f "metrics.auc > 0.99" -o "metrics.auc desc"',
            f"driftline artifacts get {best.id} plots -o ./plots",
            f"driftline data lineage {train_ref}",
            f"driftline models card {version.name} {version.version}",
            "driftline audit verify",
            "driftline server   # then DRIFTLINE_URI=http://127.0.0.1:8080 in another shell",
            f"driftline serve {version.name}@champion   # /predict, /invocations, /v2/models/...",
            f"driftline deploy status {version.name}",
            f"driftline deploy history {version.name}",
            f"driftline monitor history {MODEL_NAME}-prod",
            f"driftline retrain history {MODEL_NAME}",
            f"driftline trace {looped.trace.request_id}" if serve else "driftline maturity",
        ):
            console.print(f"  {command}", soft_wrap=True, highlight=False)


class _Clock:
    """Wall and CPU time per quickstart step, to show where the time goes (on a busy
    machine the CPU time says what the work costs, the wall time what it waited)."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float, float]] = []  # (step, wall and CPU at its start)
        self.mark("Starting")
        self.total = self.cpu = self.children = 0.0

    def mark(self, what: str) -> None:
        """A step starts now (the one before it ends)."""
        import time

        self.steps.append((what, time.perf_counter(), time.process_time()))

    def stop(self) -> None:
        """The last step ends now."""
        import resource

        self.mark("End")
        self.total = self.steps[-1][1] - self.steps[0][1]
        # This process since it started (imports included); the servers are child
        # processes, counted once they have exited.
        self.cpu = self.steps[-1][2]
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children = used.ru_utime + used.ru_stime

    def durations(self) -> list[tuple[str, float, float]]:
        """Each step with its wall and CPU time, the start-up (imports, the workspace)
        first."""
        return [
            (what, end - at, end_cpu - cpu)
            for (what, at, cpu), (_, end, end_cpu) in zip(
                self.steps[:-1], self.steps[1:], strict=True
            )
        ]

    def to_dict(self) -> dict[str, object]:
        """The figures for ``--json``."""
        return {
            "wall_s": round(self.total, 3),
            "cpu_s": round(self.cpu, 3),
            "children_cpu_s": round(self.children, 3),
            "steps": [
                {"step": what, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
                for what, wall, cpu in self.durations()
            ],
        }

    def summary(self) -> str:
        """One line: each stage's wall (CPU) time, the total, the servers' CPU time."""
        stages: dict[str, tuple[float, float]] = {}
        for what, wall, cpu in self.durations():
            stage = "training" if what.startswith("Training ") else _STAGES.get(what, what)
            before = stages.get(stage, (0.0, 0.0))
            stages[stage] = (before[0] + wall, before[1] + cpu)
        parts = ", ".join(
            f"{name} {wall:.1f} ({cpu:.1f})"
            for name, (wall, cpu) in stages.items()
            if wall >= 0.05  # the deploy step without --serve, say
        )
        return (
            f"{self.total:.1f} s wall ({self.cpu:.1f} s CPU here, "
            f"{self.children:.1f} s in child processes: the servers); "
            f"seconds wall (CPU) per stage: {parts}"
        )


_STAGES = {
    "Starting": "start-up",
    "Versioning the data": "data",
    "Re-running the training pipeline": "cached re-run",
    "Registering and promoting the best model": "registry",
    "Done": "deploy",  # the champion deployed, `driftline serve` started
    "Serving the workspace over HTTP": "server",
    "Deploying the champion, rolling out canaries": "serving",
    "Monitoring the deployment for drift": "monitoring",
    "Closing the retraining loop": "retraining",
}


def _print_loop(looped: LoopCheck) -> None:
    """Stage 7: the cycles, the loop's timeline, and the trace of one prediction."""
    from driftline.quickstart import MODEL_NAME

    ends = ", ".join(
        f"{MODEL_NAME}/{c.version} {c.state.value.replace('_', ' ')}" for c in looped.cycles
    )
    console.print(
        f"[bold]7. Retraining[/]  the policy {looped.policy_file} turned three drift alerts "
        f"into three cycles: {ends}; the champion is {looped.champion}",
        highlight=False,
    )
    table(
        "The retraining loop (drift -> alert -> cycle -> verdict -> rollout)",
        ["+s", "what", "what happened"],
        [(f"{at:.2f}", what, detail) for at, what, detail in looped.timeline],
    )
    for cycle in looped.cycles:
        report = cycle.report or {}
        verdict = (
            f"{report['challenger']} vs {report['champion']} on {report['data']} "
            f"({report['rows']} rows): {report['metric']} {report['challenger_value']:.4f} vs "
            f"{report['champion_value']:.4f}, challenger - champion {_ci(report['ci'])} "
            f"({report['confidence']:.0%} paired bootstrap CI): {report['verdict']}"
            if report
            else "no comparison"
        )
        console.print(
            f"  cycle {cycle.id} ({cycle.cause.kind} {cycle.cause.ref}): {verdict}; "
            f"ended {cycle.state.value}: {cycle.reason or ''}",
            highlight=False,
        )
    _print_trace(looped)


def _ci(bounds: list[float | None]) -> str:
    low, high = bounds
    return "n/a" if low is None or high is None else f"[{low:+.4f}, {high:+.4f}]"


def _print_trace(looped: LoopCheck) -> None:
    traced = looped.trace
    console.print(f"[bold]Trace[/] of request {traced.request_id}:", highlight=False)
    lines = [
        f"served by deployment {p.deployment}, variant {p.variant}, {p.model}/{p.model_version}"
        f" at {p.time:%H:%M:%S} UTC ({p.status}, {p.n_rows} rows)"
        for p in traced.predictions
    ]
    for lineage in traced.versions:
        run = lineage.run
        lines.append(f"version {lineage.ref} ({', '.join(lineage.aliases) or 'no alias'})")
        if run is None:
            lines.append("  run: not recorded")
            continue
        code = run.code
        lines += [
            f"  run {run.id} ({run.name})"
            + (f", step of pipeline {run.pipeline.pipeline} run {run.pipeline.run_id}"
               if run.pipeline else ""),
            f"  code: commit {code.commit}" + (" (dirty)" if code.dirty else "")
            if code.commit else "  code: no git commit recorded (not run from a repository)",
            "  params: " + ", ".join(f"{k}={v}" for k, v in sorted(run.params.items())),
            "  data: " + ", ".join(i.ref for i in run.inputs),
        ]  # fmt: skip
        if lineage.missing:
            lines.append(f"  missing links: {', '.join(lineage.missing)}")
    cycle = looped.trace_cycle
    if cycle is not None:
        lines.append(
            f"made by retraining cycle {cycle.id} ({cycle.state.value}), started by "
            f"{cycle.cause.kind} {cycle.cause.ref}"
            + (f" of monitor {cycle.cause.payload['monitor']}" if "monitor" in
               cycle.cause.payload else "")
        )  # fmt: skip
    for line in lines:
        console.print(f"  {line}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _progress(*, quiet: bool, clock: _Clock) -> Iterator[Progress]:
    """A progress bar on a terminal; one line per step when the output is piped (a CI
    log shows where a slow run is), nothing with ``--json``. Each step is timed."""
    if quiet:

        def mark(what: str, _done: int, _total: int) -> None:
            clock.mark(what)

        yield mark
        return
    if not console.is_terminal:

        def line(what: str, done: int, total: int) -> None:
            clock.mark(what)
            step = f"[{done}/{total}] " if total else ""
            console.print(f"{step}{what}", highlight=False)

        yield line
        return
    from rich.progress import Progress as Bar
    from rich.progress import SpinnerColumn, TimeElapsedColumn

    with Bar(
        SpinnerColumn(), *Bar.get_default_columns(), TimeElapsedColumn(), console=console,
        transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("Starting")

        def update(what: str, done: int, total: int) -> None:
            clock.mark(what)
            bar.update(task, description=what, completed=done, total=total or None)

        yield update
