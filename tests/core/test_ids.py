"""Ids are UUIDv7 as 32 lowercase hex digits: unique, and sortable by creation time."""

from __future__ import annotations

import re
import threading
import time
import uuid

from driftline.core.ids import new_id

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def test_ids_are_32_lowercase_hex_digits_of_a_uuid_version_7() -> None:
    for _ in range(100):
        value = new_id()
        assert HEX32.match(value), value
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_ids_in_one_process_are_unique_and_strictly_increasing() -> None:
    ids = [new_id() for _ in range(20_000)]  # many share a millisecond: the counter orders them
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_ids_embed_the_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000
    embedded = int(value[:12], 16)
    # The counter may push an id at most a little ahead of the clock, never behind it.
    assert before <= embedded <= after + 1


def test_ids_made_later_sort_later() -> None:
    first = new_id()
    deadline = time.monotonic() + 1
    while time.time_ns() // 1_000_000 <= int(first[:12], 16) and time.monotonic() < deadline:
        pass  # busy-wait for the next millisecond: the point is crossing a clock tick
    assert new_id() > first


def test_ids_from_many_threads_are_unique() -> None:
    results: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        out.extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [value for out in results for value in out]
    assert len(set(everything)) == len(everything) == 20_000
    for out in results:  # each thread sees its own ids in increasing order
        assert out == sorted(out)
