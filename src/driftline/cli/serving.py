"""``driftline serve`` (a registered model or a deployment over HTTP), ``driftline predict``
(batch scoring); ``driftline deploy`` is in :mod:`driftline.cli.deploy`."""

from __future__ import annotations

from typing import Any

import typer

from driftline.cli._context import CliState
from driftline.cli._output import JsonOption, console, print_json
from driftline.errors import InvalidArgumentError


def serve(
    ctx: typer.Context,
    model: str | None = typer.Argument(
        None,
        help="The model: churn@champion, churn/3, models:/churn@champion (or --deployment).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8080, "--port", "-p", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes."),
    auth: bool = typer.Option(
        False, "--auth", help="Require a bearer token of a user who may read the model."
    ),
    deployment: str | None = typer.Option(
        None,
        "--deployment",
        "-d",
        help="Without a model: serve this deployment record (its variants, weights and "
        "rollout; see `driftline deploy`). With a model: the name requests and the "
        "prediction log are filed under (default: the model's name).",
    ),
    max_batch_size: int | None = typer.Option(
        None, "--max-batch-size", help="Micro-batching: the most rows per predict call."
    ),
    max_latency_ms: float | None = typer.Option(
        None, "--max-latency-ms", help="Micro-batching: the longest a request waits for others."
    ),
    log_sample: float = typer.Option(
        1.0, "--log-sample", help="Share of requests written to the prediction log (0: off)."
    ),
    timeout_ms: float = typer.Option(
        5000.0, "--timeout-ms", help="Requests waiting longer are shed (503 + Retry-After)."
    ),
    max_rows: int = typer.Option(10_000, "--max-rows", help="Most rows per request (413)."),
    max_body_kb: int = typer.Option(
        16 * 1024, "--max-body-kb", help="Largest request body in KiB (413)."
    ),
    max_queue: int = typer.Option(
        512, "--max-queue", help="Requests that may wait for the model at once (more: 503)."
    ),
    poll_interval: float = typer.Option(
        1.0, "--poll-interval", help="Seconds between looks at the registry for alias moves."
    ),
    log_level: str = typer.Option("warning", "--log-level", help="debug, info, warning, error."),
) -> None:
    """Serve a registered model or a deployment: /predict, MLflow's /invocations, OIP v2.

    An alias is followed: when it moves, each worker loads, verifies and warms the new
    version in the background and swaps it in without failing a request. A deployment
    (--deployment NAME, no model) is followed the same way: its canary, shadow and
    traffic split as `driftline deploy` changes them, and every serving process takes
    its turn driving the canary's checks.
    """
    from driftline.serving.models import BatchingPolicy, ModelTarget, ServingOptions
    from driftline.serving.runner import check_target, serve
    from driftline.settings import Settings

    state: CliState = ctx.find_root().obj
    settings = Settings.load(**state.overrides)
    batching = None
    if max_batch_size is not None or max_latency_ms is not None:
        batching = BatchingPolicy(
            max_batch_size=max_batch_size or 64,
            max_latency_ms=5.0 if max_latency_ms is None else max_latency_ms,
        )
    limits: dict[str, Any] = {
        "auth": auth, "timeout_ms": timeout_ms, "max_rows": max_rows,
        "max_body": max_body_kb * 1024, "max_queue": max_queue, "poll_interval": poll_interval,
    }  # fmt: skip
    if model is None:
        if deployment is None:
            raise InvalidArgumentError(
                "Name what to serve: a model (driftline serve churn@champion) or a "
                "deployment (driftline serve --deployment churn)"
            )
        options = _deployment_options(settings, deployment, batching, limits)
    else:
        options = ServingOptions(
            target=ModelTarget.parse(model),
            deployment=deployment or "",
            batching=batching,
            log_sample=log_sample,
            **limits,
        )
    batching = options.batching
    checked = check_target(settings, options)  # a missing alias fails here, exit 1
    version = checked[1]
    batch_text = (
        f"batches of <= {batching.max_batch_size} rows / {batching.max_latency_ms:g} ms"
        if batching
        else "no batching"
    )
    what = "deployment" if options.follow_deployment else "as deployment"
    typer.echo(
        f"Serving {version.ref} ({options.target.ref}) {what} {options.deployment!r} "
        f"on http://{host}:{port} ({workers} worker(s), {batch_text}, auth "
        f"{'on' if auth else 'off'})"
    )
    serve(
        settings, options, host=host, port=port, workers=workers, log_level=log_level,
        checked=checked,
    )  # fmt: skip


def _deployment_options(settings: Any, name: str, batching: Any, limits: dict[str, Any]) -> Any:
    """Serving options from a deployment record (flags given on the command line win)."""
    from driftline.serving.deployments import DeploymentService
    from driftline.serving.models import ServingOptions
    from driftline.workspace import Workspace

    with Workspace.from_settings(settings) as workspace:
        record = workspace.service("serving", DeploymentService).get_deployment(name)
    spec = record.spec
    # Rows reach the prediction log (which the canary's checks read) within a poll.
    flush = min(2.0, limits["poll_interval"])
    if spec.canary is not None:
        flush = min(flush, spec.canary.interval / 2)
    return ServingOptions(
        target=spec.stable_target,
        deployment=name,
        follow_deployment=True,
        batching=batching or spec.batching,
        log_sample=spec.log_sample,
        log_flush_seconds=flush,
        **limits,
    )


def predict(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The model: models:/churn@champion, churn/3, ..."),
    input_: str = typer.Option(
        ..., "--input", "-i", help="A dataset version (customers@7) or a .parquet/.csv file."
    ),
    output: str = typer.Option(..., "--output", "-o", help="The Parquet file to write."),
    chunk_rows: int = typer.Option(50_000, "--chunk-rows", help="Rows per predict call."),
    experiment: str = typer.Option(
        "batch-scoring", "--experiment", "-e", help="The experiment of the scoring run."
    ),
    executor: str = typer.Option(
        "local",
        "--executor",
        help="local, ray (Ray Data on a local Ray or RAY_ADDRESS) or ray://HOST:PORT.",
    ),
    json: bool = JsonOption,
) -> None:
    """Batch-score a dataset version or a file with a registered model, recorded as a run."""
    import driftline as dl
    from driftline.serving.batch import score

    state: CliState = ctx.find_root().obj
    dl.configure(**state.overrides, async_logging=False)
    if json or not console.is_terminal:
        result = score(
            model, input_, output, chunk_rows=chunk_rows, experiment=experiment,
            executor=executor,
        )  # fmt: skip
    else:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"Scoring {input_}", total=None)

            def advance(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            result = score(
                model, input_, output, chunk_rows=chunk_rows, experiment=experiment,
                progress=advance, executor=executor,
            )  # fmt: skip
    if json:
        print_json(result.to_dict())
        return
    summary = result.to_dict()
    console.print(
        f"Scored {result.rows} rows of {result.input} with {result.model} in "
        f"{result.seconds:.2f} s ({summary['rows_per_second']} rows/s) -> {result.output}; "
        f"recorded as run {result.run_id}",
        highlight=False,
        soft_wrap=True,
    )


def install_commands(root_app: typer.Typer) -> None:
    """Add ``driftline serve``, ``driftline predict`` and ``driftline deploy`` (the serving
    stage's ``cli`` hook)."""
    from driftline.cli.deploy import app as deploy_app

    root_app.command(name="serve")(serve)
    root_app.command(name="predict")(predict)
    root_app.add_typer(deploy_app, name="deploy")
