"""Who is training a cycle: a lease per cycle, renewed while its pipeline runs.

A cycle's pipeline runs inside the process that moved it to ``training`` (``driftline
agent``, or ``driftline retrain run``). That process holds the lease
``retraining.cycle.<id>`` (the pipelines stage's lease records, taken and renewed by
compare-and-set) and renews it from a thread every third of its time to live. A
process killed with SIGKILL stops renewing: once the lease has expired, any driver can
take it and knows the cycle's driver is gone; while it is live, others leave the cycle
alone, so its pipeline never runs twice at once.

The lease lasts ``Retrainer.lease_ttl`` seconds (30 by default); ``driftline agent``
uses its own ``--lease-ttl``, so a killed agent's cycle is settled by the agent that
takes over from it as soon as that one leads.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from driftline.core.clock import now_ms

if TYPE_CHECKING:
    from driftline.pipelines import Lease

__all__ = ["CycleLease"]


class CycleLease:
    """The lease of one cycle, as ``holder`` (a driver) sees it."""

    def __init__(self, workspace: Any, cycle_id: str, *, holder: str, ttl: float) -> None:
        from driftline.pipelines import Automation

        self.store = Automation.for_workspace(workspace).store
        self.name = f"retraining.cycle.{cycle_id}"
        self.holder = holder
        self.ttl = ttl

    def acquire(self) -> bool:
        """Take the lease if it is free, expired, or already ours."""
        ours, _ = self.store.acquire_lease(
            self.name, holder=self.holder, host=socket.gethostname(), pid=os.getpid(),
            now=now_ms(), ttl_ms=int(self.ttl * 1000),
        )  # fmt: skip
        return ours

    def current(self) -> Lease | None:
        """The lease as recorded (whoever holds it), or None."""
        return self.store.get_lease(self.name)

    def release(self) -> None:
        """Give the lease up (only if we hold it)."""
        self.store.release_lease(self.name, holder=self.holder)

    @contextmanager
    def renewed(self) -> Iterator[None]:
        """Keep renewing the lease from a thread while the block runs."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.ttl / 3):
                try:
                    self.acquire()
                except Exception:  # the database is away: retry until the lease expires
                    continue

        thread = threading.Thread(target=renew, name=f"lease-{self.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
