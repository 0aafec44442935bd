"""Measuring a model's prediction latency so that a gate on it is stable on a busy machine.

One p99 over 50 calls is decided by its slowest call or two: a single scheduler hiccup,
garbage collection or another process taking the core moved it across a 20 ms threshold
between two tries of the same model. So the measurement:

- predicts on **one row** of the input example (what a caller of a served model sends),
- **warms up** first (lazy imports, caches, branch predictors),
- pauses the garbage collector while timing (its pauses are the process's, not the
  model's),
- times several **rounds** of calls, each up to ``calls_per_round`` calls or about
  ``round_seconds``, whichever comes first, and
- reports the **median of the rounds' p99**, so one disturbed round cannot decide it,
  with the rounds' range as the spread.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["LatencyMeasurement", "measure_latency", "single_row"]

WARMUP_CALLS = 10
CALLS_PER_ROUND = 200
ROUND_SECONDS = 0.2  # 5 rounds: about 1 s in all for a model slower than 1 ms
ROUNDS = 5
_MIN_CALLS_PER_ROUND = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyMeasurement:
    """Latencies in milliseconds and how they were measured."""

    p50_ms: float  # over every timed call
    p99_ms: float  # the median of the rounds' p99
    p99_low_ms: float  # the fastest round's p99
    p99_high_ms: float  # the slowest round's p99
    rounds: int
    calls: int  # timed calls, all rounds together
    warmup_calls: int
    rows: int  # rows per call

    def describe(self) -> str:
        """How it was measured, for gate reports and model cards."""
        return (
            f"p99 {_ms(self.p99_ms)} ms = median of {self.rounds} rounds' p99 "
            f"(range {_ms(self.p99_low_ms)}-{_ms(self.p99_high_ms)} ms), p50 "
            f"{_ms(self.p50_ms)} ms; {self.calls} predict() calls on {self.rows} row(s) of "
            f"the input example after {self.warmup_calls} warm-up calls, GC paused"
        )


def _ms(value: float) -> str:
    return f"{value:.3g}"


def single_row(example: Any) -> Any:
    """The first row of an input example, in the example's own type."""
    if hasattr(example, "iloc"):
        return example.iloc[:1]
    if isinstance(example, list) and example:
        return example[:1]
    shape = getattr(example, "shape", None)
    if shape is not None and len(shape) >= 1 and shape[0] > 1:
        return example[:1]
    return example


def measure_latency(
    predict: Callable[[Any], Any],
    example: Any,
    *,
    rounds: int = ROUNDS,
    calls_per_round: int = CALLS_PER_ROUND,
    round_seconds: float = ROUND_SECONDS,
    warmup_calls: int = WARMUP_CALLS,
    clock: Callable[[], float] = time.perf_counter,
) -> LatencyMeasurement:
    """Time ``predict(example)`` as the module docstring describes (``clock`` in seconds)."""
    import numpy as np

    for _ in range(warmup_calls):
        predict(example)
    per_round: list[list[float]] = []
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            timings: list[float] = []
            deadline = clock() + round_seconds
            while len(timings) < calls_per_round and (
                len(timings) < _MIN_CALLS_PER_ROUND or clock() < deadline
            ):
                began = clock()
                predict(example)
                timings.append((clock() - began) * 1000)
            per_round.append(timings)
    finally:
        if enabled:
            gc.enable()
    p99s = [float(np.percentile(t, 99)) for t in per_round]
    every = [value for timings in per_round for value in timings]
    return LatencyMeasurement(
        p50_ms=float(np.percentile(every, 50)),
        p99_ms=float(np.median(p99s)),
        p99_low_ms=min(p99s),
        p99_high_ms=max(p99s),
        rounds=rounds,
        calls=len(every),
        warmup_calls=warmup_calls,
        rows=_rows(example),
    )


def _rows(example: Any) -> int:
    shape = getattr(example, "shape", None)
    if shape is not None and len(shape) >= 1:
        return int(shape[0])
    return len(example) if isinstance(example, list) else 1
