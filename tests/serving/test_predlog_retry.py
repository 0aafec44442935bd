"""The prediction log keeps rows whose file could not be written and writes them with
the next file; only what the buffer cannot hold, or what still fails at close, is
dropped, and ``written + dropped`` is what was appended."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from driftline.serving.predlog import PredictionLog, read_predictions


def _row(i: int) -> tuple[Any, ...]:
    return (f"r{i}", "m", 1, "stable", datetime.now(UTC), "predict", None, [i], 1, 0.1, 200, None)


def test_rows_of_a_file_that_failed_are_written_with_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plog = PredictionLog(str(tmp_path), "d", flush_rows=10**6, flush_seconds=3600)
    real = plog._write_file
    failures = iter([OSError("the store is briefly down")])

    def flaky(day: Any, rows: Any) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real(day, rows)

    monkeypatch.setattr(plog, "_write_file", flaky)
    for i in range(5):
        plog.append(_row(i))
    with plog._lock:  # a flush, as the writer thread makes it: take the rows, write them
        rows, plog._pending = plog._pending, []
    plog._write(rows)  # its file fails
    assert (plog.written, plog.dropped, len(plog._pending)) == (0, 0, 5)
    plog.append(_row(5))
    plog.close()
    assert (plog.written, plog.dropped) == (6, 0)
    logged = read_predictions(str(tmp_path), "d").column("request_id").to_pylist()
    assert sorted(logged) == [f"r{i}" for i in range(6)]


def test_what_the_buffer_cannot_hold_and_what_fails_at_close_is_dropped_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plog = PredictionLog(str(tmp_path), "d", flush_rows=10**6, flush_seconds=3600, capacity=4)

    def down(day: Any, rows: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(plog, "_write_file", down)
    taken = [_row(i) for i in range(3)]
    plog.append(_row(3))
    plog.append(_row(4))
    plog._retry_later(taken)  # 3 failed rows, room for 2 beside the 2 queued
    assert (plog.dropped, [r[0] for r in plog._pending]) == (1, ["r0", "r1", "r3", "r4"])
    plog.close()  # still down: everything left is dropped, none lost silently
    assert (plog.written, plog.dropped) == (0, 5)
