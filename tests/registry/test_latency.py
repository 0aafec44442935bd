"""The latency measurement behind the ``latency_p99_ms`` gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.registry.latency import measure_latency, single_row


class FakeModel:
    """A predict() whose duration is scripted on a fake clock (no real waiting)."""

    def __init__(self, durations_ms: list[float]) -> None:
        self.now = 0.0
        self.calls = 0
        self.durations = durations_ms

    def clock(self) -> float:
        return self.now

    def predict(self, _example: object) -> None:
        self.now += self.durations[self.calls % len(self.durations)] / 1000
        self.calls += 1


def test_one_disturbed_round_does_not_decide_the_p99() -> None:
    # 2 ms calls, except a burst of 30 ms calls that hits a single round (as another
    # process taking the core would): one p99 over every call would say 30 ms.
    durations = [2.0] * 10 + [2.0] * 200 + [30.0] * 10 + [2.0] * 190 + [2.0] * 1000
    model = FakeModel(durations)
    measured = measure_latency(model.predict, "row", clock=model.clock, round_seconds=10)
    assert measured.p99_ms == pytest.approx(2.0)
    assert measured.p99_high_ms == pytest.approx(30.0)
    assert measured.p99_low_ms == pytest.approx(2.0)
    assert measured.p50_ms == pytest.approx(2.0)
    assert (measured.rounds, measured.calls, measured.warmup_calls) == (5, 1000, 10)
    text = measured.describe()
    assert "median of 5 rounds' p99" in text
    assert "range 2-30 ms" in text
    assert "1000 predict() calls on 1 row(s)" in text
    assert "10 warm-up calls" in text


def test_slow_models_stop_a_round_at_its_time_budget() -> None:
    model = FakeModel([50.0])  # 200 calls per round would take 10 s
    measured = measure_latency(model.predict, "row", clock=model.clock)
    assert measured.calls == 5 * 20  # the minimum per round, since 20 calls exceed 0.2 s
    assert measured.p99_ms == pytest.approx(50.0)


def test_the_example_is_cut_to_one_row() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3]})
    assert len(single_row(frame)) == 1
    assert single_row(np.zeros((5, 3))).shape == (1, 3)
    assert single_row([{"a": 1}, {"a": 2}]) == [{"a": 1}]
    assert single_row({"a": 1}) == {"a": 1}
