"""Counting a window at the reference's points without sorting it: the same counts, and the
same KS, Wasserstein and PSI figures, as sorting the window."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from driftline.errors import InvalidArgumentError
from driftline.monitoring import DriftThresholds
from driftline.monitoring._frames import open_source
from driftline.monitoring._point_counts import count_at_points
from driftline.monitoring.drift import compare, psi
from driftline.monitoring.models import ColumnReference
from driftline.monitoring.reference import fit

Draw = Callable[[np.random.Generator, int], np.ndarray]

DISTRIBUTIONS: dict[str, Draw] = {
    "normal": lambda g, n: g.normal(size=n),
    "tied_integers": lambda g, n: g.integers(0, 5, n).astype(float),
    "zero_inflated": lambda g, n: np.where(g.random(n) < 0.7, 0.0, g.exponential(size=n)),
    # heavy tails stretch the grid until buckets hold many points: the searchsorted path
    "cauchy": lambda g, n: g.standard_cauchy(n),
    "lognormal": lambda g, n: g.lognormal(0.0, 3.0, n),
    "constant": lambda g, n: np.full(n, 2.5),
    "tiny_spread": lambda g, n: 1e-300 * g.normal(size=n),
}


def _sketch(reference: np.ndarray) -> np.ndarray:
    probs = np.linspace(0.0, 1.0, 1001)
    return np.unique(np.quantile(reference, probs, method="inverted_cdf"))


def _sorted_counts(points: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, ...]:
    finite = np.sort(values[np.isfinite(values)])
    return (
        np.searchsorted(finite, points, side="left"),
        np.searchsorted(finite, points, side="right"),
    )


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_counts_equal_those_of_the_sorted_values(name: str) -> None:
    g = np.random.default_rng(11)
    draw = DISTRIBUTIONS[name]
    points = _sketch(draw(g, 50_000))
    values = draw(g, 200_003) * 1.1  # off the points, across several blocks
    values[g.integers(0, len(values), 97)] = np.nan
    values[[5, 70_000]] = np.inf
    values[9] = -np.inf
    counts = count_at_points(points, values)
    below, at_or_below = _sorted_counts(points, values)
    np.testing.assert_array_equal(counts.below, below)
    np.testing.assert_array_equal(counts.at_or_below, at_or_below)
    finite = values[np.isfinite(values)]
    assert (counts.finite, counts.negative_infinite, counts.positive_infinite) == (
        len(finite),
        1,
        2,
    )
    assert counts.nan == int(np.isnan(values).sum())
    low, high = finite[finite < points[0]], finite[finite > points[-1]]
    assert counts.under == pytest.approx(np.sum(points[0] - low), rel=1e-12, abs=1e-300)
    assert counts.over == pytest.approx(np.sum(high - points[-1]), rel=1e-12, abs=1e-300)


def test_values_on_and_next_to_every_point_are_counted_on_the_right_side() -> None:
    g = np.random.default_rng(12)
    points = _sketch(g.normal(size=20_000))
    values = np.concatenate(
        [points, np.nextafter(points, -np.inf), np.nextafter(points, np.inf), points]
    )
    g.shuffle(values)
    counts = count_at_points(points, values)
    below, at_or_below = _sorted_counts(points, values)
    np.testing.assert_array_equal(counts.below, below)
    np.testing.assert_array_equal(counts.at_or_below, at_or_below)
    np.testing.assert_array_equal(counts.at_or_below - counts.below, np.full(len(points), 2))


def test_no_values_count_zero_everywhere() -> None:
    counts = count_at_points(np.array([0.0, 1.0]), np.array([], dtype=float))
    assert counts.below.tolist() == [0, 0]
    assert counts.at_or_below.tolist() == [0, 0]
    assert (counts.finite, counts.nan, counts.under, counts.over) == (0, 0, 0.0, 0.0)


@pytest.mark.parametrize("points", [[], [1.0, 0.0], [0.0, 0.0], [0.0, np.nan], [np.inf]])
def test_points_that_cannot_be_counted_at_are_invalid(points: list[float]) -> None:
    with pytest.raises(InvalidArgumentError, match="finite, sorted, distinct"):
        count_at_points(np.array(points, dtype=float), np.array([0.5]))


def _sorted_figures(ref: ColumnReference, x: np.ndarray) -> dict[str, float]:
    """KS, W1 / std and PSI as drift computed them by sorting the window (the oracle)."""
    s = np.sort(x)
    valid = int(np.searchsorted(s, np.nan, side="left"))
    lo = int(np.searchsorted(s[:valid], -np.inf, side="right"))
    hi = int(np.searchsorted(s[:valid], np.inf, side="left"))
    finite = s[lo:hi]
    n = len(finite)
    le = np.searchsorted(s[:valid], np.asarray(ref.edges), side="right")
    cells = np.diff(np.concatenate(([0], le, [valid])))
    cur = np.append(cells, len(x) - valid) / len(x)
    shares = np.append(np.asarray(ref.proportions), ref.missing_share)
    u, first = np.unique(np.asarray(ref.sketch), return_index=True)
    f_ref = np.asarray(ref.sketch_cdf)[first]
    f_ref_left = np.asarray(ref.sketch_cdf_left)[first]
    at = f_ref - np.searchsorted(finite, u, side="right") / n
    below = f_ref_left - np.searchsorted(finite, u, side="left") / n
    ks = float(max(np.abs(at).max(), np.abs(below).max()))
    a, b = at[:-1], below[1:]
    same = a * b >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(same, 0.0, (a * a + b * b) / (2 * (np.abs(a) + np.abs(b))))
    w1 = float(np.sum(np.where(same, (np.abs(a) + np.abs(b)) / 2, crossing) * np.diff(u)))
    low = finite[finite < u[0]]
    high = finite[finite > u[-1]]
    w1 += (float(np.sum(u[0] - low)) + float(np.sum(high - u[-1]))) / n
    scale = ref.std if ref.std else max(abs(ref.mean or 0.0), 1.0)
    return {"ks": ks, "wasserstein": w1 / scale, "psi": psi(shares, cur)}


@pytest.mark.parametrize("shift", [0.0, 0.2, 1.0])
def test_drift_figures_equal_those_of_the_sorted_window(shift: float) -> None:
    g = np.random.default_rng(13)
    names = sorted(DISTRIBUTIONS)
    reference = fit(open_source(pa.table({k: DISTRIBUTIONS[k](g, 30_000) for k in names})))
    current = {k: DISTRIBUTIONS[k](g, 150_001) + shift for k in names}
    for x in current.values():
        x[g.integers(0, len(x), 500)] = np.nan
        x[:3] = [np.inf, -np.inf, np.inf]
    report = compare(reference, open_source(pa.table(current)), thresholds=DriftThresholds())
    for name in names:
        got = report.columns[name]
        want = _sorted_figures(reference.columns[name], current[name])
        assert got.status == "ok", name
        assert got.scores["ks"] == want["ks"], name  # the same counts: the same statistic
        assert got.scores["psi"] == want["psi"], name
        assert got.scores["wasserstein"] == pytest.approx(want["wasserstein"], rel=1e-9), name
        assert "infinite_values" in got.anomalies
