"""The label join on integer keys gives what a plain join on ``(request_id, row)`` gives:
traffic read from several cached files (each with its own dictionary of request ids),
labels of unknown requests, labels too late for the join window, rows labelled twice in
the traffic, numeric and text labels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from driftline.monitoring import scoring
from driftline.monitoring.scoring import join_labels

HOUR_MS = 3_600_000


def traffic(seed: int, files: int = 4, requests: int = 60, width: int = 5) -> pa.Table:
    """Flattened traffic as :func:`traffic` returns it: one table per cached file, each
    with dictionary-encoded request ids, concatenated."""
    rng = np.random.default_rng(seed)
    parts = []
    for f in range(files):
        ids, rows, times = [], [], []
        for r in range(requests):
            k = int(rng.integers(1, width + 1))
            ids += [f"req-{f}-{r}"] * k
            rows += list(range(k))
            times += [int(f * 10 * HOUR_MS + r * 60_000)] * k
        if f == files - 1:  # one request logged twice (a retry with the same id)
            ids, rows, times = ids + ids[:2], rows + rows[:2], times + times[:2]
        parts.append(
            pa.table(
                {
                    "request_id": pa.array(ids).dictionary_encode(),
                    "row": pa.array(rows, pa.int64()),
                    "time": pa.array(np.asarray(times) * 1000, pa.timestamp("us", tz="UTC")),
                    "prediction": pa.array(rng.random(len(ids))),
                }
            )
        )
    return pa.concat_tables(parts)


def labels(t: pa.Table, seed: int, *, text: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = pc.cast(t["request_id"], pa.string()).to_pylist()
    rows = t["row"].to_pylist()
    times = (pc.cast(t["time"], pa.int64()).to_numpy() // 1000).tolist()
    keys = {(i, r): tm for i, r, tm in zip(ids, rows, times, strict=True)}
    chosen = [k for k in keys if rng.random() < 0.6]
    chosen += [("nobody", 0), ("req-0-0", 99)]  # unknown request, unknown row
    late = rng.random(len(chosen)) < 0.2
    label_time = [
        keys.get(k, 0) + (30 * 24 * HOUR_MS if slow else HOUR_MS)
        for k, slow in zip(chosen, late, strict=True)
    ]
    values = rng.integers(0, 2, len(chosen))
    return pa.table(
        {
            "request_id": pa.array([k[0] for k in chosen], pa.string()),
            "row": pa.array([k[1] for k in chosen], pa.int64()),
            "value_num": pa.nulls(len(chosen), pa.float64())
            if text
            else pa.array(values.astype(float), pa.float64()),
            "value_text": pa.array([f"c{v}" for v in values], pa.string())
            if text
            else pa.nulls(len(chosen), pa.string()),
            "label_time": pa.array(label_time, pa.int64()),
        }
    )


def plain_join(t: pa.Table, stored: pa.Table, join_window_ms: int) -> tuple[np.ndarray, list]:
    """The definition: every traffic row whose (request_id, row) has a label that came
    within the join window gets that label."""
    ids = pc.cast(t["request_id"], pa.string()).to_pylist()
    rows = t["row"].to_pylist()
    times = (pc.cast(t["time"], pa.int64()).to_numpy() // 1000).tolist()
    by_key = {
        (i, r): (num, txt, lt)
        for i, r, num, txt, lt in zip(
            stored["request_id"].to_pylist(),
            stored["row"].to_pylist(),
            stored["value_num"].to_pylist(),
            stored["value_text"].to_pylist(),
            stored["label_time"].to_pylist(),
            strict=True,
        )
    }
    labelled = np.zeros(t.num_rows, dtype=bool)
    values: list = [None] * t.num_rows
    for k, (i, r, tm) in enumerate(zip(ids, rows, times, strict=True)):
        hit = by_key.get((i, r))
        if hit is not None and hit[2] <= tm + join_window_ms:
            labelled[k] = True
            values[k] = hit[1] if hit[1] is not None else hit[0]
    return labelled, values


@pytest.mark.parametrize("lookup", ["direct", "hash"])
@pytest.mark.parametrize("text", [False, True])
@pytest.mark.parametrize("seed", [1, 2])
def test_the_join_matches_its_definition(
    seed: int, text: bool, lookup: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if lookup == "hash":  # the lookup a sparse key space takes (few huge requests)
        monkeypatch.setattr(scoring, "_DIRECT_TABLE_FACTOR", 0)
    t = traffic(seed)
    stored = labels(t, seed + 10, text=text)
    window = 14 * 24 * HOUR_MS
    joined = join_labels(t, stored, window)
    labelled, values = plain_join(t, stored, window)
    assert labelled.sum() > 100  # the case is not empty
    assert (~labelled).sum() > 100
    np.testing.assert_array_equal(joined.labelled, labelled)
    got = [v if joined.labelled[i] else None for i, v in enumerate(joined.label.tolist())]
    assert got == values
    assert joined.labelled[-2:].all() == labelled[-2:].all()  # the request logged twice


def test_plain_request_ids_and_no_labels() -> None:
    t = traffic(3, files=1)
    plain = t.set_column(0, "request_id", pc.cast(t["request_id"], pa.string()))
    stored = labels(t, 4, text=False)
    a = join_labels(t, stored, HOUR_MS * 2)
    b = join_labels(plain, stored, HOUR_MS * 2)
    np.testing.assert_array_equal(a.labelled, b.labelled)
    np.testing.assert_array_equal(a.label, b.label)
    none = join_labels(t, stored.slice(0, 0), HOUR_MS)
    assert not none.labelled.any()
    empty = join_labels(t.slice(0, 0), stored, HOUR_MS)
    assert len(empty.labelled) == 0
