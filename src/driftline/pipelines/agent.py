"""``driftline agent``: one leader runs schedules and triggers; the others wait.

Leadership is a row in ``pipelines_agent_lease`` taken by compare-and-set: an agent
holds it while it renews it (a thread renews every third of the lease's time to live),
and anyone may take it once it expires. So a second agent waits and says who leads,
and a killed leader is replaced once its lease runs out. Every state the agent acts on
is in the database (see :mod:`driftline.pipelines.automation`), so restarting one
loses nothing; a new leader first marks what a dead one left RUNNING as FAILED.

A long-running agent watches the project's source files it imported (pipelines and the
helpers they use): when one changes, it gives the lease up and ``driftline agent``
starts itself again, so runs never use code older than what is on disk.

SIGTERM (and Ctrl-C) stop the agent cleanly: between firings it simply stops; during a
run it interrupts the run, records it as FAILED (resumable), and gives the lease up.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from driftline.core.clock import now_ms
from driftline.core.ids import new_id
from driftline.errors import DriftlineError
from driftline.pipelines.automation import Automation
from driftline.pipelines.records import Firing, FiringStatus, Lease

if TYPE_CHECKING:
    from driftline.workspace import Workspace

__all__ = ["LEASE", "PERIODIC", "Agent", "AgentStopped", "PeriodicTask", "add_periodic"]

LEASE = "agent"


class PeriodicTask(Protocol):
    """What the leader runs on every look: ``task(workspace, say, lease_ttl=...)``.

    ``lease_ttl`` is the agent's lease time to live (``--lease-ttl``): a lease the task
    takes for its own work should last as long, so the work of a killed agent is taken
    over as soon as its leadership is. A DriftlineError it raises is reported, not fatal.
    """

    def __call__(
        self, workspace: Workspace, say: Callable[[str], None], *, lease_ttl: float
    ) -> None: ...


#: What the leader does on every look besides schedules and triggers, by name: stages
#: above pipelines contribute tasks here (pipelines cannot import them).
PERIODIC: dict[str, PeriodicTask] = {}


def add_periodic(name: str, task: PeriodicTask) -> None:
    """Have every agent's leader run ``task(workspace, say, lease_ttl=...)`` on each look."""
    PERIODIC[name] = task


def _project_files() -> dict[str, int]:
    """The project's imported source files (under the working directory), by mtime."""
    root = Path.cwd()
    found: dict[str, int] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or "site-packages" in path:
            continue
        file = Path(path)
        if file.is_relative_to(root):
            try:
                found[str(file)] = file.stat().st_mtime_ns
            except OSError:
                found[str(file)] = -1
    return found


def _changed(seen: dict[str, int], since_ns: int) -> str | None:
    """The first file of ``seen`` changed since; files imported since ``since_ns`` are
    added, or count as changed when written after it (maybe after their import)."""
    now = _project_files()
    for path, mtime in now.items():
        if seen.get(path, mtime) != mtime or (path not in seen and mtime >= since_ns):
            return path
    seen.update(now)
    return None


def _holder() -> str:
    """This agent's name in the lease: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


class AgentStopped(KeyboardInterrupt):
    """Raised in the agent's main thread by SIGTERM during a run (steps let it through)."""


@dataclass
class Agent:
    """The loop behind ``driftline agent``.

    Args:
        workspace: The workspace whose schedules and triggers to run.
        interval: Seconds between looks at what is due.
        lease_ttl: Seconds a leader's lease lasts without renewal; the leases its
            periodic tasks take (a retraining cycle's) last as long.
        executor: The executor pipelines run on.
        say: Where progress messages go (one line each).
    """

    workspace: Workspace
    interval: float = 30.0
    lease_ttl: float = 30.0
    executor: str = "local"
    say: Callable[[str], None] = print
    holder: str = field(default_factory=lambda: _holder())
    _stop: threading.Event = field(default_factory=threading.Event)
    _lost: threading.Event = field(default_factory=threading.Event)
    _running: str | None = None
    #: Whether this agent has led (taken the lease) in :meth:`run`.
    led: bool = False
    #: Stop (``restart`` set) when a project source file it imported changes on disk.
    watch_code: bool = False
    #: Set when :meth:`run` stopped because the code changed: start a new process.
    restart: bool = False

    def __post_init__(self) -> None:
        self.automation = Automation.for_workspace(self.workspace)
        self.store = self.automation.store

    # -- leadership -------------------------------------------------------------------

    def _acquire(self) -> tuple[bool, Lease | None]:
        return self.store.acquire_lease(
            LEASE,
            holder=self.holder,
            host=socket.gethostname(),
            pid=os.getpid(),
            now=now_ms(),
            ttl_ms=int(self.lease_ttl * 1000),
        )

    def _renew_forever(self) -> None:
        while not self._stop.wait(self.lease_ttl / 3):
            try:
                ours, lease = self._acquire()
            except Exception as exc:  # the database is away: keep trying until expiry
                self.say(f"Renewing the agent lease failed: {exc}")
                continue
            if not ours:
                holder = lease.holder if lease else "nobody"
                self.say(f"Lost the agent lease to {holder}; stopping after this firing")
                self._lost.set()
                self._stop.set()
                return

    def stop(self) -> None:
        """Ask the loop to stop (what SIGTERM does between runs)."""
        self._stop.set()

    # -- the loop ---------------------------------------------------------------------

    def run(self, *, once: bool = False) -> list[Firing]:
        """Lead (waiting for the lease if another agent holds it), then run what is due.

        With ``once``: one look, then return (without waiting when another agent
        leads). Returns the firings this agent ran.
        """
        ran: list[Firing] = []
        waiting_for: str | None = None
        while not self._stop.is_set():
            try:
                ours, lease = self._acquire()
            except DriftlineError as exc:  # the database or server is away: wait for it
                if once:
                    raise
                self.say(f"Cannot reach the workspace's records ({exc}); retrying")
                self._stop.wait(min(self.interval, self.lease_ttl / 3))
                continue
            if ours:
                break
            if lease is not None and lease.holder != waiting_for:
                waiting_for = lease.holder
                self.say(
                    f"Another agent leads: {lease.holder} (pid {lease.pid} on {lease.host}), "
                    f"its lease runs to {lease.expires_at:%H:%M:%S} UTC; "
                    + ("nothing to do" if once else "waiting to take over")
                )
            if once:
                return ran
            self._stop.wait(min(self.interval, self.lease_ttl / 3))
        if self._stop.is_set():
            return ran
        self.led = True
        renewer = threading.Thread(target=self._renew_forever, name="agent-lease", daemon=True)
        renewer.start()
        try:
            failed = self.automation.recover(agent=self.holder)
            for firing in failed:
                self.say(
                    f"Marked {firing.origin} {firing.origin_name}'s run as FAILED: the agent "
                    f"running it ({firing.agent}) is gone"
                )
            every = "" if once else f"; looking every {self.interval:g} s"
            self.say(f"Agent {self.holder} leads{every}")
            seen = _project_files()
            while True:
                looked = time.time_ns()
                try:
                    ran.extend(self.tick())
                except DriftlineError as exc:
                    # A long-running agent outlives a database restart; --once reports it.
                    if once:
                        raise
                    self.say(f"This look failed ({exc}); trying again in {self.interval:g} s")
                if self.watch_code:
                    changed = _changed(seen, looked)
                    if changed:
                        # Steps already imported would run as they were: start afresh.
                        self.say(f"{changed} changed; restarting to load the new code")
                        self.restart = True
                        break
                if once or self._stop.wait(self.interval):
                    break
        except AgentStopped:
            pass  # the run in progress is recorded as FAILED (see _run)
        finally:
            self._stop.set()
            renewer.join(timeout=5)
            if not self._lost.is_set():
                self.store.release_lease(LEASE, holder=self.holder)
        return ran

    def tick(self) -> list[Firing]:
        """One look: collect what came due, then run every pending firing."""
        late_ms = max(int(2 * self.interval * 1000), 5 * 60_000)
        for firing in self.automation.collect(late_ms=late_ms, on_error=self.say):
            self.say(f"Due: {firing.origin} {firing.origin_name} -> pipeline {firing.pipeline}")
        ran = []
        for firing in self.automation.pending():
            if self._stop.is_set():
                break
            done = self._run(firing)
            if done is not None:
                ran.append(done)
        for name, task in list(PERIODIC.items()):
            if self._stop.is_set():
                break
            try:
                task(self.workspace, self.say, lease_ttl=self.lease_ttl)
            except DriftlineError as exc:  # one stage's trouble must not stop the others
                self.say(f"{name}: {exc}")
        return ran

    def _run(self, firing: Firing) -> Firing | None:
        self._running = firing.id
        try:
            done = self.automation.run_firing(
                firing,
                agent=self.holder,
                executor=self.executor,
                on_run=lambda run_id: self.say(
                    f"Running pipeline {firing.pipeline} for {firing.origin} "
                    f"{firing.origin_name}: run {run_id}"
                ),
            )
        except AgentStopped:
            for failed in self.automation.recover(agent=self.holder, only=firing.id):
                self.say(
                    f"Stopped during the run of {failed.pipeline}; it is recorded as FAILED "
                    "and can be resumed"
                )
            raise
        finally:
            self._running = None
        if done is not None:
            if done.status is FiringStatus.FINISHED:
                self.say(f"Run {done.run_id} of {done.pipeline} finished")
            else:
                self.say(f"{firing.origin.capitalize()} {firing.origin_name} failed: {done.error}")
        return done

    # -- signals ----------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the agent (interrupting a run in progress)."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            self.say(f"Got {signal.Signals(signum).name}; stopping")
            self._stop.set()
            if self._running is not None:
                raise AgentStopped()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
