"""Seeded frames for bench/monitoring.py, importable by the peers' virtualenvs too.

numpy and pandas only, so that Evidently's interpreter builds the very same frames from
the same seeds (the driftline side checks a checksum against it). 15 numeric columns of
the shapes that break naive binning (skewed, heavy-tailed, tied, zero-inflated, with
missing values) and 5 categorical ones (a long tail past the top 50, uniform, boolean,
with nulls, Zipf).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC = [f"n{i:02d}" for i in range(15)]
CATEGORICAL = ["c_tail", "c_five", "c_bool", "c_nulls", "c_zipf"]


def _cat(codes: np.ndarray, names: list[str], mask: np.ndarray | None = None) -> pd.Categorical:
    codes = codes.astype(np.int32)
    if mask is not None:
        codes = np.where(mask, -1, codes)
    return pd.Categorical.from_codes(codes, categories=names)


def frame(n: int, seed: int, *, shift: float = 0.0, shift_column: str = "n01") -> pd.DataFrame:
    """``n`` rows; ``shift`` moves ``shift_column`` by that many standard deviations."""
    r = np.random.default_rng(seed)
    cols: dict[str, object] = {
        "n00": r.normal(0.0, 1.0, n),
        "n01": r.normal(50.0, 10.0, n),
        "n02": r.lognormal(0.0, 1.0, n),
        "n03": r.exponential(2.0, n),
        "n04": r.uniform(-1.0, 1.0, n),
        "n05": r.standard_t(5, n),
        "n06": r.poisson(2.0, n).astype(np.float64),
        "n07": np.where(r.random(n) < 0.7, 0.0, r.gamma(2.0, 3.0, n)),
        "n08": r.binomial(100, 0.3, n).astype(np.float64),
        "n09": r.beta(0.5, 0.5, n),
        "n10": r.normal(0.0, 1.0, n) ** 2,
        "n11": r.integers(0, 2, n).astype(np.float64),
        "n12": np.round(r.normal(30.0, 5.0, n)),
        "n13": np.where(r.random(n) < 0.05, np.nan, r.normal(0.0, 1.0, n)),
        "n14": r.pareto(3.0, n),
    }
    std = {"n00": 1.0, "n01": 10.0}
    if shift:
        cols[shift_column] = cols[shift_column] + shift * std.get(shift_column, 1.0)  # type: ignore[operator]
    cols["c_tail"] = _cat(
        np.minimum(r.geometric(0.06, n) - 1, 79), [f"t{i:02d}" for i in range(80)]
    )
    cols["c_five"] = _cat(r.integers(0, 5, n), ["a", "b", "c", "d", "e"])
    cols["c_bool"] = _cat((r.random(n) < 0.3).astype(np.int32), ["false", "true"])
    cols["c_nulls"] = _cat(r.integers(0, 10, n), [f"v{i}" for i in range(10)], r.random(n) < 0.05)
    cols["c_zipf"] = _cat(np.minimum(r.zipf(1.6, n) - 1, 199), [f"z{i:03d}" for i in range(200)])
    return pd.DataFrame(cols)


def checksum(df: pd.DataFrame) -> float:
    """A number both interpreters compute from a frame, to prove they drew the same one."""
    return float(np.nansum(df["n00"].to_numpy()) + np.nansum(df["n13"].to_numpy()))
