"""``driftline models`` and ``driftline audit``: the registry from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import (
    JsonOption,
    console,
    err_console,
    fmt_number,
    fmt_time,
    print_json,
    table,
)

if TYPE_CHECKING:
    from driftline.models import ModelCache
    from driftline.registry import RegistryService

app = typer.Typer(
    help="Register, evaluate, promote and roll back models.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
audit_app = typer.Typer(
    help="The tamper-evident audit log.", no_args_is_help=True, rich_markup_mode=None
)


def install_commands(root_app: typer.Typer) -> None:
    """Add ``driftline models`` and ``driftline audit`` (the registry stage's ``cli`` hook)."""
    root_app.add_typer(app, name="models")
    root_app.add_typer(audit_app, name="audit")


def _registry(ctx: typer.Context) -> RegistryService:
    return open_workspace(ctx).registry


def _cache(ctx: typer.Context) -> ModelCache:
    from driftline.models import ModelCache

    return ModelCache.of(open_workspace(ctx).settings)


AliasOption = typer.Option(..., "--alias", "-a", help="The alias, e.g. champion or production.")
NameArgument = typer.Argument(..., help="The registered model's name, e.g. churn.")
VersionArgument = typer.Argument(..., help="The version number, e.g. 3.")
DataOption = typer.Option(
    ..., "--data", help="Evaluation data: a dataset ref (customers@7) or a Parquet/CSV file."
)
TargetOption = typer.Option(..., "--target", "-t", help="The column holding the true values.")


@app.command("list")
def list_(ctx: typer.Context, json: bool = JsonOption) -> None:
    """List registered models.

    Each with its latest version and aliases.
    """
    models = _registry(ctx).list_models()
    if json:
        print_json(models)
        return
    if not models:
        console.print("No registered models yet: driftline models register runs:/RUN_ID/model NAME")
        return
    table(
        "Registered models",
        ["name", "latest", "aliases", "updated"],
        [
            (
                m.name,
                m.latest_version or "",
                ", ".join(f"{a}->v{v}" for a, v in m.aliases.items()),
                fmt_time(m.updated_at),
            )
            for m in models
        ],
    )


@app.command()
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="churn, churn/3 or churn@champion"),
    json: bool = JsonOption,
) -> None:
    """Show a version's model card.

    Lineage, evaluations, gates and approvals; a bare NAME means its latest version.
    """
    registry = _registry(ctx)
    target = ref if ("/" in ref or "@" in ref) else f"{ref}@latest"
    facts = registry.card_facts(target)
    if json:
        print_json(dict(facts))
        return
    from driftline.registry.card import render_card_text

    console.print(render_card_text(facts), highlight=False, markup=False)


@app.command()
def update(
    ctx: typer.Context,
    name: str = NameArgument,
    description: str | None = typer.Option(
        None, "--description", "-d", help="A new description of the model."
    ),
    tag: list[str] | None = typer.Option(
        None, "--tag", "-t", help="A tag to set, key=value (repeatable)."
    ),
    json: bool = JsonOption,
) -> None:
    """Set a model's description and tags."""
    from driftline.errors import InvalidArgumentError

    pairs = {}
    for item in tag or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgumentError(f"Tags are key=value, got {item!r}")
        pairs[key] = value
    model = _registry(ctx).update_model(name, description=description, tags=pairs)
    if json:
        print_json(model)
    else:
        console.print(f"Updated {model.name}: {model.description or ''} {dict(model.tags)}")


@app.command()
def versions(ctx: typer.Context, name: str = NameArgument, json: bool = JsonOption) -> None:
    """List a model's versions, newest first."""
    found = _registry(ctx).list_versions(name)
    if json:
        print_json(found)
        return
    table(
        f"Versions of {name}",
        ["version", "aliases", "flavor", "run", "registered", "by"],
        [
            (
                v.version,
                ", ".join(v.aliases),
                v.flavor,
                v.run_id or "",
                fmt_time(v.created_at),
                v.created_by,
            )
            for v in found
        ],
    )


@app.command()
def register(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="runs:/RUN_ID/model or a saved model folder."),
    name: str = typer.Argument(..., help="The model to add a version to (created if new)."),
    description: str | None = typer.Option(
        None, "--description", "-d", help="What this version is."
    ),
    json: bool = JsonOption,
) -> None:
    """Register a model as NAME's next version.

    SOURCE is a logged model (runs:/RUN_ID/model) or a saved model folder.
    """
    version = _registry(ctx).register_model(source, name, description=description)
    if json:
        print_json(version)
    else:
        console.print(f"Registered {version.uri} (flavor {version.flavor})")


@app.command()
def alias(
    ctx: typer.Context,
    name: str = NameArgument,
    alias_: str = typer.Argument(..., metavar="ALIAS", help="The alias, e.g. champion."),
    version: int | None = typer.Argument(None, help="The version to point at."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias."),
) -> None:
    """Point NAME@ALIAS at VERSION.

    Aliases under an approval policy move only by `driftline models promote`.
    """
    registry = _registry(ctx)
    if delete:
        registry.delete_alias(name, alias_)
        console.print(f"Deleted {name}@{alias_}")
        return
    if version is None:
        from driftline.errors import InvalidArgumentError

        raise InvalidArgumentError("Give a VERSION, or --delete")
    move = registry.set_alias(name, alias_, version)
    console.print(f"{name}@{alias_}: v{move.previous_version or '-'} -> v{move.version}")


def _print_gates(report: Any) -> None:
    from driftline.registry.evaluation import format_measured

    if report.gates:
        table(
            "Gates",
            ["gate", "passed", "measured", "threshold", "detail"],
            [
                (
                    g.gate,
                    "yes" if g.passed else "NO",
                    format_measured(g.measured) if g.measured is not None else "",
                    fmt_number(g.threshold),
                    g.message,
                )
                for g in report.gates
            ],
        )


@app.command()
def promote(
    ctx: typer.Context,
    name: str = NameArgument,
    version: int = VersionArgument,
    alias_: str = AliasOption,
    gates: Path | None = typer.Option(
        None, "--gates", "-g", help="A gate file (YAML) every gate of which must pass."
    ),
    json: bool = JsonOption,
) -> None:
    """Move an alias to a version through gates.

    Only if the alias's approvals are in and every gate passes; exit code 1 if not.
    """
    from driftline.registry.promotion import GateFailedError
    from driftline.registry.promotion import promote as run

    try:
        report = run(_registry(ctx), name, version, alias_, gates=gates, cache=_cache(ctx))
    except GateFailedError as refused:
        if json:
            print_json(refused.report)
        else:
            _print_gates(refused.report)
        raise
    if json:
        print_json(report)
        return
    _print_gates(report)
    console.print(
        f"Promoted {name}/{version} to @{alias_} (was "
        f"{'v' + str(report.previous_version) if report.previous_version else 'unset'})"
    )


@app.command()
def rollback(ctx: typer.Context, name: str = NameArgument, alias_: str = AliasOption) -> None:
    """Move an alias back one step.

    To the version it held before its latest move.
    """
    move = _registry(ctx).rollback(name, alias_)
    console.print(f"{name}@{alias_}: v{move.previous_version} -> v{move.version} (rolled back)")


@app.command()
def approve(
    ctx: typer.Context,
    name: str = NameArgument,
    version: int = VersionArgument,
    alias_: str = AliasOption,
    comment: str | None = typer.Option(
        None, "--comment", "-c", help="Why, recorded with the approval."
    ),
) -> None:
    """Approve a version for an alias.

    The approval is recorded as the current user's.
    """
    approval = _registry(ctx).approve(name, version, alias_, comment=comment)
    console.print(f"{approval.actor} approved {name}/{version} for @{alias_}")


@app.command()
def policy(
    ctx: typer.Context,
    alias_: str = typer.Argument(..., metavar="ALIAS", help="The alias, e.g. production."),
    required: int = typer.Option(
        ..., "--required", "-n", help="Approvals needed by distinct people."
    ),
) -> None:
    """Require approvals for an alias.

    Versions are then promoted to it only with that many approvals.
    """
    _registry(ctx).set_policy(alias_, required)
    console.print(f"@{alias_} now requires {required} approval(s)")


@app.command()
def evaluate(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="The version: churn/3 or churn@champion."),
    data: str = DataOption,
    target: str = TargetOption,
    slice_: list[str] | None = typer.Option(
        None, "--slice", help="A column to report metrics per value of (repeatable)."
    ),
    json: bool = JsonOption,
) -> None:
    """Evaluate a version on data.

    The metrics (and per-slice metrics) are stored on the version.
    """
    from driftline.registry.promotion import evaluate as run

    result = run(
        _registry(ctx), ref, data=data, target=target, slices=tuple(slice_ or ()), cache=_cache(ctx)
    )
    if json:
        print_json(result)
        return
    from driftline.registry.evaluation import format_metric

    table(
        f"{result.name}/{result.version} on {result.dataset or data} ({result.rows} rows, "
        f"{result.task})",
        ["metric", "value"],
        [(k, format_metric(v)) for k, v in result.metrics.items() if k != "confusion_matrix"],
    )
    for column, per_value in result.slices.items():
        metrics = [k for k, v in next(iter(per_value.values()), {}).items() if k != "rows"]
        table(
            f"By {column} ({len(per_value)} most frequent values)",
            [column, "rows", *metrics],
            [
                (value, row.get("rows"), *(format_metric(row.get(k, "")) for k in metrics))
                for value, row in per_value.items()
            ],
        )


@app.command()
def compare(
    ctx: typer.Context,
    refs: list[str] = typer.Argument(
        ..., help="Two or more versions (churn/3 churn@champion); the first is the baseline."
    ),
    data: str = DataOption,
    target: str = TargetOption,
    rounds: int = typer.Option(500, "--rounds", help="Bootstrap rounds for the CIs."),
    json: bool = JsonOption,
) -> None:
    """Compare versions on the same rows.

    Each metric's difference to the first version, with a paired bootstrap CI.
    """
    from driftline.registry.evaluation import format_metric
    from driftline.registry.promotion import compare_models

    result = compare_models(
        _registry(ctx), refs, data=data, target=target, cache=_cache(ctx), rounds=rounds
    )
    if json:
        print_json(result)
        return
    columns = ["metric", *result.models]
    columns += [
        f"{m} - {result.models[0]} ({int(result.confidence * 100)}% CI)" for m in result.models[1:]
    ]
    rows = []
    for metric in result.metrics:
        diffs = [
            f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
            if d is not None and lo is not None and hi is not None
            else ""
            for d, lo, hi in zip(
                metric.differences[1:], metric.ci_low[1:], metric.ci_high[1:], strict=True
            )
        ]
        rows.append(
            (
                metric.metric + (" ↑" if metric.higher_is_better else " ↓"),
                *(format_metric(v) for v in metric.values),
                *diffs,
            )
        )
    table(f"{result.rows} rows, {result.task}", columns, rows)


@app.command()
def card(
    ctx: typer.Context,
    name: str = NameArgument,
    version: int = VersionArgument,
    html: Path | None = typer.Option(None, "--html", help="Write an HTML card to this file."),
) -> None:
    """Print or write a model card.

    Lineage, params, metrics, signature, gates, approvals and alias history.
    """
    from driftline.registry.card import render_card_html, render_card_text

    facts = _registry(ctx).card_facts(f"{name}/{version}")
    if html is not None:
        html.write_text(render_card_html(facts), encoding="utf-8")
        console.print(f"Wrote {html}")
    else:
        console.print(render_card_text(facts), highlight=False, markup=False)


@audit_app.command("log")
def audit_log(
    ctx: typer.Context,
    model: str | None = typer.Option(None, "--model", "-m", help="Only this model's entries."),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many entries."),
    json: bool = JsonOption,
) -> None:
    """List recent audit entries, newest first.

    A server shows the entries of users, grants and tokens to admins only; for anyone
    else it leaves them out, and this says so.
    """
    entries = _registry(ctx).audit_log(model=model, limit=limit)
    if entries.omitted:
        # On stderr: the JSON on stdout stays the list of entries.
        err_console.print(
            f"Entries of {', '.join(entries.omitted)} left out: only an admin reads them",
            highlight=False,
            markup=False,
        )
    if json:
        print_json(entries)
        return
    table(
        "Audit log",
        ["#", "when", "actor", "action", "entity", "before", "after"],
        [
            (
                e.seq,
                fmt_time(e.at),
                e.actor,
                e.action,
                e.entity,
                "" if e.before is None else e.before,
                "" if e.after is None else e.after,
            )
            for e in entries
        ],
    )


@audit_app.command("verify")
def audit_verify(ctx: typer.Context, json: bool = JsonOption) -> None:
    """Verify the audit log's hash chain.

    Exit code 1, naming the first bad entry, if it was tampered with.
    """
    report = _registry(ctx).verify_audit()
    if json:
        print_json(report)
    elif report.ok:
        console.print(
            f"Audit log intact: {report.entries} entries verified, "
            + (
                f"anchored up to entry {report.anchored_seq} outside the database"
                if report.anchored_seq
                else "none anchored outside the database (a cut tail would not show)"
            )
        )
    else:
        console.print(
            f"[red]Audit log TAMPERED[/]: {report.problem} "
            f"(first bad entry: {report.first_bad_seq})"
        )
    if not report.ok:
        raise typer.Exit(1)
