"""``driftline trace``, ``reproduce``, ``maturity`` and ``driftline retrain ...``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import JsonOption, console, fmt_number, fmt_time, print_json, table
from driftline.retraining import MAX_TRACE_DAYS, TRACE_DAYS

if TYPE_CHECKING:
    from rich.tree import Tree

    from driftline.retraining import ReproduceReport, RetrainingService, Trace, VersionLineage


def install_commands(root_app: typer.Typer) -> None:
    """Add the retraining stage's commands (its ``cli`` hook)."""
    root_app.command(name="trace")(trace)
    root_app.command(name="reproduce")(reproduce)
    root_app.command(name="maturity")(maturity)
    retrain_app = typer.Typer(
        help="Retraining policies and cycles: drift or decay in, a promoted model out.",
        no_args_is_help=True,
    )
    retrain_app.command(name="apply")(retrain_apply)
    retrain_app.command(name="run")(retrain_run)
    retrain_app.command(name="status")(retrain_status)
    retrain_app.command(name="history")(retrain_history)
    root_app.add_typer(retrain_app, name="retrain")


def _service(ctx: typer.Context) -> RetrainingService:
    from driftline.retraining import RetrainingService

    return open_workspace(ctx).service("retraining", RetrainingService)


# -- trace ----------------------------------------------------------------------------


def trace(
    ctx: typer.Context,
    request_id: str = typer.Argument(..., help="The X-Request-ID a prediction was answered with."),
    deployment: str | None = typer.Option(
        None, "--deployment", "-d", help="Look only in this deployment's log."
    ),
    days: int = typer.Option(
        TRACE_DAYS,
        "--days",
        help=(
            "How many days back to look for a request id that carries no day (a client's "
            f"X-Request-ID; at most {MAX_TRACE_DAYS}). A generated id is looked for on its day."
        ),
    ),
    log_root: str | None = typer.Option(
        None, "--log-root", help="The prediction log's folder or URL (default: the workspace's)."
    ),
    json: bool = JsonOption,
) -> None:
    """Show everything behind one prediction: deployment, version, run, code, params, data."""
    found = _service(ctx).trace(request_id, deployment=deployment, days=days, log_root=log_root)
    if json:
        print_json(found)
        return
    console.print(_trace_tree(found))


def _trace_tree(found: Trace) -> Tree:
    from rich.markup import escape
    from rich.tree import Tree

    root = Tree(f"[bold]request {escape(found.request_id)}[/]")
    lineages = {(v.model, v.version): v for v in found.versions}
    for row in found.predictions:
        outcome = f"status {row.status}" + (f", {escape(row.error)}" if row.error else "")
        served = root.add(
            f"[bold]{escape(row.deployment)}[/] / {row.variant}: {row.endpoint}, "
            f"{row.n_rows} row(s), {row.latency_ms:.1f} ms, {outcome}, {fmt_time(row.time)}"
        )
        if row.outputs is not None:
            served.add(f"answered {escape(_short(row.outputs))}")
        _version_branch(served, lineages[(row.model, row.model_version)])
    return root


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _version_branch(parent: Tree, lineage: VersionLineage) -> None:
    from rich.markup import escape

    aliases = f" @{', @'.join(lineage.aliases)}" if lineage.aliases else ""
    node = parent.add(
        f"model [bold]{escape(lineage.ref)}[/]{escape(aliases)} ({lineage.flavor}), "
        f"registered {fmt_time(lineage.created_at)} from {escape(lineage.source)}"
    )
    run = lineage.run
    if run is None:
        node.add("[yellow]no run: registered from files, the lineage ends here[/]")
        return
    branch = node.add(f"run [bold]{escape(run.name)}[/] {run.id} ({run.status})")
    if run.pipeline is not None:
        p = run.pipeline
        step = f", step {escape(p.step)}" if p.step else ""
        branch.add(f"pipeline {escape(p.pipeline)} run {p.run_id}{step}")
    code = run.code
    if code.commit:
        dirty = (
            " [yellow](uncommitted changes; the diff is recorded as "
            f"{code.diff_path} on run {code.from_run})[/]"
            if code.dirty and code.diff_path
            else " [yellow](uncommitted changes, no diff recorded)[/]"
            if code.dirty
            else ""
        )
        branch.add(f"code {code.commit[:12]} on {escape(code.branch or 'detached')}{dirty}")
    else:
        branch.add("[yellow]code: no commit recorded[/]")
    if code.command:
        branch.add(f"command {escape(code.command)}")
    params = branch.add(f"params ({len(run.params)})")
    for key, value in sorted(run.params.items()):
        params.add(f"{escape(key)} = {escape(value)}")
    if run.metrics:
        metrics = branch.add(f"metrics ({len(run.metrics)})")
        for key, number in sorted(run.metrics.items()):
            metrics.add(f"{escape(key)} = {fmt_number(number)}")
    if run.inputs:
        data = branch.add("data")
        for item in run.inputs:
            short = item.version_id.rpartition(":")[2][:12]
            data.add(f"{escape(item.ref)} (content {short})")
    else:
        branch.add("[yellow]data: no dataset versions recorded (dl.log_input)[/]")
    cycle = lineage.retraining_cycle
    if cycle is not None:
        cause = (
            f"alert {cycle['alert']}"
            if "alert" in cycle
            else (f"{cycle['trigger']} {cycle['trigger_ref']}")
        )
        node.add(
            f"made by retraining cycle {escape(cycle['id'])} ({escape(cycle['state'])}), "
            f"triggered by {escape(cause)}"
        )


# -- reproduce ------------------------------------------------------------------------


def _tolerances(pairs: list[str]) -> dict[str, float]:
    from driftline.errors import InvalidArgumentError

    found = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        try:
            found[key.strip()] = float(text)
        except ValueError:
            raise InvalidArgumentError(
                f"Give tolerances as --tolerance metric=0.01, not {pair!r}"
            ) from None
        if not sep or not key.strip():
            raise InvalidArgumentError(f"Give tolerances as --tolerance metric=0.01, not {pair!r}")
    return found


def reproduce(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The version to rebuild: churn/4 (or churn@champion)."),
    repo: Path | None = typer.Option(
        None, "--repo", help="A folder in the training repository (default: here)."
    ),
    code: str = typer.Option(
        "recorded", "--code", help="recorded (the run's commit) or current (this checkout)."
    ),
    apply_diff: bool = typer.Option(
        True, "--apply-diff/--no-apply-diff", help="Apply a dirty run's recorded changes."
    ),
    tolerance: list[str] | None = typer.Option(
        None, "--tolerance", "-t", help="metric=absolute difference accepted (repeatable)."
    ),
    default_tolerance: float | None = typer.Option(
        None, "--default-tolerance", help="For other metrics (default 1e-6)."
    ),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds the re-run may take."),
    json: bool = JsonOption,
) -> None:
    """Re-run what produced a version (same params, data and code) and compare; exit 1 if not."""
    report = _service(ctx).reproduce(
        model,
        repo=repo,
        code=code,
        apply_diff=apply_diff,
        tolerances=_tolerances(tolerance or []),
        default_tolerance=default_tolerance,
        timeout=timeout,
    )
    if json:
        print_json({**_as_dict(report), "reproduced": report.reproduced})
    else:
        _print_report(report)
    if not report.reproduced:
        raise typer.Exit(1)


def _as_dict(value: Any) -> dict[str, Any]:
    from driftline.cli._output import to_jsonable

    return dict(to_jsonable(value))


def _print_report(report: ReproduceReport) -> None:
    from rich.markup import escape

    console.print(
        f"[bold]{report.model}[/]: run {report.original_run} re-run as {report.reproduced_run} "
        f"({report.entry_point}: {escape(report.command)})"
    )
    console.print(f"code: {report.code}" + (f" {report.commit[:12]}" if report.commit else ""))
    table(
        "Metrics",
        ["metric", "original", "reproduced", "difference", "tolerance", "within"],
        [
            (
                m.key,
                fmt_number(m.original),
                "missing" if m.reproduced is None else fmt_number(m.reproduced),
                "" if m.difference is None else fmt_number(m.difference),
                fmt_number(m.tolerance),
                "yes" if m.within else "NO",
            )
            for m in report.metrics
        ],
    )
    for key, (before, after) in report.param_differences.items():
        console.print(f"param {escape(key)}: recorded {before!r}, re-run {after!r}")
    console.print(
        f"data: recorded {', '.join(report.inputs_recorded) or 'none'}; "
        f"re-run read {', '.join(report.inputs_reproduced) or 'none'}"
    )
    files = {
        True: "model files: byte-identical",
        False: f"model files: differ ({', '.join(report.differing_files)})",
        None: "model files: not compared"
        + (
            f" (differing bytes: {', '.join(report.differing_files)})"
            if report.differing_files
            else ""
        ),
    }[report.model_files_match]
    console.print(files)
    console.print(
        {
            True: "predictions on the input example: the same",
            False: "predictions on the input example: DIFFER",
            None: "predictions: not compared (no input example)",
        }[report.predictions_match]
    )
    for note in report.notes:
        console.print(f"- {escape(note)}")
    if report.diff:
        console.print("[bold]The recorded uncommitted diff:[/]")
        console.print(escape(report.diff), highlight=False)
    verdict = "[green]reproduced[/]" if report.reproduced else "[red]NOT reproduced[/]"
    console.print(verdict)


# -- maturity -------------------------------------------------------------------------


def maturity(
    ctx: typer.Context,
    model: str | None = typer.Argument(None, help="One model (default: every model)."),
    log_root: str | None = typer.Option(
        None, "--log-root", help="The prediction log's folder or URL (default: the workspace's)."
    ),
    json: bool = JsonOption,
) -> None:
    """Each model's MLOps maturity level (0-4), its evidence, and the steps to the next."""
    from driftline.retraining import LEVELS

    found = _service(ctx).maturity(model, log_root=log_root)
    if json:
        print_json({"models": found})
        return
    if not found:
        console.print("No registered models: register one with driftline models register")
        return
    for item in found:
        console.print(
            f"[bold]{item.model}[/]: level {item.level} ({item.level_name}): "
            f"{LEVELS[item.level].summary}"
        )
        table(
            None,
            ["capability", "present", "evidence"],
            [(c.name, "yes" if c.present else "no", c.evidence) for c in item.checks],
        )
        if item.next_level is not None:
            console.print(f"To reach level {item.next_level} ({LEVELS[item.next_level].name}):")
            for step in item.next_steps:
                console.print(f"  - {step}")


# -- retrain --------------------------------------------------------------------------


def retrain_apply(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The policy file (retrain.yaml)."),
    json: bool = JsonOption,
) -> None:
    """Check a retraining policy against the workspace and store it."""
    policy = _service(ctx).policies.apply(file)
    if json:
        print_json(policy.to_dict())
        return
    kinds = ", ".join(t.kind for t in policy.triggers) or "manual only"
    console.print(
        f"Applied the retraining policy of [bold]{policy.model}[/] (triggers: {kinds}; "
        f"pipeline {policy.pipeline.name}; rollout {policy.rollout} via {policy.deployment})."
        f"\nStart a cycle by hand with: driftline retrain run {policy.model}"
    )


def retrain_run(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The model whose policy to run."),
    param: list[str] | None = typer.Option(
        None, "--param", "-p", help="KEY=VALUE for the pipeline's {trigger.KEY} placeholders."
    ),
    json: bool = JsonOption,
) -> None:
    """Start a retraining cycle by hand and drive it as far as it can go now.

    Against a team server this asks for the cycle; the agent beside the server drives it.
    """
    payload: dict[str, Any] = {}
    for pair in param or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            from driftline.errors import InvalidArgumentError

            raise InvalidArgumentError(f"--param takes KEY=VALUE, got {pair!r}")
        payload[key] = value
    workspace = open_workspace(ctx)
    outcome = _service(ctx).policies.run(model, workspace, payload=payload)
    if json:
        print_json(outcome.to_dict())
        return
    if outcome.cycle is None or outcome.outcome != "started":
        console.print(f"No new cycle: {outcome.reason}")
        if outcome.cycle is not None:
            _print_cycle(outcome.cycle)
        return
    _print_cycle(outcome.cycle)


def retrain_status(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The model."),
    json: bool = JsonOption,
) -> None:
    """The newest retraining cycle of a model: its state and what it waits for."""
    cycle = _service(ctx).policies.status(model)
    if json:
        print_json(cycle.to_dict() if cycle else None)
        return
    if cycle is None:
        console.print(f"No retraining cycle of {model} yet: driftline retrain run {model}")
        return
    _print_cycle(cycle)


def retrain_history(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The model."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many cycles."),
    json: bool = JsonOption,
) -> None:
    """Every retraining cycle of a model: trigger -> run -> version -> verdict -> rollout."""
    cycles = _service(ctx).policies.history(model, limit=limit)
    if json:
        print_json([c.to_dict() for c in cycles])
        return
    rows = [
        (
            fmt_time(c.created_at), c.state.value, f"{c.cause.kind} {c.cause.ref}",
            c.run_id or "-", f"v{c.version}" if c.version else "-",
            (c.report or {}).get("verdict", "-"), (c.rollout or {}).get("kind", "-"),
        )
        for c in cycles
    ]  # fmt: skip
    table(
        f"Retraining cycles of {model}",
        ("started", "state", "trigger", "run", "version", "verdict", "rollout"),
        rows,
    )


def _print_cycle(cycle: Any) -> None:
    from json import dumps

    from rich.markup import escape

    console.print(f"Cycle [bold]{cycle.id}[/] of {cycle.model}: [bold]{cycle.state.value}[/]")
    console.print(f"  trigger: {cycle.cause.kind} {escape(cycle.cause.ref)}"
                  + (f" (+{cycle.absorbed} absorbed)" if cycle.absorbed else ""))  # fmt: skip
    payload = dict(cycle.cause.payload)
    if "why" in payload:  # the figures or version that made the trigger fire
        console.print(f"    why: {escape(str(payload.pop('why')))}")
    if payload:
        text = dumps(payload, sort_keys=True, default=str)
        console.print(f"    payload: {escape(text)}")
    if cycle.run_id:
        console.print(f"  pipeline run: {cycle.run_id}")
    if cycle.version:
        console.print(f"  challenger: {cycle.model}/{cycle.version}")
    report = cycle.report or {}
    if report:
        console.print(
            f"  {report.get('metric')}: champion {fmt_number(report.get('champion_value'))}, "
            f"challenger {fmt_number(report.get('challenger_value'))} on {report.get('data')} "
            f"-> {report.get('verdict')}"
        )
    if cycle.rollout:
        console.print(
            f"  rollout: {cycle.rollout.get('kind')} via {cycle.rollout.get('deployment')}"
        )
    if cycle.reason:
        console.print(f"  {escape(cycle.reason)}")
