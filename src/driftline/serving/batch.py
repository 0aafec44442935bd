"""Batch scoring: a registered model over a dataset version or a file, chunk by chunk.

The input is read in chunks of ``chunk_rows`` (a Parquet file by row groups, a CSV file
by blocks, a dataset version from its Arrow table), each chunk is predicted and appended
to one Parquet output: the input columns, then ``prediction`` (or ``prediction_<i>`` for
several outputs per row, or the model's own column names for a table). Memory stays at
a few chunks whatever the input's size (a dataset version is read whole first, for now).

The scoring is recorded as a run of the experiment ``batch-scoring``: the model version
as params and the tag ``driftline.model_version``, the dataset version as an input
(lineage), row count and speed as metrics, and the output file as an artifact.

With ``executor="ray"`` (or ``"ray://HOST:PORT"``) the chunks are scored on Ray Data:
``map_batches`` over a pool of actors, each loading the model once, in input order; the
driver writes the same Parquet file the local path writes. On a cluster the input file,
the workspace and the model store must be reachable from the nodes.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from driftline.errors import InvalidArgumentError
from driftline.serving.models import ModelTarget, ScoringResult

__all__ = ["score"]

Progress = Callable[[int, int | None], None]
"""Called as ``progress(rows done, rows in all or None when unknown)``."""


def _chunks(workspace: Any, source: str, chunk_rows: int) -> tuple[Iterator[Any], int | None, Any]:
    """``(record batches, total rows or None, dataset version or None)``."""
    path = Path(source)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            reader = pq.ParquetFile(path)
            return reader.iter_batches(batch_size=chunk_rows), reader.metadata.num_rows, None
        if suffix == ".csv":
            import pyarrow.csv as pcsv

            stream = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 22))
            return iter(stream), None, None
        raise InvalidArgumentError(f"Cannot score {source}: use a .parquet or .csv file")
    from driftline.data import Version

    record = workspace.data.get(source)  # NotFoundError names near datasets
    table = Version(workspace.data, record).to_arrow()
    return iter(table.to_batches(max_chunksize=chunk_rows)), table.num_rows, record


def output_table(batch: Any, predictions: Any) -> Any:
    """The scored table: the input columns, then the predictions' (see the module doc)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    if isinstance(predictions, pd.DataFrame):
        for name in predictions.columns:
            table = table.append_column(str(name), pa.array(predictions[name].to_numpy()))
        return table
    values = np.asarray(predictions)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim == 1:
        return table.append_column("prediction", pa.array(values))
    for i in range(values.shape[1]):
        table = table.append_column(f"prediction_{i}", pa.array(values[:, i]))
    return table


def score(
    model: str,
    source: str | Path,
    output: str | Path,
    *,
    chunk_rows: int = 50_000,
    experiment: str = "batch-scoring",
    progress: Progress | None = None,
    executor: str = "local",
    max_workers: int | None = None,
) -> ScoringResult:
    """Score ``source`` with ``model`` into the Parquet file ``output``, recorded as a run.

    Args:
        model: ``churn@champion``, ``churn/3`` or ``models:/...``.
        source: A dataset version (``customers@7``) or a ``.parquet``/``.csv`` path.
        output: The Parquet file to write (replaced if it exists).
        chunk_rows: Rows predicted per call.
        experiment: The experiment the scoring run is filed under.
        progress: Called after each chunk.
        executor: ``"local"`` (this process), ``"ray"`` or ``"ray://HOST:PORT"`` (Ray
            Data, the model loaded once per actor).
        max_workers: Ray actors scoring at once (default: the cluster's CPUs but one).

    Example:
        >>> dl.serving.score("churn@champion", "customers@7", "scores.parquet")  # doctest: +SKIP
    """
    import pyarrow.parquet as pq

    import driftline as dl
    from driftline.models import ModelCache
    from driftline.serving.service import load_version, resolve_target

    if chunk_rows < 1:
        raise InvalidArgumentError("chunk_rows must be at least 1")
    if executor != "local" and not executor.startswith("ray"):
        raise InvalidArgumentError(
            f"Unknown executor {executor!r}; known: 'local', 'ray', or 'ray://HOST:PORT'"
        )
    workspace = dl.get_workspace()
    version = resolve_target(workspace.registry, ModelTarget.parse(model))
    if executor == "local":
        loaded = load_version(workspace.registry, ModelCache.of(workspace.settings), version)
        batches, total, dataset = _chunks(workspace, str(source), chunk_rows)

        def predicted() -> Iterator[Any]:
            for batch in batches:
                if batch.num_rows:
                    yield output_table(batch, loaded.predict(batch.to_pandas()))

    else:
        tables, total, dataset = _on_ray(
            workspace, str(source), version.ref, chunk_rows, executor, max_workers
        )

        def predicted() -> Iterator[Any]:
            return (t for t in tables if t.num_rows)

    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    started = time.perf_counter()
    rows = 0
    with dl.start_run(experiment=experiment, name=f"score {version.ref}") as run:
        dl.log_params(
            {"model": version.name, "model_version": version.version, "input": str(source)}
        )
        dl.set_tag("driftline.model_version", version.ref)
        if dataset is not None:
            dl.log_input(dataset)
        dl.log_param("executor", executor)
        writer = None
        try:
            for table in predicted():
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                rows += table.num_rows
                if progress is not None:
                    progress(rows, total)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise InvalidArgumentError(f"{source} has no rows to score")
        tmp.replace(out)
        seconds = time.perf_counter() - started
        dl.log_metrics({"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds})
        dl.log_artifact(out, "scores")
    return ScoringResult(
        model=version.ref,
        input=str(source),
        output=str(out),
        rows=rows,
        seconds=seconds,
        run_id=run.id,
    )


def _on_ray(
    workspace: Any,
    source: str,
    ref: str,
    chunk_rows: int,
    executor: str,
    max_workers: int | None,
) -> tuple[Iterator[Any], int | None, Any]:
    """``(scored tables in input order, total rows, dataset version or None)`` on Ray Data."""
    from driftline.core.ray_cluster import connect, parse_executor

    if workspace.settings.uri in ("sqlite://", "sqlite:///:memory:"):
        raise InvalidArgumentError(
            "Scoring on Ray needs a workspace Ray workers can open; this one is an "
            "in-memory SQLite database. Use a SQLite file, PostgreSQL or a server"
        )
    ray = connect(parse_executor(executor), num_cpus=max_workers)
    rdata: Any = importlib.import_module("ray.data")  # typed Any: Ray is optional

    context = rdata.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come out as they went in
    context.enable_progress_bars = False  # the caller reports progress (the CLI's bar)
    path = Path(source)
    dataset = None
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            data = rdata.read_parquet(str(path.resolve()))
        elif suffix == ".csv":
            data = rdata.read_csv(str(path.resolve()))
        else:
            raise InvalidArgumentError(f"Cannot score {source}: use a .parquet or .csv file")
        total = None
    else:
        from driftline.data import Version

        dataset = workspace.data.get(source)  # NotFoundError names near datasets
        table = Version(workspace.data, dataset).to_arrow()
        data, total = rdata.from_arrow(table), table.num_rows
    # One CPU is left to the read tasks that feed the actors: an actor pool holding
    # every CPU starves them, and the scoring waits forever.
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = max(1, max_workers or cpus - 1)
    from driftline.serving.ray_worker import RayScorer

    scored = data.map_batches(
        RayScorer,
        fn_constructor_args=(workspace.settings, ref),
        batch_size=chunk_rows,
        batch_format="pyarrow",
        concurrency=actors,
        num_cpus=1,
    )
    return scored.iter_batches(batch_size=None, batch_format="pyarrow"), total, dataset
