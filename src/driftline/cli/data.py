"""``driftline data``: versions, diffs, profiles, schemas, validation, remotes, lineage."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import (
    JsonOption,
    console,
    fmt_number,
    fmt_size,
    fmt_time,
    print_json,
    table,
)

if TYPE_CHECKING:
    from driftline.data import DataService, Version
    from driftline.data.models import DatasetVersion
    from driftline.data.scan import Progress

app = typer.Typer(
    help="Version, profile and validate datasets.", no_args_is_help=True, rich_markup_mode=None
)
schema_app = typer.Typer(help="Infer data schemas.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(schema_app, name="schema")


def _stat(value: object) -> str:
    return fmt_number(value, digits=6)  # statistics keep more digits than gate tables


def _service(ctx: typer.Context) -> DataService:
    return open_workspace(ctx).data


def _version(ctx: typer.Context, ref: str) -> Version:
    from driftline.data import Version

    service = _service(ctx)
    return Version(service, service.get(ref))


def _version_rows(versions: list[DatasetVersion]) -> list[tuple[Any, ...]]:
    return [
        (
            v.ref,
            v.id.split(":")[1][:12],
            fmt_time(v.created_at),
            v.author,
            v.file_count,
            fmt_size(v.size),
            ", ".join(v.tags),
            v.message or "",
        )
        for v in versions
    ]


VersionArgument = typer.Argument(
    ..., help="A version: customers@3, customers@<tag>, or customers (the latest)."
)

_VERSION_COLUMNS = ["version", "id", "committed", "author", "files", "size", "tags", "message"]


@app.command()
def commit(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name, e.g. customers."),
    path: Path = typer.Argument(..., help="A file or a folder (committed recursively)."),
    message: str | None = typer.Option(
        None, "--message", "-m", help="What changed, shown in `data log`."
    ),
    tag: list[str] | None = typer.Option(None, "--tag", "-t", help="Tag the version (repeatable)."),
    json: bool = JsonOption,
) -> None:
    """Commit a file or folder as the next version of a dataset."""
    service = _service(ctx)
    previous = service.find_latest(name)
    with _commit_progress(f"Storing {path}", enabled=not json and sys.stdout.isatty()) as report:
        version = service.commit(name, path, message=message, tags=tag or (), progress=report)
    if json:
        print_json(version)
        return
    unchanged = previous is not None and previous.id == version.id
    # One line, through typer: importing rich for it would be a tenth of an unchanged
    # re-commit's time.
    typer.echo(
        f"{typer.style(version.ref, bold=True)} {version.id}  {version.file_count} files, "
        f"{fmt_size(version.size)}"
        + (f", tags {', '.join(version.tags)}" if version.tags else "")
        + (" (unchanged)" if unchanged else "")
    )


@contextlib.contextmanager
def _commit_progress(label: str, *, enabled: bool) -> Iterator[Progress | None]:
    """A transfer bar on a terminal, redrawn at most 10 times a second; else nothing.

    Files are ingested by a pool of threads, 10,000s of them per commit: the callback
    only records numbers, and rich (whose import alone is felt in a short command) is
    loaded only when there is a terminal to draw on.
    """
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, TransferSpeedColumn
    from rich.progress import Progress as Bar

    with Bar(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
        refresh_per_second=10,
    ) as bar:
        task = bar.add_task(label, total=None)
        last = 0.0

        def report(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 0.1 or done >= total:
                last = now
                bar.update(task, completed=done, total=total)

        yield report


@app.command("list")
def list_(ctx: typer.Context, json: bool = JsonOption) -> None:
    """List datasets with their latest version."""
    datasets = _service(ctx).list_datasets()
    if json:
        print_json(datasets)
        return
    if not datasets:
        console.print("No datasets yet: driftline data commit NAME PATH")
        return
    table(
        "Datasets",
        ["name", "latest", "created"],
        [(d.name, d.latest or "", fmt_time(d.created_at)) for d in datasets],
    )


@app.command()
def log(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name, e.g. customers."),
    json: bool = JsonOption,
) -> None:
    """The versions of a dataset, newest first."""
    versions = _service(ctx).log(name)
    if json:
        print_json(versions)
        return
    table(f"History of {name}", _VERSION_COLUMNS, _version_rows(versions))


@app.command()
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="e.g. customers@3"),
    json: bool = JsonOption,
) -> None:
    """A version's metadata and files."""
    version = _version(ctx, ref)
    files = version.files
    if json:
        print_json({"version": version.record, "files": files})
        return
    record = version.record
    console.print(f"[bold]{record.ref}[/]  {record.id}")
    console.print(f"  committed  {fmt_time(record.created_at)} by {record.author}")
    if record.message:
        console.print(f"  message    {record.message}")
    if record.parent:
        console.print(f"  parent     {record.dataset}@{record.parent}")
    if record.run_id:
        console.print(f"  produced by run {record.run_id}")
    if record.tags:
        console.print(f"  tags       {', '.join(record.tags)}")
    console.print(
        f"  {record.file_count} files, {fmt_size(record.size)}"
        + (", tabular (see `driftline data profile`)" if record.tabular else "")
    )
    shown = files[:50]
    table(None, ["path", "size", "digest"], [(f.path, fmt_size(f.size), f.digest) for f in shown])
    if len(files) > len(shown):
        console.print(f"... and {len(files) - len(shown)} more (--json lists all)")


@app.command()
def diff(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="From, e.g. customers@2"),
    b: str = typer.Argument(..., help="To, e.g. customers@3"),
    key: list[str] | None = typer.Option(
        None, "--key", "-k", help="Key column(s) for a row-level diff."
    ),
    json: bool = JsonOption,
) -> None:
    """Compare two versions: files, schema, statistics, rows."""
    from driftline.data.diff import diff_versions

    result = diff_versions(_version(ctx, a), _version(ctx, b), key=key or None)
    if json:
        print_json(result)
        return
    if result.unchanged:
        console.print(f"{a} and {b} hold identical files")
    else:
        table(
            f"Files {a} -> {b}",
            ["change", "path", "was", "size change"],
            [(c.kind, c.path, c.old_path or "", f"{c.size_delta:+d} B") for c in result.files],
        )
    old_rows, new_rows = result.rows
    if old_rows is not None:
        console.print(f"rows: {old_rows} -> {new_rows} ({(new_rows or 0) - old_rows:+d})")
    for change in result.schema_changes:
        console.print(f"schema: {change}")
    if result.column_changes:
        table(
            "Column statistics that changed",
            ["column", "statistic", "from", "to"],
            [
                (col, stat, _stat(old), _stat(new))
                for col, stats in result.column_changes.items()
                for stat, (old, new) in stats.items()
            ],
        )
    if result.row_diff is not None:
        rows = result.row_diff
        console.print(
            f"rows by key ({', '.join(rows.key)}): {rows.added} added, "
            f"{rows.removed} removed, {rows.changed} changed, {rows.unchanged} unchanged"
        )
        for kind, sample in rows.samples.items():
            if sample:
                console.print(f"  e.g. {kind}: {sample[0]}")


@app.command()
def checkout(
    ctx: typer.Context,
    ref: str = VersionArgument,
    folder: Path = typer.Argument(..., help="An empty or new folder."),
    link: str = typer.Option(
        "reflink",
        "--link",
        help="reflink (a copy-on-write clone where the filesystem can, else a copy), copy, "
        "or hardlink (no copy, but writing a checked-out file changes the stored one).",
    ),
) -> None:
    """Write a version's files into a folder, read-only (see --link)."""
    # checkout refuses an unknown mode with the list of known ones
    target = _version(ctx, ref).checkout(folder, link=link)  # type: ignore[arg-type]
    console.print(f"Checked out {ref} into {target}")


@app.command()
def profile(ctx: typer.Context, ref: str = VersionArgument, json: bool = JsonOption) -> None:
    """Column statistics computed when a tabular version was committed."""
    result = _version(ctx, ref).profile
    if json:
        print_json(result.to_dict())
        return
    console.print(f"{ref}: {result.rows} rows, {len(result.columns)} columns")
    table(
        None,
        ["column", "type", "nulls", "distinct", "min", "max", "mean", "std", "top"],
        [
            (
                c.name,
                c.type,
                c.nulls,
                c.distinct,
                _stat(c.min),
                _stat(c.max),
                _stat(c.mean),
                _stat(c.std),
                ", ".join(f"{v} ({n})" for v, n in c.top_k[:3]),
            )
            for c in result.columns.values()
        ],
    )


@schema_app.command("infer")
def schema_infer(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="A version, e.g. customers@3"),
    output: Path = typer.Option(..., "--output", "-o", help="Schema file to write (YAML)."),
) -> None:
    """Infer a conservative schema from a version (edit it, then validate new data)."""
    from driftline.data.schema import infer_schema

    schema = infer_schema(_version(ctx, ref).profile)
    schema.save(output)
    console.print(
        f"Wrote {output} ({len(schema.columns)} columns). Review it, then run: "
        f"driftline data validate NEW_DATA --schema {output} --reference {ref}",
        soft_wrap=True,
    )


@app.command()
def validate(
    ctx: typer.Context,
    path: str = typer.Argument(
        ...,
        help="A Parquet/CSV file, a folder of them, or a dataset version (customers@2).",
    ),
    schema: Path = typer.Option(..., "--schema", "-s", help="Schema file (YAML)."),
    reference: str | None = typer.Option(
        None, "--reference", "-r", help="A version to check drift against."
    ),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML report here."),
    json: bool = JsonOption,
) -> None:
    """Validate a batch; exit 1 when it has errors (for CI gating)."""
    import driftline.data as data_api
    from driftline.data import Version

    service = _service(ctx)
    ref = Version(service, service.get(reference)) if reference else None
    # Resolved here, against this command's workspace (--uri), not the default one.
    source = data_api.resolve_source(path, service)
    report = data_api.validate(source, schema=schema, reference=ref)
    if html is not None:
        from driftline.data.report import render_html

        html.write_text(render_html(report, title=f"Validation of {path}"), encoding="utf-8")
    if json:
        print_json(report.to_dict())
    else:
        verdict = "[green]passed[/]" if report.ok else "[red]FAILED[/]"
        console.print(f"{path}: {report.rows} rows, validation {verdict}")
        if report.anomalies:
            table(
                "Anomalies",
                ["severity", "column", "kind", "measured", "threshold", "examples"],
                [
                    (
                        a.severity,
                        a.column or "",
                        a.kind,
                        _stat(a.measured),
                        _stat(a.threshold),
                        ", ".join(a.examples[:3]),
                    )
                    for a in report.anomalies
                ],
            )
        if html is not None:
            console.print(f"Report: {html}")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def tag(
    ctx: typer.Context,
    ref: str = VersionArgument,
    name: str = typer.Argument(..., help="The tag, e.g. prod; then customers@prod names it."),
) -> None:
    """Give a version an immutable tag."""
    version = _service(ctx).tag(ref, name)
    console.print(f"Tagged {version.ref} as {version.dataset}@{name}")


def _remote(ctx: typer.Context, remote: str | None) -> str:
    from driftline.errors import InvalidArgumentError

    chosen = remote or open_workspace(ctx).settings.data_remote
    if not chosen:
        raise InvalidArgumentError("No remote: pass --remote URL or set DRIFTLINE_DATA_REMOTE")
    return chosen


RemoteOption = typer.Option(None, "--remote", help="A folder or fsspec URL (s3://bucket/x).")


@app.command()
def push(
    ctx: typer.Context,
    ref: str | None = typer.Argument(None, help="Default: all."),
    remote: str | None = RemoteOption,
    json: bool = JsonOption,
) -> None:
    """Upload versions and the objects the remote lacks."""
    from driftline.data.remote import push as run

    result = run(_service(ctx), ref, remote=_remote(ctx, remote))
    if json:
        print_json(result)
    else:
        console.print(
            f"Pushed {len(result.versions)} versions to {result.remote}: "
            f"{result.objects} objects ({fmt_size(result.bytes)}) uploaded, "
            f"{result.skipped_objects} already there"
        )


@app.command()
def pull(
    ctx: typer.Context,
    ref: str | None = typer.Argument(None, help="Default: all."),
    remote: str | None = RemoteOption,
    json: bool = JsonOption,
) -> None:
    """Download versions and the objects missing here."""
    from driftline.data.remote import pull as run

    result = run(_service(ctx), ref, remote=_remote(ctx, remote))
    if json:
        print_json(result)
    else:
        console.print(
            f"Pulled {len(result.versions)} versions from {result.remote}: "
            f"{result.objects} objects ({fmt_size(result.bytes)}) downloaded"
        )


@app.command()
def lineage(
    ctx: typer.Context,
    ref: str = VersionArgument,
    depth: int = typer.Option(3, "--depth", help="How many steps to follow each way."),
    json: bool = JsonOption,
) -> None:
    """Show what made a version and what used it (runs and versions)."""
    from rich.tree import Tree

    graph = _service(ctx).lineage(ref, depth=depth)
    if json:
        print_json(graph)
        return
    root = Tree(f"[bold]{graph.root}[/]")
    up = root.add("upstream (made from)")
    for edge in graph.upstream:
        up.add(f"{edge.source} -> {edge.target}")
    down = root.add("downstream (used by)")
    for edge in graph.downstream:
        down.add(f"{edge.source} -> {edge.target}")
    console.print(root)


def install_commands(root_app: typer.Typer) -> None:
    """Add ``driftline data`` to the root command (the data stage's ``cli`` hook)."""
    root_app.add_typer(app, name="data")


def register_gc(root_app: typer.Typer) -> None:
    """Add ``driftline gc`` to the root command."""

    @root_app.command()
    def gc(
        ctx: typer.Context,
        dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would go."),
        grace: float = typer.Option(
            24.0, "--grace-hours", help="Keep unreferenced objects younger than this."
        ),
        json: bool = JsonOption,
    ) -> None:
        """Delete stored objects nothing refers to.

        An object is kept while a dataset version, a run or a model refers to it.
        """
        from driftline.gc import collect_garbage

        result = collect_garbage(open_workspace(ctx), dry_run=dry_run, grace_seconds=grace * 3600)
        if json:
            print_json(result)
            return
        verb = "Would delete" if dry_run else "Deleted"
        console.print(
            f"{verb} {len(result.unreferenced)} unreferenced objects "
            f"({fmt_size(result.bytes)}); {result.referenced} referenced, "
            f"{result.kept_young} kept as younger than the grace period"
        )
        if result.salvaged:
            console.print(
                f"{'Would salvage' if dry_run else 'Salvaged'} {len(result.salvaged)} "
                "referenced objects from packs whose index a crash had torn"
            )
        if result.leftovers:
            console.print(
                f"{verb} {len(result.leftovers)} files left by interrupted writes "
                f"({fmt_size(result.leftover_bytes)})"
            )
        if dry_run:
            listed = (*result.unreferenced, *result.leftovers)
            for name in listed[:50]:
                console.print(f"  {name}", highlight=False)
            if len(listed) > 50:
                console.print(f"  ... and {len(listed) - 50} more (--json lists them all)")
