"""Tracking rules: names, write-once params, status transitions, search, run artifacts.

The service validates and orchestrates; stores do the I/O. Logging goes through a
:class:`~driftline.tracking.writer.BatchWriter` when one is given (the default), or is
written before each call returns (synchronous mode, for tests and debugging).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from driftline.core.artifacts import ContentStore, Destination, validate_artifact_path
from driftline.core.clock import now_ms, utcnow
from driftline.core.hashing import parse_digest
from driftline.core.paging import Page, decode_token, encode_token
from driftline.core.values import check_float, check_int64, check_ms
from driftline.errors import AlreadyExistsError, ConflictError, InvalidArgumentError, NotFoundError
from driftline.tracking.models import (
    ArtifactEntry,
    Experiment,
    LifecycleStage,
    MetricPoint,
    Run,
    RunStatus,
)
from driftline.tracking.names import generate_run_name
from driftline.tracking.search import parse_filter, parse_order_by
from driftline.tracking.store import (
    ChildRuns,
    LogBatch,
    LoggedModelStore,
    RunArtifactStore,
    RunQuery,
    TrackingStore,
)
from driftline.tracking.writer import BatchWriter

__all__ = [
    "TrackingService",
    "as_step",
    "check_batch",
    "check_name",
    "check_tags",
    "metric_value",
    "render_value",
    "validate_key",
]

_KEY = re.compile(r"^[A-Za-z0-9_\-./: ]{1,250}$")
MAX_PARAM_LENGTH = 8000
MAX_TAG_LENGTH = 8000
MAX_PAGE = 5000


def validate_key(key: str, what: str = "key") -> str:
    """Check a metric, param or tag key: 1-250 of letters, digits, ``_ - . / :`` and spaces."""
    if not isinstance(key, str) or not _KEY.match(key) or key.startswith("/") or ".." in key:
        raise InvalidArgumentError(
            f"Invalid {what} {key!r}: use 1-250 letters, digits, spaces and _ - . / : "
            "(not starting with '/', no '..')"
        )
    return key


def as_step(step: Any) -> int:
    """A metric step: a whole number (``3``, ``3.0``, a numpy integer) in 64 bits."""
    return check_int64(step, "A metric step")


def metric_value(key: str, value: Any) -> float:
    """Convert a logged value to float, with a clear error for non-numbers."""
    return check_float(value, f"Metric {key!r}")


class TrackingService:
    """Experiments, runs and everything logged to them.

    Args:
        store: The tracking backend.
        artifacts: The index of run artifacts.
        content: Where artifact bytes go.
        writer: The background writer; ``None`` writes synchronously.
        user: Recorded as the author of new runs.
        logged_models: MLflow logged models (a server's database only; else ``None``).
    """

    def __init__(
        self,
        store: TrackingStore,
        artifacts: RunArtifactStore,
        content: ContentStore,
        *,
        writer: BatchWriter | None,
        user: str,
        logged_models: LoggedModelStore | None = None,
    ) -> None:
        self.store = store
        self.logged_models = logged_models
        self.artifacts = artifacts
        self.content = content
        self.writer = writer
        self.user = user
        self._known_runs: set[str] = set()

    # -- experiments --------------------------------------------------------------

    def create_experiment(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Experiment:
        """Create an experiment; ``AlreadyExistsError`` if the name is taken."""
        name = check_name(name, "experiment name")
        return self.store.create_experiment(
            name=name, description=description, tags=check_tags(tags)
        )

    def get_experiment(self, id_or_name: str) -> Experiment:
        """An experiment by id or name; ``NotFoundError`` suggests near names."""
        found = self.store.find_experiment(id=id_or_name) or self.store.find_experiment(
            name=id_or_name
        )
        if found is None:
            names = [
                e.name
                for e in self.store.list_experiments(
                    include_deleted=False, max_results=1000, offset=0
                )
            ]
            near = difflib.get_close_matches(id_or_name, names, n=3)
            hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
            raise NotFoundError(f"No experiment named or with id {id_or_name!r}{hint}")
        return found

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The active experiment called ``name``, created if missing."""
        found = self.store.find_experiment(name=name)
        if found is not None:
            return _check_active(found)
        try:
            return self.create_experiment(name)
        except AlreadyExistsError:  # created by another process meanwhile
            return self.get_experiment(name)

    def experiment_by_id(self, experiment_id: str) -> Experiment:
        """The experiment with this id; ``NotFoundError`` if there is none."""
        found = self.store.find_experiment(id=experiment_id)
        if found is None:
            raise NotFoundError(f"No experiment with id {experiment_id!r}")
        return found

    def experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment called ``name`` (deleted or not), or ``None``."""
        return self.store.find_experiment(name=name)

    def list_experiments(
        self,
        *,
        include_deleted: bool = False,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        """Experiments, newest first, one page at a time."""
        _check_page_size(max_results)
        query = {"kind": "experiments", "deleted": include_deleted, "max": max_results}
        offset = decode_token(page_token, query)
        items = self.store.list_experiments(
            include_deleted=include_deleted, max_results=max_results + 1, offset=offset
        )
        return _page(items, max_results, offset, query)

    def experiments_from(
        self, offset: int, *, include_deleted: bool, max_results: int
    ) -> list[Experiment]:
        """Experiments, newest first, from a position (for adapters that page by offset)."""
        return self.store.list_experiments(
            include_deleted=include_deleted, max_results=max_results, offset=offset
        )

    def delete_experiment(self, id_or_name: str) -> Experiment:
        """Soft-delete an experiment (its runs are hidden with it)."""
        experiment = self.get_experiment(id_or_name)
        return self.set_experiment_lifecycle(experiment.id, LifecycleStage.DELETED)

    def restore_experiment(self, id_or_name: str) -> Experiment:
        """Undo :meth:`delete_experiment`."""
        experiment = self.get_experiment(id_or_name)
        return self.set_experiment_lifecycle(experiment.id, LifecycleStage.ACTIVE)

    def set_experiment_lifecycle(self, experiment_id: str, stage: LifecycleStage) -> Experiment:
        """Soft-delete (``DELETED``) or restore (``ACTIVE``) the experiment with this id."""
        return self.store.set_experiment_lifecycle(experiment_id, LifecycleStage(stage))

    # -- runs ---------------------------------------------------------------------

    def create_run(
        self,
        experiment: str | None,
        *,
        default_experiment: str = "default",
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
    ) -> Run:
        """Start a RUNNING run in ``experiment`` (created if missing)."""
        exp = self.get_or_create_experiment(
            check_name(experiment or default_experiment, "experiment name")
        )
        return self.start_run(exp, name=name or None, tags=tags, parent_id=parent_id)

    def start_run(
        self,
        experiment: Experiment,
        *,
        name: str | None = None,
        user: str | None = None,
        start_time: int | None = None,
        parent_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> Run:
        """Start a RUNNING run in an experiment already found: the rules every entry point
        (the SDK, the REST routes, the MLflow routes) applies to a new run.

        The experiment must be active; a name is 1-256 characters (generated when
        ``None``); the parent run must exist; tags follow :func:`check_tags`. ``user``
        defaults to the service's user and ``start_time`` to now.
        """
        _check_active(experiment)
        run_name = generate_run_name() if name is None else check_name(name, "run name")
        if parent_id is not None:
            self.get_run(parent_id)
        return self.store.create_run(
            experiment_id=experiment.id,
            name=run_name,
            user=self.user if user is None else user,
            start_time=now_ms() if start_time is None else check_ms(start_time, "start_time"),
            parent_id=parent_id,
            tags=check_tags(tags),
        )

    def start_child_run(
        self,
        experiment_id: str,
        *,
        parent_id: str,
        name: str,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Run:
        """Start a RUNNING nested run with its tags and params, in one transaction.

        For callers that start many short runs under one parent they already checked
        (a pipeline's steps): the experiment is given by id and the parent is not read
        again. Stores without ``capabilities.child_runs`` take the general calls.
        """
        clean_tags = check_tags(tags)
        clean_params = {
            validate_key(k, "param key"): _text(v, MAX_PARAM_LENGTH, "param", k)
            for k, v in (params or {}).items()
        }
        name = check_name(name, "run name")
        if self.store.capabilities.child_runs and isinstance(self.store, ChildRuns):
            run = self.store.start_child_run(
                experiment_id=experiment_id,
                name=name,
                user=self.user,
                start_time=now_ms(),
                parent_id=parent_id,
                tags=clean_tags,
                params=clean_params,
            )
            self._known_runs.add(run.id)
            return run
        run = self.store.create_run(
            experiment_id=experiment_id,
            name=name,
            user=self.user,
            start_time=now_ms(),
            parent_id=parent_id,
            tags=clean_tags,
        )
        if clean_params:
            self.log_batch(run.id, params=clean_params)
            self.flush()
        return dataclasses.replace(run, params=dict(sorted(clean_params.items())))

    def finish_child_run(
        self, run_id: str, status: RunStatus, artifacts: Sequence[ArtifactEntry] = ()
    ) -> None:
        """Record ``artifacts`` and end a run started by :meth:`start_child_run`.

        Unlike :meth:`end_run` it does not flush the background writer: the caller has
        flushed what the run logged (a pipeline step flushes when its function returns).
        """
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise InvalidArgumentError("A run ends FINISHED, FAILED or KILLED")
        if self.store.capabilities.child_runs and isinstance(self.store, ChildRuns):
            self.store.finish_child_run(
                run_id, status=status, end_time=now_ms(), artifacts=list(artifacts)
            )
            return
        self.artifacts.add_artifacts(run_id, list(artifacts))
        self.end_run(run_id, status)

    def get_run(self, run_id: str) -> Run:
        """A run by id; ``NotFoundError`` if there is none."""
        run = self.store.find_run(run_id)
        if run is None:
            raise NotFoundError(f"No run with id {run_id!r}")
        return run

    def end_run(self, run_id: str, status: RunStatus = RunStatus.FINISHED) -> Run:
        """Flush what was logged, then move the run from RUNNING to ``status``."""
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise InvalidArgumentError("end_run needs a final status: FINISHED, FAILED or KILLED")
        try:
            self.flush()
        except ConflictError:
            # A param conflict from another process is reported, but the run still ends:
            # everything else it logged is written.
            self.update_run_status(run_id, status=status, end_time=now_ms())
            raise
        return self.update_run_status(run_id, status=status, end_time=now_ms())

    def update_run_status(
        self,
        run_id: str,
        *,
        status: RunStatus,
        end_time: int | None,
        expected: RunStatus = RunStatus.RUNNING,
    ) -> Run:
        """Move a run from ``expected`` to ``status`` atomically; ``ConflictError`` if it is
        not ``expected`` any more. A run that has ended is final: it cannot be reopened or
        ended again.
        """
        status, expected = RunStatus(status), RunStatus(expected)
        if end_time is not None:
            end_time = check_ms(end_time, "end_time")
        try:
            return self.store.update_run_status(
                run_id, status=status, end_time=end_time, expected=expected
            )
        except ConflictError:
            run = self.get_run(run_id)
            if expected is RunStatus.RUNNING and run.status is not RunStatus.RUNNING:
                raise ConflictError(
                    f"Run {run_id} has ended ({run.status.value}); a driftline run that has "
                    "ended is final and cannot be reopened or ended again: start a new run"
                ) from None
            raise

    def delete_run(self, run_id: str) -> Run:
        """Soft-delete a run: hidden from listings and search, kept until purged."""
        return self.set_run_lifecycle(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> Run:
        """Undo :meth:`delete_run`."""
        return self.set_run_lifecycle(run_id, LifecycleStage.ACTIVE)

    def set_run_lifecycle(self, run_id: str, stage: LifecycleStage) -> Run:
        """Soft-delete (``DELETED``) or restore (``ACTIVE``) a run."""
        self.get_run(run_id)
        return self.store.set_run_lifecycle(run_id, LifecycleStage(stage))

    # -- logging ------------------------------------------------------------------

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[tuple[str, Any, int, int | None]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Log metrics ``(key, value, step, timestamp_ms)``, params and tags for a run.

        With a background writer this only enqueues; otherwise it writes before returning.
        """
        self._check_run(run_id)
        now = now_ms()
        batch = LogBatch(
            metrics=[
                (
                    run_id,
                    validate_key(k, "metric key"),
                    metric_value(k, v),
                    as_step(s),
                    now if ts is None else check_ms(ts, f"The timestamp of metric {k!r}"),
                )
                for k, v, s, ts in metrics
            ],
            params=[(run_id, k, _as_text(v)) for k, v in (params or {}).items()],
            tags=[(run_id, k, _as_text(v)) for k, v in (tags or {}).items()],
        )
        self.submit(check_batch(batch))

    def _check_run(self, run_id: str) -> None:
        """Refuse rows for a run that does not exist now, not in the background writer."""
        if run_id not in self._known_runs:
            self.get_run(run_id)
            self._known_runs.add(run_id)

    def submit(self, batch: LogBatch) -> None:
        """Enqueue a validated batch, or write it now in synchronous mode."""
        if self.writer is None:
            conflicts = self.store.write_batch(batch)
            if conflicts:
                raise ConflictError("; ".join(conflicts))
            return
        self.writer.metrics.extend(batch.metrics)
        self.writer.params.extend(batch.params)
        self.writer.tags.extend(batch.tags)
        if len(self.writer.metrics) > self.writer.max_pending:
            self.writer.wait_for_room()

    def write_batch(self, batch: LogBatch) -> list[str]:
        """Check a batch built by an adapter (the server's columnar ingest) and write it now.

        Returns the param conflicts (write-once params logged with another value).
        """
        return self.store.write_batch(check_batch(batch))

    def has_receipt(self, key: str) -> bool:
        """Whether a batch with this idempotency key was written (a retry writes nothing)."""
        return bool(key) and bool(getattr(self.store, "has_receipt", lambda _key: False)(key))

    def flush(self, timeout: float | None = 60.0) -> None:
        """Block until everything logged so far is in the database."""
        if self.writer is not None:
            self.writer.flush(timeout)

    def get_metric_history(
        self, run_id: str, key: str, *, run_known: bool = False
    ) -> list[MetricPoint]:
        """Every logged point of one metric of a run, by step.

        ``run_known``: the caller has just looked the run up (no second lookup).
        """
        if not run_known:
            self.get_run(run_id)
        return self.store.get_metric_history(run_id, key)

    def latest_points(self, runs: Sequence[Run]) -> dict[str, list[MetricPoint]]:
        """Each metric's latest point (value, step and time) of each run.

        ``Run.metrics`` holds latest values only; this adds their step and time (what
        the MLflow wire format shows). One query where the store supports it.
        """
        with_metrics = [run for run in runs if run.metrics]
        if not with_metrics:
            return {}
        if self.store.capabilities.latest_points:
            return self.store.latest_points([run.id for run in with_metrics])  # type: ignore[attr-defined, no-any-return]
        return {
            run.id: [
                point
                for key in run.metrics
                for point in self.store.get_metric_history(run.id, key)[-1:]
            ]
            for run in with_metrics
        }

    # -- search -------------------------------------------------------------------

    def search_runs(
        self,
        *,
        experiments: Sequence[str] | str | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]:
        """Runs matching a filter, ordered, one page at a time (see ``tracking.search``).

        Example:
            >>> service.search_runs(experiments="churn", filter="metrics.auc > 0.8",
            ...                     order_by=["metrics.auc desc"])  # doctest: +SKIP
        """
        _check_page_size(max_results)
        if isinstance(experiments, str):
            experiments = [experiments]
        if isinstance(order_by, str):
            order_by = [order_by]
        experiment_ids = (
            None if experiments is None else [self.get_experiment(e).id for e in experiments]
        )
        node = parse_filter(filter)
        terms = parse_order_by(list(order_by or ()))
        fingerprint = {
            "kind": "runs",
            "experiments": experiment_ids,
            "filter": filter,
            "order": list(order_by or ()),
            "max": max_results,
            "deleted": include_deleted,
        }
        offset = decode_token(page_token, fingerprint)
        runs = self.store.search_runs(
            RunQuery(
                experiment_ids=experiment_ids,
                filter=node,
                order_by=terms,
                max_results=max_results + 1,
                offset=offset,
                lifecycle=None if include_deleted else LifecycleStage.ACTIVE,
            )
        )
        return _page(runs, max_results, offset, fingerprint)

    def query_runs(self, query: RunQuery) -> list[Run]:
        """Runs matching a parsed query, from its offset (for adapters that page themselves)."""
        return self.store.search_runs(query)

    # -- artifacts ----------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | Path, artifact_path: str | None = None
    ) -> ArtifactEntry:
        """Store a file and record it under ``artifact_path/<file name>`` of the run."""
        source = Path(local_path)
        if not source.exists():
            raise InvalidArgumentError(f"Cannot log artifact {source}: no such file")
        if source.is_dir():
            raise InvalidArgumentError(
                f"Cannot log artifact {source}: it is a folder; use log_artifacts for folders"
            )
        self.get_run(run_id)
        logical = source.name if not artifact_path else f"{artifact_path.rstrip('/')}/{source.name}"
        entry = self._store_file(source, validate_artifact_path(logical))
        self.artifacts.add_artifacts(run_id, [entry])
        return entry

    def log_artifacts(
        self, run_id: str, local_dir: str | Path, artifact_path: str | None = None
    ) -> list[ArtifactEntry]:
        """Store every file under a folder, keeping relative paths under ``artifact_path``.

        Args:
            run_id: The run.
            local_dir: The folder to store, recursively.
            artifact_path: The folder of the run to store under. ``None`` (the default)
                keeps the folder's own name, so ``log_artifacts("reports/")`` stores
                ``reports/summary.html`` and ``driftline artifacts get RUN reports``
                fetches it back; ``""`` stores the files at the run's root.

        Example:
            >>> service.log_artifacts(run.id, "reports/")  # doctest: +SKIP
            [ArtifactEntry(path='reports/summary.html', ...)]
        """
        folder = Path(local_dir)
        if not folder.is_dir():
            raise InvalidArgumentError(
                f"Cannot log artifacts from {folder}: "
                + ("it is a file; use log_artifact" if folder.exists() else "no such folder")
            )
        self.get_run(run_id)
        if artifact_path is None:
            # resolve(): "." and "reports/.." name the folder they point to; "/" has no
            # name and stores at the root.
            artifact_path = folder.resolve().name
        base = validate_artifact_path(artifact_path) if artifact_path else ""
        sources = sorted(p for p in folder.rglob("*") if p.is_file())
        logical = [
            validate_artifact_path(f"{base}/{rel}" if base else rel)
            for rel in (source.relative_to(folder).as_posix() for source in sources)
        ]
        # One call for the folder: against a server, one question for what it lacks.
        blobs = self.content.put_files(sources)
        now = utcnow()
        entries = [
            ArtifactEntry(path=path, digest=blob.digest, size=blob.size, created_at=now)
            for path, blob in zip(logical, blobs, strict=True)
        ]
        self.artifacts.add_artifacts(run_id, entries)
        return entries

    def log_artifact_bytes(self, run_id: str, data: bytes, artifact_path: str) -> ArtifactEntry:
        """Store bytes produced in memory (a report, a captured diff) as a run artifact."""
        blob = self.content.put_bytes(data)
        entry = ArtifactEntry(
            path=validate_artifact_path(artifact_path),
            digest=blob.digest,
            size=blob.size,
            created_at=utcnow(),
        )
        self.artifacts.add_artifacts(run_id, [entry])
        return entry

    def _store_file(self, source: Path, logical: str) -> ArtifactEntry:
        blob = self.content.put_file(source)
        return ArtifactEntry(path=logical, digest=blob.digest, size=blob.size, created_at=utcnow())

    def add_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        """Record files already stored (each path checked, each digest well formed)."""
        clean = []
        for entry in entries:
            parse_digest(entry.digest)
            clean.append(dataclasses.replace(entry, path=validate_artifact_path(entry.path)))
        self.artifacts.add_artifacts(run_id, clean)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        """Files logged to a run, optionally under a folder ``prefix``."""
        self.get_run(run_id)
        return self.artifacts.list_artifacts(
            run_id, validate_artifact_path(prefix).rstrip("/") if prefix else ""
        )

    def referenced_digests(self) -> set[str]:
        """Every object run artifacts refer to (garbage collection marks from these)."""
        return self.artifacts.artifact_digests()

    def download_artifacts(self, run_id: str, path: str | None, dest: str | Path) -> list[Path]:
        """Copy a logged file, every file under a logged folder, or with ``path`` empty or
        ``None`` every file of the run, to ``dest`` (verified against content hashes).

        Files keep their paths below ``path``: ``reports`` writes
        ``dest/summary.html`` for ``reports/summary.html``, and the whole run writes
        ``dest/reports/summary.html``. Nothing is written outside ``dest``: each path is
        checked again, and a symbolic link found in ``dest`` is never followed.
        """
        clean = validate_artifact_path(path) if path else ""
        entries = self.list_artifacts(run_id, clean)
        if not entries:
            raise NotFoundError(
                f"Run {run_id} has no artifact {path!r}; list them with "
                f"`driftline artifacts list {run_id}`"
                if clean
                else f"Run {run_id} has no artifacts"
            )
        folder = Destination(dest)
        written = []
        for entry in entries:
            if not clean:
                relative = entry.path
            elif entry.path == clean:
                relative = entry.path.rpartition("/")[2]
            else:
                relative = entry.path.removeprefix(clean + "/")
            get = partial(self.content.get_file, entry.digest, name=f"run {run_id}/{entry.path}")
            written.append(folder.put(relative, get))
        return written


def check_name(name: str | None, what: str) -> str:
    """An experiment or run name, stripped; ``InvalidArgumentError`` unless 1-256 characters."""
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise InvalidArgumentError(f"Invalid {what} {name!r}: use 1-256 characters")
    return name.strip()


def check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags as stored: each key checked with :func:`validate_key`, each value text of at
    most ``MAX_TAG_LENGTH`` characters."""
    return {
        validate_key(k, "tag key"): _text(v, MAX_TAG_LENGTH, "tag", k)
        for k, v in (tags or {}).items()
    }


def check_batch(batch: LogBatch) -> LogBatch:
    """Check the keys of every row and the length of param and tag values; the batch back.

    Keys are checked once per distinct key, so a batch of a million points of a few
    metrics costs a few checks (the server's ingest calls this on every batch).
    """
    for key in {row[1] for row in batch.metrics}:
        validate_key(key, "metric key")
    for kind, rows, limit in (
        ("param", batch.params, MAX_PARAM_LENGTH),
        ("tag", batch.tags, MAX_TAG_LENGTH),
    ):
        for key in {row[1] for row in rows}:
            validate_key(key, f"{kind} key")
        for _, key, text in rows:
            if len(text) > limit:
                raise InvalidArgumentError(
                    f"Value of {kind} {key!r} is longer than {limit} characters"
                )
    return batch


def _check_active(experiment: Experiment) -> Experiment:
    if experiment.lifecycle_stage is LifecycleStage.DELETED:
        raise ConflictError(
            f"Experiment {experiment.name!r} is deleted; restore it with "
            f"`driftline experiments restore {experiment.name}` or pick another name"
        )
    return experiment


def _text(value: Any, limit: int, what: str, key: str) -> str:
    text = _as_text(value)
    if len(text) > limit:
        raise InvalidArgumentError(f"Value of {what} {key!r} is longer than {limit} characters")
    return text


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else render_value(value)


def render_value(value: Any) -> str:
    """Text form of a param or tag value; a whole float keeps its point (1.0, not 1)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return repr(value)  # keep 1.0 as "1.0", not "1"
    return str(value)


def _check_page_size(max_results: int) -> None:
    if not isinstance(max_results, int) or not 1 <= max_results <= MAX_PAGE:
        raise InvalidArgumentError(f"max_results must be between 1 and {MAX_PAGE}")


def _page(items: Sequence[Any], max_results: int, offset: int, query: object) -> Page[Any]:
    if len(items) > max_results:
        return Page(list(items[:max_results]), encode_token(offset + max_results, query))
    return Page(list(items), None)
