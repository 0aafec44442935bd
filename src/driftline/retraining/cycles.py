"""Retraining cycles: records with explicit states, moved by compare-and-set.

A cycle goes ``triggered -> training -> evaluating -> awaiting_approval ->
rolling_out -> promoted``, or ends ``rejected``, ``rolled_back`` or ``failed`` on the
way. Each transition is one database transaction that checks the state and generation
it expects, writes the new ones with what the step made (pipeline run, model version,
rollout, report) and appends an audit entry; a second driver's transition finds the
generation moved and fails with ``ConflictError`` instead of acting twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["END_STATES", "CursorMove", "Cycle", "CycleState", "Trigger", "TriggerOutcome"]


class CycleState(StrEnum):
    """Where a retraining cycle is."""

    TRIGGERED = "triggered"
    TRAINING = "training"
    EVALUATING = "evaluating"
    AWAITING_APPROVAL = "awaiting_approval"
    ROLLING_OUT = "rolling_out"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


END_STATES = frozenset(
    {CycleState.PROMOTED, CycleState.REJECTED, CycleState.ROLLED_BACK, CycleState.FAILED}
)
#: The transitions a cycle may make (any open state may also end failed).
NEXT: dict[CycleState, frozenset[CycleState]] = {
    CycleState.TRIGGERED: frozenset({CycleState.TRAINING}),
    CycleState.TRAINING: frozenset({CycleState.EVALUATING}),
    CycleState.EVALUATING: frozenset(
        {CycleState.REJECTED, CycleState.AWAITING_APPROVAL, CycleState.ROLLING_OUT}
    ),
    CycleState.AWAITING_APPROVAL: frozenset({CycleState.ROLLING_OUT, CycleState.REJECTED}),
    # rolling_out -> rolling_out: a shadow hands over to the canary.
    CycleState.ROLLING_OUT: frozenset(
        {CycleState.ROLLING_OUT, CycleState.PROMOTED, CycleState.ROLLED_BACK}
    ),
}


@dataclass(frozen=True, slots=True)
class Trigger:
    """What asks for a cycle: ``kind`` (alert, new_data, schedule, manual), a reference
    (alert id, dataset version ``customers@8``, the due time, user) and a payload for the
    pipeline's ``{trigger.KEY}`` placeholders, with ``why`` it fired (and, for an alert,
    the figures that ``matched`` the trigger's thresholds)."""

    kind: str
    ref: str
    payload: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"kind": self.kind, "ref": self.ref, "payload": dict(self.payload)}


@dataclass(frozen=True, slots=True)
class CursorMove:
    """What a trigger consumed: move the policy's cursor ``key`` (``new_data:customers``,
    ``schedule:UTC:0 3 * * 0``) from ``expected`` to ``to`` in the trigger's own
    transaction, so a dataset version or a due time is seen exactly once.

    ``expected=None``: the cursor must not exist yet, and is created at ``to``; an
    alert's mark (``alert:<id>``, at the alert's time) is made so, so each alert is
    turned into a trigger once however many agents look at it.
    """

    key: str
    expected: int | None
    to: int


@dataclass(frozen=True, slots=True)
class Cycle:
    """One retraining cycle (see the module docstring)."""

    id: str
    model: str
    state: CycleState
    generation: int
    cause: Trigger
    absorbed: int  # triggers that arrived while it ran and were folded into it
    created_at: datetime
    updated_at: datetime
    run_id: str | None = None
    version: int | None = None
    rollout: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    reason: str | None = None

    @property
    def ended(self) -> bool:
        """Whether the cycle reached an end state."""
        return self.state in END_STATES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``retrain status/history --json``)."""
        return {
            "id": self.id,
            "model": self.model,
            "state": self.state.value,
            "generation": self.generation,
            "cause": self.cause.to_dict(),
            "absorbed": self.absorbed,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "run_id": self.run_id,
            "version": self.version,
            "rollout": self.rollout,
            "report": self.report,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class TriggerOutcome:
    """What a trigger did: ``started`` a cycle, was ``absorbed`` by a running one, was
    ``skipped`` (cooldown, daily cap), or was ``seen`` already (what it consumes, see
    :class:`CursorMove`, was consumed by another look first: nothing happened), with the
    reason."""

    outcome: str
    cycle: Cycle | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "outcome": self.outcome,
            "cycle": self.cycle.to_dict() if self.cycle else None,
            "reason": self.reason,
        }
