"""The background writer: logging calls enqueue, one thread commits in batches.

A ``log_metric`` call costs a deque append (well under a microsecond), so logging
never slows training. The writer thread wakes every ``interval`` seconds (or at once
on :meth:`BatchWriter.flush`) and commits everything queued, up to ``max_batch`` rows
per transaction.

Failures are never silent. The database layer already retries transient errors; if a
batch still fails, it is kept at the head of the line and retried with backoff for as
long as the process lives, an error is logged, and ``flush()`` raises
:class:`~driftline.errors.BackendError` naming how many items wait. When the database
comes back the queue drains by itself. A param that conflicts with a value stored by
another process surfaces as :class:`~driftline.errors.ConflictError` at the next flush.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from driftline.errors import (
    BackendError,
    ConflictError,
    DriftlineError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from driftline.tracking.store import LogBatch, MetricRow, ParamRow, TagRow

__all__ = ["BatchWriter"]

# The writers alive in this process, for the one fork hook below. A hook per writer
# would keep every writer ever made alive, since fork hooks cannot be removed.
_WRITERS: weakref.WeakSet[BatchWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_WRITERS):
        writer._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

log = logging.getLogger("driftline.tracking")
_Row = TypeVar("_Row", MetricRow, ParamRow)  # ParamRow and TagRow are the same shape

_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)
# Failures that say nothing about the rows themselves: keep the rows and retry (a server
# that is down, a token that was revoked, a grant that is missing). Dropping rows
# because of them would lose data that a fixed token or a new grant can still write.
_KEEP_AND_RETRY = (BackendError, UnauthenticatedError, PermissionDeniedError)


def _part_key(key: str, run_id: str) -> str:
    """The idempotency key of one run's part of a batch: the same on every retry."""
    return hashlib.blake2b(f"{key}/{run_id}".encode(), digest_size=16).hexdigest()


class _Marker:
    """Put in every queue by ``flush``; done when the writer has committed past all three."""

    __slots__ = ("remaining",)

    def __init__(self) -> None:
        self.remaining = 3


class BatchWriter:
    """Queues rows and commits them from a daemon thread.

    Args:
        sink: Commits one batch; returns conflict messages (see ``TrackingStore.write_batch``).
        interval: Seconds between wake-ups when nobody asks for a flush.
        heartbeat: Returns the ids of runs this process keeps alive; stamped every
            ``heartbeat_interval`` seconds even when nothing is logged.
        max_batch: Rows of each kind per transaction.
        max_pending: Queued metrics above which producers wait for the writer, so a
            runaway loop cannot exhaust memory.
    """

    def __init__(
        self,
        sink: Callable[[LogBatch], list[str]],
        *,
        interval: float = 0.2,
        heartbeat: Callable[[], list[str]] | None = None,
        heartbeat_interval: float = 30.0,
        max_batch: int = 50_000,
        max_pending: int = 2_000_000,
    ) -> None:
        self._sink = sink
        self._interval = interval
        self._heartbeat = heartbeat
        self._heartbeat_interval = heartbeat_interval
        self._max_batch = max_batch
        self.max_pending = max_pending
        self.metrics: deque[MetricRow] = deque()
        self.params: deque[ParamRow] = deque()
        self.tags: deque[TagRow] = deque()
        self._retry: LogBatch | None = None
        self._split = False  # the batch in _retry must be retried run by run
        self._busy = False
        self._error: DriftlineError | None = None
        self._conflicts: list[str] = []
        self._closed = False
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._last_heartbeat = time.monotonic()
        self._thread = self._start()
        _WRITERS.add(self)

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name="driftline-writer", daemon=True)
        thread.start()
        return thread

    def _after_fork(self) -> None:
        # The child must not write the parent's queued rows a second time.
        self.metrics.clear()
        self.params.clear()
        self.tags.clear()
        self._retry = None
        self._split = False
        self._idle = threading.Condition()
        self._wake = threading.Event()
        if not self._closed:
            self._thread = self._start()

    # -- producer side ----------------------------------------------------------

    def wait_for_room(self) -> None:
        """Block while too many metrics are queued (called by producers past ``max_pending``)."""
        self._wake.set()
        while len(self.metrics) > self.max_pending // 2 and self._thread.is_alive():
            time.sleep(0.005)

    @property
    def pending(self) -> int:
        """Rows queued or in a batch not yet committed."""
        retry = len(self._retry) if self._retry is not None else 0
        return len(self.metrics) + len(self.params) + len(self.tags) + retry

    def flush(self, timeout: float | None = 60.0) -> None:
        """Block until everything queued before this call is committed.

        A marker goes into each queue behind what is there; the call returns when the
        writer has committed past all three, however much other threads log meanwhile.

        Raises:
            ConflictError: a param conflicted with a value another process stored.
            BackendError: the database is failing; the rows stay queued and are retried.
        """
        if not self._thread.is_alive():
            # Closed (or the thread died): nothing will write what is queued any more.
            if self.pending:
                raise BackendError(
                    f"The writer is closed with {self.pending} logged items unwritten"
                )
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        marker = _Marker()
        with self._idle:
            self._error = None
        self.metrics.append(marker)  # type: ignore[arg-type]
        self.params.append(marker)  # type: ignore[arg-type]
        self.tags.append(marker)  # type: ignore[arg-type]
        self._wake.set()
        with self._idle:
            while marker.remaining:
                if self._error is not None:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise BackendError(
                        f"Timed out after {timeout} s waiting for {self.pending} logged items "
                        "to be written; they stay queued"
                    )
                self._idle.wait(remaining if remaining is not None else 1.0)
            error, self._error = self._error, None
            conflicts, self._conflicts = self._conflicts, []
        if isinstance(error, UnauthenticatedError | PermissionDeniedError):
            raise type(error)(
                f"{error} ({self.pending} logged items stay queued and are retried: fix the "
                "token or the grant and they are written)"
            ) from error
        if error is not None and not isinstance(error, BackendError):
            raise error
        if error is not None:
            raise BackendError(
                f"{self.pending} logged items are not written yet ({error}); "
                "they stay queued and are retried until the database is back"
            ) from error
        if conflicts:
            raise ConflictError("; ".join(conflicts))

    def close(self, timeout: float | None = 60.0) -> None:
        """Flush and stop the thread (a second call does nothing)."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            self._wake.set()
            self._thread.join(timeout=5)

    # -- writer thread ------------------------------------------------------------

    def _take(self) -> LogBatch:
        batch = LogBatch()
        batch.metrics = self._pop(self.metrics, batch.markers)
        batch.params = self._pop(self.params, batch.markers)
        batch.tags = self._pop(self.tags, batch.markers)
        now = time.monotonic()
        if self._heartbeat is not None and (
            batch or now - self._last_heartbeat >= self._heartbeat_interval
        ):
            batch.heartbeats = self._heartbeat()
            self._last_heartbeat = now
        return batch

    def _pop(self, queue: deque[_Row], markers: list[Any]) -> list[_Row]:
        popleft = queue.popleft
        rows = []
        for _ in range(min(len(queue), self._max_batch)):
            item = popleft()
            if type(item) is _Marker:
                markers.append(item)
            else:
                rows.append(item)
        return rows

    def _loop(self) -> None:
        failures = 0
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            while True:
                with self._idle:
                    batch = self._retry or self._take()
                    self._retry = None
                    self._busy = bool(batch) or bool(batch.heartbeats) or bool(batch.markers)
                if not self._busy:
                    break
                ok = self._commit(batch)
                with self._idle:
                    self._busy = False
                    if ok:
                        for marker in batch.markers:
                            marker.remaining -= 1
                    else:
                        self._retry = batch
                    self._idle.notify_all()
                if not ok:
                    failures += 1
                    self._wake.wait(_BACKOFF[min(failures, len(_BACKOFF)) - 1])
                    break
                failures = 0
            with self._idle:
                self._idle.notify_all()
            if self._closed and not self.pending:
                return

    def _commit(self, batch: LogBatch) -> bool:
        """Write a batch; ``False`` means "keep it and retry" (the database is failing)."""
        if not (batch or batch.heartbeats):
            return True
        if self._split:
            # The per-run retry of this batch was cut short: go on per run, so each part
            # keeps its idempotency key and a part the server did commit is not re-sent
            # inside a bigger batch under another key.
            return self._commit_per_run(batch)
        try:
            conflicts = self._sink(batch)
        except _KEEP_AND_RETRY as exc:
            log.error("driftline could not write %d logged items, will retry: %s", len(batch), exc)
            with self._idle:
                self._error = exc
            return False
        except Exception:
            # Not the database being down: some rows are unwritable (e.g. their run was
            # deleted). Write each run's rows on their own so the others are not lost.
            return self._commit_per_run(batch)
        self._report(conflicts)
        return True

    def _commit_per_run(self, batch: LogBatch) -> bool:
        runs: dict[str, LogBatch] = {}
        for kind in ("metrics", "params", "tags"):
            for row in getattr(batch, kind):
                getattr(runs.setdefault(row[0], LogBatch()), kind).append(row)
        if batch.key:  # stable per-run keys: a retried part is recognised as such
            for run_id, part in runs.items():
                part.key = _part_key(batch.key, run_id)
        done: set[str] = set()
        for run_id, part in runs.items():
            try:
                self._report(self._sink(part))
                done.add(run_id)
            except _KEEP_AND_RETRY as exc:
                # The database went away midway: keep only what is not written yet, so
                # the retry does not write any metric point twice.
                batch.metrics = [r for r in batch.metrics if r[0] not in done]
                batch.params = [r for r in batch.params if r[0] not in done]
                batch.tags = [r for r in batch.tags if r[0] not in done]
                with self._idle:
                    self._error = exc
                self._split = True
                return False
            except Exception as exc:
                done.add(run_id)
                log.error(
                    "driftline dropped %d logged items for run %s: %s", len(part), run_id, exc
                )
                with self._idle:
                    self._error = DriftlineError(
                        f"{len(part)} logged items for run {run_id} were rejected and "
                        f"dropped: {exc}"
                    )
        self._split = False
        return True

    def _report(self, conflicts: list[str]) -> None:
        if conflicts:
            with self._idle:
                self._conflicts.extend(conflicts)
            for message in conflicts:
                log.error("driftline: %s", message)

    def __repr__(self) -> str:
        return f"BatchWriter(pending={self.pending})"
