"""Pages of results and opaque page tokens.

A token encodes the offset of the next page together with a fingerprint of the query
that produced it, so a token reused with a different query is refused instead of
silently returning the wrong rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from driftline.errors import InvalidArgumentError

__all__ = ["Page", "decode_token", "encode_token"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing: ``items`` plus ``next_token`` (``None`` on the last page)."""

    items: Sequence[T]
    next_token: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]


def _fingerprint(query: object) -> str:
    raw = json.dumps(query, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def encode_token(offset: int, query: object) -> str:
    """Encode the offset of the next page of ``query`` as an opaque token."""
    payload = json.dumps({"o": offset, "q": _fingerprint(query)}).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_token(token: str | None, query: object) -> int:
    """Return the offset a token stands for; ``None`` means the first page."""
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset, fingerprint = int(payload["o"]), str(payload["q"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(f"Malformed page token {token!r}") from exc
    if fingerprint != _fingerprint(query) or offset < 0:
        raise InvalidArgumentError(
            "This page token belongs to a different query; repeat the query that returned it"
        )
    return offset
