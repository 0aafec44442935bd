"""Waiting between retries: exponential, capped, with jitter (so clients spread out)."""

from __future__ import annotations

import random
import time

__all__ = ["backoff"]


def backoff(attempt: int, *, base: float = 0.05, cap: float = 5.0) -> None:
    """Sleep before retry number ``attempt + 1``: ``base * 2**attempt`` up to ``cap``, ±50 %."""
    time.sleep(min(cap, base * 2**attempt) * (0.5 + random.random()))
