"""Where schedules, triggers, firings and the agent's lease live: the narrow protocol.

One backend, :mod:`driftline.pipelines._sql` (the metadata database, SQLite or
PostgreSQL). Every state change an agent depends on is a compare-and-set here (a
schedule's next due time, a dataset trigger's cursor, a firing's PENDING -> RUNNING,
the lease), so two processes can never both act on one due time, version or firing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from driftline.pipelines.records import Firing, FiringStatus, Lease, Schedule, Trigger

__all__ = ["AutomationStore"]


class AutomationStore(Protocol):
    """Records of schedules, triggers, firings and the agent lease."""

    # -- schedules ------------------------------------------------------------------

    def add_schedule(self, schedule: Schedule) -> Schedule:
        """Store a new schedule; ``AlreadyExistsError`` when the name is taken."""
        ...

    def find_schedule(self, name: str) -> Schedule | None:
        """The schedule named ``name``."""
        ...

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        ...

    def update_schedule(self, schedule_id: str, values: Mapping[str, Any]) -> None:
        """Change columns of a schedule (``enabled``, ``next_due_at``, ...)."""
        ...

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule (its firings stay, as history)."""
        ...

    def advance_schedule(
        self, schedule_id: str, *, expected_due: int, next_due: int, firings: list[Firing]
    ) -> bool:
        """Move ``next_due_at`` from ``expected_due`` and add ``firings``, atomically.

        Returns False (and changes nothing) when another process moved it first.
        """
        ...

    # -- triggers -------------------------------------------------------------------

    def add_trigger(self, trigger: Trigger) -> Trigger:
        """Store a new trigger; ``AlreadyExistsError`` when the name is taken."""
        ...

    def find_trigger(self, name: str) -> Trigger | None:
        """The trigger named ``name``."""
        ...

    def list_triggers(self, *, kind: str | None = None, source: str | None = None) -> list[Trigger]:
        """Triggers, by name, optionally of one kind and source."""
        ...

    def delete_trigger(self, trigger_id: str) -> None:
        """Delete a trigger (its firings stay, as history)."""
        ...

    def advance_trigger(
        self, trigger_id: str, *, expected: int | None, cursor: int, firing: Firing | None
    ) -> bool:
        """Move a dataset trigger's cursor from ``expected`` and add ``firing``, atomically."""
        ...

    # -- firings --------------------------------------------------------------------

    def add_firing(self, firing: Firing) -> bool:
        """Store a PENDING firing; False when one with its origin and key exists."""
        ...

    def get_firing(self, firing_id: str) -> Firing | None:
        """A firing by id."""
        ...

    def list_firings(
        self,
        *,
        status: FiringStatus | None = None,
        origin_name: str | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[Firing]:
        """Firings, newest first unless ``oldest_first``."""
        ...

    def start_firing(self, firing_id: str, *, agent: str, now: int) -> bool:
        """PENDING -> RUNNING for ``agent``; False when it is not PENDING any more."""
        ...

    def set_firing_run(
        self, firing_id: str, *, run_id: str, resolved_params: Mapping[str, Any]
    ) -> None:
        """Record the run a firing started and the parameters it ran with."""
        ...

    def end_firing(
        self, firing_id: str, *, status: FiringStatus, error: str | None, now: int
    ) -> None:
        """Record how a RUNNING firing ended (or why its run never started); a firing
        that is not RUNNING any more (another agent recovered it) stays as it is."""
        ...

    # -- the agent lease ------------------------------------------------------------

    def acquire_lease(
        self, name: str, *, holder: str, host: str, pid: int, now: int, ttl_ms: int
    ) -> tuple[bool, Lease | None]:
        """Take or renew the lease if free, expired or ours; return (ours, the lease)."""
        ...

    def release_lease(self, name: str, *, holder: str) -> None:
        """Give the lease up if we hold it."""
        ...

    def get_lease(self, name: str) -> Lease | None:
        """The lease's current row."""
        ...
