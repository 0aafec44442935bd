"""``driftline pipelines``: list, show, graph, run, runs and resume pipelines.

Pipelines are found by importing a module: ``--module mypkg.pipelines`` (or a ``.py``
path), else ``driftline_pipelines.py`` in the working directory (see
:mod:`driftline.pipelines.discovery`).
"""

from __future__ import annotations

import inspect
import json as jsonlib
from typing import TYPE_CHECKING, Any

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import JsonOption, console, print_json, table

if TYPE_CHECKING:
    from driftline.pipelines import Pipeline, PipelineRun

app = typer.Typer(
    help="Define, run and inspect pipelines (steps, DAGs, cached runs).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ModuleOption = typer.Option(
    None,
    "--module",
    "-m",
    help="Module defining the pipelines (dotted name or .py path); "
    "default: driftline_pipelines.py here.",
)


def _load(module: str | None, name: str | None = None) -> Pipeline | None:
    from driftline.pipelines import get_pipeline
    from driftline.pipelines.discovery import discover

    discover(module)
    return get_pipeline(name) if name else None


def _value(pipeline: Pipeline, key: str, text: str) -> Any:
    """``-p C=0.5``: converted to the type of the parameter's default.

    A value naming a firing's payload (``{trigger.dataset_version}``) stays text: it is
    filled when a schedule or trigger runs.
    """
    if "{trigger." in text or "{schedule." in text:
        return text
    default = pipeline.parameters.get(key, inspect.Parameter.empty)
    if isinstance(default, bool):
        return text.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int | float) and default is not None:
        try:
            return type(default)(text)
        except ValueError:
            from driftline.errors import InvalidArgumentError

            raise InvalidArgumentError(
                f"Parameter {key!r} of pipeline {pipeline.name!r} takes a "
                f"{type(default).__name__}, not {text!r}"
            ) from None
    if isinstance(default, str):
        return text
    try:
        return jsonlib.loads(text)
    except ValueError:
        return text


def _params(pipeline: Pipeline, pairs: list[str]) -> dict[str, Any]:
    from driftline.errors import InvalidArgumentError

    values = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"Give parameters as -p key=value, not {pair!r}")
        values[key.strip()] = _value(pipeline, key.strip(), text)
    return values


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _print_steps(run: PipelineRun) -> None:
    table(
        f"Pipeline {run.pipeline}: run {run.id} {run.status.value} in {_fmt_ms(run.duration_ms)}",
        ["step", "status", "cache", "time", "step run id"],
        [
            (
                step.name,
                step.status.value,
                "" if step.cache is None else step.cache.reason,
                _fmt_ms(step.duration_ms),
                step.run_id or "",
            )
            for step in run.steps
        ],
    )
    failed = [s for s in run.steps if s.error]
    for step in failed:
        console.print(f"{step.name} failed: {step.error}", highlight=False, markup=False)


@app.command("list")
def list_(module: str | None = ModuleOption, json: bool = JsonOption) -> None:
    """List the pipelines the module defines."""
    from driftline.pipelines import list_pipelines

    _load(module)
    found = list_pipelines()
    rows: list[dict[str, Any]] = [
        {
            "name": p.name,
            "module": p.module,
            "parameters": {
                k: None if v is inspect.Parameter.empty else repr(v)
                for k, v in p.parameters.items()
            },
            "steps": len(p.graph().nodes) if _buildable(p) else None,
        }
        for p in found
    ]
    if json:
        print_json({"pipelines": rows})
        return
    table(
        "Pipelines",
        ["name", "module", "parameters", "steps"],
        [
            (
                r["name"],
                r["module"],
                ", ".join(k if v is None else f"{k}={v}" for k, v in r["parameters"].items()),
                r["steps"] if r["steps"] is not None else "?",
            )
            for r in rows
        ],
    )


def _buildable(pipeline: Pipeline) -> bool:
    return all(v is not inspect.Parameter.empty for v in pipeline.parameters.values())


@app.command()
def graph(
    name: str = typer.Argument(..., help="The pipeline."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, mermaid or dot."),
    param: list[str] | None = typer.Option(None, "--param", "-p", help="key=value (repeatable)."),
    module: str | None = ModuleOption,
) -> None:
    """Draw the pipeline's DAG (layered text, Mermaid or Graphviz dot)."""
    from driftline.pipelines.graph import render

    pipeline = _load(module, name)
    assert pipeline is not None
    dag = pipeline.graph(**_params(pipeline, param or []))
    typer.echo(render(dag, fmt))


@app.command()
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The pipeline."),
    module: str | None = ModuleOption,
    json: bool = JsonOption,
) -> None:
    """Show a pipeline: parameters, DAG, and its last run's cache decisions."""
    from driftline.pipelines.graph import render
    from driftline.pipelines.service import PipelineService

    pipeline = _load(module, name)
    assert pipeline is not None
    service = PipelineService(open_workspace(ctx))
    last = service.list_runs(pipeline.name, 1)
    dag = pipeline.graph() if _buildable(pipeline) else None
    if json:
        print_json(
            {
                "name": pipeline.name,
                "module": pipeline.module,
                "parameters": {k: repr(v) for k, v in pipeline.parameters.items()},
                "steps": {n: list(dag.nodes[n].upstream) for n in dag.order} if dag else None,
                "last_run": last[0] if last else None,
            }
        )
        return
    console.print(f"Pipeline {pipeline.name} ({pipeline.module})", highlight=False)
    if dag is not None:
        typer.echo(render(dag, "text"))
    if last:
        _print_steps(last[0])
    else:
        console.print(f"No runs yet: `driftline pipelines run {pipeline.name}`", highlight=False)


@app.command()
def run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The pipeline."),
    param: list[str] | None = typer.Option(None, "--param", "-p", help="key=value (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Run every step, ignoring the cache."),
    executor: str = typer.Option(
        "local", "--executor", help="local, processes, ray or ray://HOST:PORT."
    ),
    module: str | None = ModuleOption,
    json: bool = JsonOption,
) -> None:
    """Run a pipeline and show each step's cache decision and time."""
    from driftline.errors import UserCodeError

    pipeline = _load(module, name)
    assert pipeline is not None
    ws = open_workspace(ctx)
    try:
        result = pipeline.run(
            params=_params(pipeline, param or []), executor=executor, force=force, workspace=ws
        )
    except UserCodeError as exc:
        record = getattr(exc, "pipeline_run", None)
        if record is not None:
            print_json(record) if json else _print_steps(record)
        raise
    print_json(result.record) if json else _print_steps(result.record)


@app.command()
def runs(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The pipeline."),
    max_results: int = typer.Option(20, "--max", help="How many runs."),
    json: bool = JsonOption,
) -> None:
    """List a pipeline's recorded runs, newest first."""
    from driftline.pipelines.service import PipelineService

    found = PipelineService(open_workspace(ctx)).list_runs(name, max_results)
    if json:
        print_json({"runs": found})
        return
    if not found:
        console.print(f"No recorded runs of pipeline {name!r}", highlight=False)
        return
    table(
        f"Runs of {name}",
        ["run id", "status", "steps", "cached", "time", "resumed from"],
        [
            (
                r.id,
                r.status.value,
                len(r.steps),
                sum(1 for s in r.steps if s.status.value == "CACHED"),
                _fmt_ms(r.duration_ms),
                r.resumed_from or "",
            )
            for r in found
        ],
    )


@app.command()
def resume(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="The failed pipeline run."),
    executor: str | None = typer.Option(
        None, "--executor", help="local, processes, ray or ray://HOST:PORT."
    ),
    json: bool = JsonOption,
) -> None:
    """Run a failed pipeline run again; steps that finished are reused from the cache."""
    from driftline.pipelines.service import PipelineService

    result = PipelineService(open_workspace(ctx)).resume(run_id, executor=executor)
    print_json(result.record) if json else _print_steps(result.record)


def install_commands(root_app: typer.Typer) -> None:
    """Add ``driftline pipelines``, ``schedule``, ``trigger`` and ``agent`` (the stage's hook)."""
    from driftline.cli import automation

    root_app.add_typer(app, name="pipelines")
    automation.install_commands(root_app)
