"""The CBPE benchmark's data, made the same way in driftline's and NannyML's virtualenvs.

A binary classifier whose scores are miscalibrated (too timid) on a reference period with
labels, and an analysis period whose inputs moved (wider, shifted), so that its ROC AUC
differs from the reference's and the estimate has work to do.
"""

from __future__ import annotations

import numpy as np


def cbpe_frames(n: int, seed: int) -> dict[str, np.ndarray]:
    """``ref_score``, ``ref_label``, ``score``, ``label`` (the last unseen by estimators)."""
    rng = np.random.default_rng(seed)

    def period(mean: float, std: float) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(mean, std, n)
        truth = 1 / (1 + np.exp(-(1.6 * x - 0.4)))
        label = (rng.random(n) < truth).astype(np.int64)
        score = 1 / (1 + np.exp(-(0.9 * x + 0.1 * rng.normal(size=n))))
        return np.round(score, 6), label

    ref_score, ref_label = period(0.0, 1.0)
    score, label = period(0.4, 1.4)
    return {"ref_score": ref_score, "ref_label": ref_label, "score": score, "label": label}


def checksum(frames: dict[str, np.ndarray]) -> float:
    """A number that differs if the frames differ."""
    return float(sum(np.sum(v * (1 + np.arange(len(v)) % 7)) for v in frames.values()))
