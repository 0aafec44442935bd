"""A small in-process cache of recently verified credentials.

A password check costs a deliberate ~50 ms (scrypt), and the MLflow client sends basic
auth with every call; without a cache each logged metric would pay it. Entries live a
few seconds (:data:`TTL`), so revoking a token, disabling a user, changing a role, a
grant or a password takes effect in every worker process within that time, and at once
in the process that made the change (it clears its cache). Keys are SHA-256 digests of
the credentials, so the cache holds no secret in the clear; failed checks are never
cached.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from driftline.auth.models import Principal

__all__ = ["TTL", "CredentialCache"]

TTL = 5.0
_MAX_ENTRIES = 4096


class CredentialCache:
    """Maps a credential's digest to the principal it authenticated, for ``ttl`` seconds."""

    def __init__(self, ttl: float = TTL, max_entries: int = _MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(*parts: str) -> str:
        """The cache key of a credential made of ``parts`` (a digest, not the secret)."""
        return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> Principal | None:
        """The principal cached under ``key``, if it has not expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            deadline, principal = entry
            if time.monotonic() >= deadline:
                del self._entries[key]
                return None
            return principal

    def put(self, key: str, principal: Principal, *, max_age: float | None = None) -> None:
        """Cache ``principal`` for the TTL (or less: ``max_age``, e.g. a token about to expire)."""
        age = self.ttl if max_age is None else min(self.ttl, max_age)
        if age <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + age, principal)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (after a permission change made in this process)."""
        with self._lock:
            self._entries.clear()
