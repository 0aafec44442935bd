"""Seeded tables of 20 mixed columns (15 numeric, 5 categorical) for the drift tests.

The numeric columns cover the shapes that break naive binning: normal, skewed, heavy
tailed, tied small integers, zero-inflated, bounded, and one with missing values; the
categorical ones a long tail beyond the top 50, a few uniform values, booleans, and
nulls. Categorical columns are Arrow dictionaries, which is how Parquet hands them over.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

NUMERIC = [f"n{i:02d}" for i in range(15)]
CATEGORICAL = ["c_tail", "c_five", "c_bool", "c_nulls", "c_zipf"]


def _dictionary(codes: np.ndarray, names: list[str], mask: np.ndarray | None = None) -> pa.Array:
    indices = pa.array(codes.astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(indices, pa.array(names))


def mixed(n: int, seed: int, *, shift: float = 0.0, shift_column: str = "n00") -> pa.Table:
    """``n`` rows; ``shift`` adds that many standard deviations to ``shift_column``."""
    r = np.random.default_rng(seed)
    cols: dict[str, pa.Array | np.ndarray] = {
        "n00": r.normal(0.0, 1.0, n),
        "n01": r.normal(50.0, 10.0, n),
        "n02": r.lognormal(0.0, 1.0, n),
        "n03": r.exponential(2.0, n),
        "n04": r.uniform(-1.0, 1.0, n),
        "n05": r.standard_t(5, n),
        "n06": r.poisson(2.0, n).astype(np.int64),  # tied small integers
        "n07": np.where(r.random(n) < 0.7, 0.0, r.gamma(2.0, 3.0, n)),  # zero-inflated
        "n08": r.binomial(100, 0.3, n).astype(np.int64),
        "n09": r.beta(0.5, 0.5, n),
        "n10": r.normal(0.0, 1.0, n) ** 2,
        "n11": r.integers(0, 2, n).astype(np.float64),  # a 0/1 flag kept numeric
        "n12": np.round(r.normal(30.0, 5.0, n)),  # rounded: heavy ties
        "n13": np.where(r.random(n) < 0.05, np.nan, r.normal(0.0, 1.0, n)),  # missing
        "n14": r.pareto(3.0, n),
    }
    std = {"n00": 1.0, "n01": 10.0}
    if shift:
        cols[shift_column] = cols[shift_column] + shift * std.get(shift_column, 1.0)
    tail = [f"t{i:02d}" for i in range(80)]
    cols["c_tail"] = _dictionary(np.minimum(r.geometric(0.06, n) - 1, 79), tail)
    cols["c_five"] = _dictionary(r.integers(0, 5, n), ["a", "b", "c", "d", "e"])
    cols["c_bool"] = pa.array(r.random(n) < 0.3)
    cols["c_nulls"] = _dictionary(
        r.integers(0, 10, n), [f"v{i}" for i in range(10)], mask=r.random(n) < 0.05
    )
    zipf = np.minimum(r.zipf(1.6, n) - 1, 199)
    cols["c_zipf"] = _dictionary(zipf, [f"z{i:03d}" for i in range(200)])
    return pa.table(cols)
