"""``driftline deploy``: deployments (stable, canary, shadow) and their rollouts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import JsonOption, console, fmt_number, fmt_time, print_json, table

if TYPE_CHECKING:
    from driftline.serving import Deployment, DeploymentService

app = typer.Typer(
    help="Deployments: a stable model with a canary or shadow, and their rollouts.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

NameArgument = typer.Argument(..., help="The deployment's name, e.g. churn.")


def _service(ctx: typer.Context) -> DeploymentService:
    from driftline.serving.deployments import DeploymentService

    return open_workspace(ctx).service("serving", DeploymentService)


def _summary(d: Deployment) -> str:
    weight = d.canary_weight
    split = f"stable {100 - weight}% / canary {weight}%" if weight else "stable 100%"
    return f"{d.name} ({d.spec.model}): {d.rollout.state}, {split}; {d.rollout.message}"


def _record(d: Deployment) -> dict[str, Any]:
    from driftline.api.codec import encode

    return {
        "name": d.name,
        "model": d.spec.model,
        "state": str(d.rollout.state),
        "canary_weight": d.canary_weight,
        "variants": {str(v): t.ref for v, t in d.targets().items()},
        "generation": d.generation,
        "updated_at": d.updated_at.isoformat(),
        "updated_by": d.updated_by,
        "rollout": encode(d.rollout),
        "spec": encode(d.spec),
    }


@app.command()
def apply(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The deployment file (deploy.yaml)."),
    json: bool = JsonOption,
) -> None:
    """Create or update a deployment from a deploy.yaml.

    A changed canary starts a new rollout at its first step; the same file again
    changes nothing. A canary that fails the file's gates is refused (exit code 1).
    """
    service = _service(ctx)
    before = None
    from driftline.serving.spec import load_spec

    spec = load_spec(file)
    before = service.find_deployment(spec.name)
    deployment = service.apply(spec)
    if json:
        print_json(_record(deployment))
        return
    changed = before is None or before.generation != deployment.generation
    verb = "Created" if before is None else ("Updated" if changed else "Unchanged:")
    console.print(f"{verb} deployment {_summary(deployment)}", highlight=False)
    console.print(
        f"Serve it with `driftline serve --deployment {deployment.name}`; watch it with "
        f"`driftline deploy status {deployment.name}`.",
        highlight=False,
    )


@app.command()
def status(
    ctx: typer.Context,
    name: str = NameArgument,
    window: float = typer.Option(
        300.0, "--window", help="Seconds of the prediction log the live figures cover."
    ),
    json: bool = JsonOption,
) -> None:
    """Show variants, traffic split, rollout step and live figures per variant."""
    found = _service(ctx).status(name, window=window)
    if json:
        print_json(found)
        return
    weights = found["weights"]
    console.print(
        f"[bold]{found['name']}[/] ({found['model']}): {found['state']}, stable "
        f"{weights['stable']}% / canary {weights['canary']}%",
        highlight=False,
    )
    if found["steps"]:
        steps = " -> ".join(
            f"[{s}%]" if i == found["step"] else f"{s}%" for i, s in enumerate(found["steps"])
        )
        console.print(
            f"Steps {steps}; failed checks in a row: {found['failed_checks']}", highlight=False
        )
    console.print(found["message"], highlight=False, markup=False)
    table(
        "Variants",
        ["variant", "serves"],
        sorted(found["variants"].items()),
    )
    table(
        f"Live figures (last {found['window_seconds']:g} s of the prediction log)",
        ["variant", "requests", "errors", "error rate", "p50 ms", "p99 ms", "versions"],
        _figure_rows(found["figures"]),
    )
    check = found["last_check"]
    if check and check.get("checks"):
        table(
            f"Last check ({check['verdict']}, step {check['step']}, {check['at']})",
            ["check", "measured", "threshold", "passed"],
            [
                (
                    c["check"],
                    fmt_number(c["measured"]),
                    c["threshold"],
                    # None: a contributed check waiting for data (labels, say).
                    {True: "yes", False: "NO"}.get(c["passed"], "waiting"),
                )
                for c in check["checks"]
            ],
        )


@app.command("list")
def list_(ctx: typer.Context, json: bool = JsonOption) -> None:
    """List deployments."""
    found = _service(ctx).list_deployments()
    if json:
        print_json({"deployments": [_record(d) for d in found]})
        return
    if not found:
        console.print("No deployments yet: `driftline deploy apply deploy.yaml` creates one.")
        return
    table(
        "Deployments",
        ["name", "model", "state", "canary %", "variants", "updated", "message"],
        [
            (
                d.name, d.spec.model, str(d.rollout.state), d.canary_weight,
                ", ".join(f"{v}={t.ref}" for v, t in d.targets().items()),
                fmt_time(d.updated_at), d.rollout.message,
            )
            for d in found
        ],
    )  # fmt: skip


@app.command()
def history(
    ctx: typer.Context,
    name: str = NameArgument,
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many entries."),
    json: bool = JsonOption,
) -> None:
    """The deployment's changes from the audit log, newest first."""
    entries = _service(ctx).history(name, limit=limit)
    if json:
        print_json(entries)
        return
    table(
        f"History of {name}",
        ["#", "when", "actor", "action", "state", "canary %", "message"],
        [
            (
                e.seq, fmt_time(e.at), e.actor, e.action.removeprefix("deploy_"),
                (e.after or {}).get("state"), (e.after or {}).get("canary_weight"),
                (e.after or {}).get("message"),
            )
            for e in entries
        ],
    )  # fmt: skip


def _change(ctx: typer.Context, action: str, name: str, json: bool, **kwargs: Any) -> None:
    deployment = getattr(_service(ctx), action)(name, **kwargs)
    if json:
        print_json(_record(deployment))
        return
    console.print(_summary(deployment), highlight=False)


@app.command()
def pause(ctx: typer.Context, name: str = NameArgument, json: bool = JsonOption) -> None:
    """Freeze a rollout at its current traffic split (no checks, no steps)."""
    _change(ctx, "pause", name, json)


@app.command()
def resume(ctx: typer.Context, name: str = NameArgument, json: bool = JsonOption) -> None:
    """Resume a paused rollout."""
    _change(ctx, "resume", name, json)


@app.command()
def rollback(
    ctx: typer.Context,
    name: str = NameArgument,
    reason: str | None = typer.Option(None, "--reason", "-r", help="Why, for the audit log."),
    json: bool = JsonOption,
) -> None:
    """Take the canary out of traffic now (after a promotion: move the alias back)."""
    _change(ctx, "rollback", name, json, reason=reason)


@app.command()
def compare(
    ctx: typer.Context,
    name: str = NameArgument,
    since: datetime | None = typer.Option(None, "--since", help="Earliest request (UTC)."),
    until: datetime | None = typer.Option(None, "--until", help="Requests before this (UTC)."),
    json: bool = JsonOption,
) -> None:
    """Compare stable, canary and shadow: agreement, score deltas, latency and errors."""
    found = _service(ctx).compare(name, since=since, until=until)
    if json:
        print_json(found)
        return
    table(
        f"Variants of {name}",
        ["variant", "requests", "errors", "error rate", "p50 ms", "p99 ms", "versions"],
        _figure_rows(found["figures"]),
    )
    if not found["pairs"]:
        console.print("No request was answered by two variants (a shadow mirrors them).")
        return
    table(
        "Same requests, two variants",
        ["variants", "requests", "agreement", "mean |score delta|"],
        [
            (" vs ".join(p["variants"]), p["requests"], fmt_number(p["agreement"]),
             fmt_number(p["mean_abs_delta"]))
            for p in found["pairs"]
        ],
    )  # fmt: skip


def _figure_rows(figures: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One table row per variant of a deployment's live figures."""
    return [
        (
            v, f["requests"], f["server_errors"], fmt_number(f["error_rate"]),
            fmt_number(f["p50_ms"]), fmt_number(f["p99_ms"]), ",".join(map(str, f["versions"])),
        )
        for v, f in figures.items()
    ]  # fmt: skip
