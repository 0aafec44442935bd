"""The batch-upload body: a JSON index line, then the objects' bytes back to back."""

from __future__ import annotations

import os

import pytest

from driftline.core.artifacts import batch
from driftline.core.hashing import hash_bytes
from driftline.errors import InvalidArgumentError


def test_a_body_round_trips_in_order() -> None:
    objects = [(hash_bytes(data), data) for data in (b"", b"a", os.urandom(5000), b"\n\n")]
    assert batch.decode(batch.encode(objects)) == objects
    assert batch.decode(batch.encode([])) == []


def test_extra_bytes_after_the_listed_objects_are_refused() -> None:
    body = batch.encode([(hash_bytes(b"abc"), b"abc")]) + b"more"
    with pytest.raises(InvalidArgumentError, match="lists 3 bytes of objects, the body carries 7"):
        batch.decode(body)


def test_plans_fill_batches_up_to_the_limit_and_keep_order() -> None:
    size = batch.MAX_OBJECT
    items = list(range(70))
    groups = list(batch.plan(items, [size] * len(items)))
    assert [item for group in groups for item in group] == items
    per_batch = (batch.MAX_BATCH_BYTES - (4 << 20)) // size
    assert [len(group) for group in groups] == [per_batch, per_batch, 70 - 2 * per_batch]
    assert list(batch.plan([], [])) == []
