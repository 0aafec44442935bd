"""``driftline quickstart``: the whole loop on bundled data, in the current folder."""

from __future__ import annotations

import typer

from driftline.cli._context import CliState
from driftline.cli._output import JsonOption, console, print_json, table


def register(app: typer.Typer) -> None:
    """Add ``quickstart`` to the root command."""

    @app.command()
    def quickstart(
        ctx: typer.Context,
        metric: str = typer.Option(
            "auc", "--metric", "-m", help="Rank by auc, accuracy, f1 or log_loss."
        ),
        experiment: str = typer.Option("quickstart", "--experiment", "-e"),
        json: bool = JsonOption,
    ) -> None:
        """Train a few scikit-learn models on bundled data, track each run, compare them."""
        import driftline as dl
        from driftline.quickstart import METRICS, run_quickstart
        from driftline.tracking.models import format_value

        try:
            import matplotlib  # noqa: F401
            import sklearn  # noqa: F401
        except ImportError as exc:
            from driftline.errors import BackendError

            raise BackendError(
                f"The quickstart needs {exc.name}: pip install 'driftline[quickstart]'"
            ) from None
        state: CliState = ctx.find_root().obj
        ws = dl.configure(**state.overrides)
        from rich.progress import Progress, SpinnerColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(),
            *Progress.get_default_columns(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=json,
        ) as bar:
            task = bar.add_task("Training")

            def advance(name: str, done: int, total: int) -> None:
                bar.update(task, description=f"Training {name}", completed=done, total=total)

            result = run_quickstart(metric=metric, experiment=experiment, progress=advance)
        if json:
            print_json(
                {
                    "experiment": result.experiment,
                    "parent_run_id": result.parent_run_id,
                    "metric": metric,
                    "runs": result.runs,
                }
            )
            return
        keys = [metric, *(k for k in METRICS if k != metric)]
        console.print(f"Workspace: {ws.settings.home}")
        table(
            f"Models ranked by {metric} on the held-out test set "
            f"({'higher' if METRICS[metric] else 'lower'} is better)",
            ["rank", "run", "run id", *keys],
            [
                (i + 1, r.name, r.id, *(format_value(r.metrics[k]) for k in keys))
                for i, r in enumerate(result.runs)
            ],
        )
        best = result.runs[0]
        console.print(
            f"Best: [bold green]{best.name}[/] ({metric} {format_value(best.metrics[metric])})"
        )
        console.print("Explore:")
        for command in (
            f"driftline runs show {best.id}",
            f"driftline runs compare {' '.join(r.id for r in result.runs[:3])}",
            f'driftline runs search -e {experiment} -f "metrics.auc > 0.99" -o "metrics.auc desc"',
            f"driftline artifacts get {best.id} plots -o ./plots",
        ):
            console.print(f"  {command}", soft_wrap=True, highlight=False)
