"""Limits on failed password checks, against guessing and against burning the CPU.

Every password check costs a deliberate ~50 ms of scrypt. Without a limit, a client
could guess a password at the server's full speed and, doing so, keep its cores busy
for everyone else. :class:`FailureThrottle` counts failures in a sliding window

- per client address and user name (guessing one account): :data:`PER_NAME` failures;
- per client address (trying many names): :data:`PER_CLIENT` failures;

and refuses further password checks from a key at its limit, before any scrypt runs,
until its oldest failure leaves the window. A success forgets the failures of that
client and name. Counting per client as well as per name means an attacker elsewhere
cannot lock a user out; tokens are not counted, as their 256-bit secrets cannot be
guessed.

The counts live in the server process: a server with several workers allows each of
them the limits. Behind a reverse proxy, let the server see the real client address
(``driftline server --forwarded-allow-ips``), or every client shares the proxy's.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from driftline.errors import TooManyAttemptsError

__all__ = ["PER_CLIENT", "PER_NAME", "WINDOW", "FailureThrottle"]

PER_NAME = 10
PER_CLIENT = 100
WINDOW = 600.0
# Distinct keys remembered; beyond this the least recently failing are forgotten, so a
# flood of invented names cannot grow the server's memory without bound.
_MAX_KEYS = 100_000


class FailureThrottle:
    """Sliding-window counts of failed password checks. Thread-safe."""

    def __init__(
        self,
        *,
        per_name: int = PER_NAME,
        per_client: int = PER_CLIENT,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_name = per_name
        self.per_client = per_client
        self.window = window
        self._clock = clock
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, client: str, name: str) -> None:
        """Raise ``TooManyAttemptsError`` if ``client`` may not try a password now."""
        with self._lock:
            now = self._clock()
            for key, limit in (((client, name), self.per_name), ((client, ""), self.per_client)):
                times = self._recent(key, now)
                if times is not None and len(times) >= limit:
                    wait = max(1, int(times[0] + self.window - now + 0.999))
                    who = f"for {name!r} " if key[1] else ""
                    raise TooManyAttemptsError(
                        f"Too many failed password checks {who}from {client or 'this client'}; "
                        f"try again in {wait} s, or sign in with a token",
                        retry_after=wait,
                    )

    def failed(self, client: str, name: str) -> None:
        """Count a failed check of ``name``'s password from ``client``."""
        with self._lock:
            now = self._clock()
            for key in ((client, name), (client, "")):
                times = self._failures.get(key)
                if times is None:
                    times = self._failures[key] = deque()
                times.append(now)
                self._failures.move_to_end(key)
            while len(self._failures) > _MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, client: str, name: str) -> None:
        """Forget ``client``'s failures for ``name`` (its count per client stays)."""
        with self._lock:
            self._failures.pop((client, name), None)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times
