"""The run a block of code is logging to, kept in a ``ContextVar``.

A ``ContextVar`` rather than a global: threads and asyncio tasks each see their own
active run, so two training loops in one process never log into each other's run.

The per-call path (``log_metric``) is kept short on purpose: a cached key check, a
float conversion, a timestamp and a deque append.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Any

from driftline.core.clock import to_ms
from driftline.errors import ConflictError, InvalidArgumentError
from driftline.tracking.models import ArtifactEntry, Run, RunStatus
from driftline.tracking.service import (
    TrackingService,
    as_step,
    metric_value,
    render_value,
    validate_key,
)

__all__ = ["ActiveRun", "current_run", "require_run"]

_ACTIVE: ContextVar[ActiveRun | None] = ContextVar("driftline_active_run", default=None)


def current_run() -> ActiveRun | None:
    """The active run of this thread or task, if any."""
    return _ACTIVE.get()


def require_run() -> ActiveRun:
    """The active run, or a clear error when there is none."""
    run = _ACTIVE.get()
    if run is None:
        raise InvalidArgumentError(
            "No active run: wrap your code in `with dl.start_run():` "
            "(each thread or asyncio task has its own active run)"
        )
    return run


class ActiveRun:
    """A started run: log to it, then end it (``with`` does that for you).

    Ending by exception marks the run FAILED (KeyboardInterrupt: KILLED); a normal exit
    marks it FINISHED. Everything logged is flushed before the status changes.
    """

    def __init__(
        self, service: TrackingService, run: Run, *, on_end: Callable[[str], None] | None = None
    ) -> None:
        self.service = service
        self._on_end = on_end
        self.id = run.id
        self.name = run.name
        self.experiment_id = run.experiment_id
        self._params: dict[str, str] = dict(run.params)
        self._keys: set[str] = set()
        self._next_step: dict[str, int] = {}
        self._writer = service.writer
        self._parent: ActiveRun | None = None
        self._ended = False

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.name!r})"

    # -- activation ---------------------------------------------------------------

    def activate(self) -> ActiveRun:
        """Make this the active run of the current context (remembering the previous one)."""
        self._parent = _ACTIVE.get()
        _ACTIVE.set(self)
        return self

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        self.end(status)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> Run:
        """Flush, set the final status and make the parent run (if any) active again."""
        if _ACTIVE.get() is self:
            _ACTIVE.set(self._parent)
        if self._ended:
            return self.service.get_run(self.id)
        try:
            run = self.service.end_run(self.id, RunStatus(status))
        except ConflictError:
            self._finish()  # the status was still set; the conflict is reported
            raise
        # Any other failure (the database is down) leaves the run open: end() can be
        # called again, and interpreter exit tries again.
        self._finish()
        return run

    def _finish(self) -> None:
        self._ended = True
        if self._on_end is not None:
            self._on_end(self.id)

    @property
    def ended(self) -> bool:
        """Whether :meth:`end` ran."""
        return self._ended

    # -- logging ------------------------------------------------------------------

    def log_metric(
        self, key: str, value: float, step: int | None = None, *, timestamp: Any = None
    ) -> None:
        """Log one value of a metric. Without ``step``, steps count up per key from 0."""
        if key not in self._keys:
            validate_key(key, "metric key")
            self._keys.add(key)
        if step is None:
            step = self._next_step.get(key, 0)
        elif type(step) is not int:
            step = as_step(step)
        self._next_step[key] = step + 1
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = metric_value(key, value)  # raises the clear error
        ts = time.time_ns() // 1_000_000 if timestamp is None else to_ms(timestamp)
        writer = self._writer
        if writer is None:
            self.service.log_batch(self.id, metrics=[(key, number, step, ts)])
            return
        writer.metrics.append((self.id, key, number, step, ts))
        if len(writer.metrics) > writer.max_pending:
            writer.wait_for_room()

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, *, timestamp: Any = None
    ) -> None:
        """Log several metrics at the same step and time."""
        ts = time.time_ns() // 1_000_000 if timestamp is None else to_ms(timestamp)
        for key, value in metrics.items():
            self.log_metric(key, value, step, timestamp=ts)

    def log_param(self, key: str, value: Any) -> None:
        """Log a parameter. Params are write-once: another value for a key is a ConflictError."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log several parameters (checked for conflicts before any is queued)."""
        rendered = {}
        for key, value in params.items():
            text = value if isinstance(value, str) else render_value(value)
            held = self._params.get(key, text)
            if held != text:
                raise ConflictError(
                    f"Param {key!r} of run {self.id} is {held!r}; params are write-once, "
                    f"so it cannot become {text!r}. Log it under another key or start a new run."
                )
            rendered[key] = text
        new = {k: v for k, v in rendered.items() if k not in self._params}
        self.service.log_batch(self.id, params=new)
        self._params.update(new)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (tags may change; the last value wins)."""
        self.service.log_batch(self.id, tags={key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags."""
        self.service.log_batch(self.id, tags=tags)

    def log_artifact(
        self, local_path: str | Path, artifact_path: str | None = None
    ) -> ArtifactEntry:
        """Store a file with this run (content-addressed; identical files are stored once)."""
        return self.service.log_artifact(self.id, local_path, artifact_path)

    def log_artifacts(
        self, local_dir: str | Path, artifact_path: str | None = None
    ) -> list[ArtifactEntry]:
        """Store every file under a folder with this run.

        ``artifact_path=None`` keeps the folder's name (``reports/`` is stored as
        ``reports/...``); ``artifact_path=""`` stores the files at the run's root.
        """
        return self.service.log_artifacts(self.id, local_dir, artifact_path)

    def to_run(self) -> Run:
        """The run as stored now (after flushing what was logged)."""
        self.service.flush()
        return self.service.get_run(self.id)
