"""Statistical quality: drift that does not cry wolf, and that finds a small real shift.

Seeded, so the counts are the same on every run; the bounds leave room for the binomial
noise of 40 trials (at a true rate of 5 %, 7 or more flagged trials of 40 has a chance of
0.4 %). ``bench/monitoring.py`` runs the full 200 trials per size.
"""

from __future__ import annotations

import pytest
from drift_frames import mixed

import driftline as dl
from driftline.monitoring._frames import open_source
from driftline.monitoring.reference import fit

TRIALS = 40


@pytest.fixture(scope="module")
def reference() -> dl.monitoring.Reference:
    return fit(open_source(mixed(100_000, seed=2024)))


@pytest.mark.slow
@pytest.mark.parametrize("n", [100, 500, 1_000, 10_000, 100_000])
def test_no_drift_flags_a_column_in_at_most_5_percent_of_trials(
    reference: dl.monitoring.Reference, n: int
) -> None:
    flagged, trials = 0, TRIALS if n < 100_000 else TRIALS // 2  # 100k rows: time
    for trial in range(trials):
        rep = dl.monitoring.drift(reference=reference, current=mixed(n, seed=10_000 * n + trial))
        flagged += bool(rep.drifted_columns)
        assert not rep.drifted
    assert flagged <= 6, f"{flagged} of {trials} no-drift trials flagged a column at n={n}"


@pytest.mark.slow
@pytest.mark.parametrize("n", [5_000, 20_000])
def test_a_fifth_of_a_std_mean_shift_is_found_and_nothing_else(
    reference: dl.monitoring.Reference, n: int
) -> None:
    found = 0
    for trial in range(TRIALS):
        current = mixed(n, seed=77 * n + trial, shift=0.2, shift_column="n01")
        rep = dl.monitoring.drift(reference=reference, current=current)
        found += rep.columns["n01"].drifted
        assert set(rep.drifted_columns) <= {"n01"}, rep.drifted_columns
    assert found >= 0.9 * TRIALS
