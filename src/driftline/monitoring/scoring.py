"""A deployment's performance per window: predictions joined with labels, then metrics.

**Join.** A flattened prediction row (:mod:`._traffic`) takes the label stored for its
``(request_id, row)`` when the label's time is at most ``join_window`` (default 14 days)
after the prediction's; later labels are not used (a label that took longer than that
to arrive most likely belongs to another outcome). Every window reports ``rows``,
``labelled`` and ``coverage = labelled / rows`` beside its figures.

**Label delay.** A window that ended less than ``label_delay`` ago has not had the time
to collect its labels: its realized figures are not computed (status ``label_delay``),
so a partial set of early labels is never mistaken for the window's performance. Its
estimated figures (CBPE) are, since they use no labels.

**Task** (``task="auto"``): class probabilities (``prediction_0``, ``prediction_1``, ...)
are ``binary`` with two classes, ``multiclass`` with more (labels are class indices);
one ``prediction`` per row with 0/1 labels and scores in [0, 1] (not all 0 or 1) is
``binary``; predicted labels equal in kind to the labels (text, or integers) are
``classification``; other numbers are ``regression``.

**CBPE** (binary and multiclass tasks): the calibration is fitted on the labelled rows
of the windows whose labels are complete (older than the label delay), at least
``min_rows`` of them with every class present; every window then gets an estimate
(status ``no_calibration`` without one). See :mod:`.metrics` for the definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError
from driftline.monitoring import metrics as m
from driftline.monitoring.models import MISSING, OTHER, PerformanceWindow

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TASKS", "Joined", "evaluate", "join_labels"]

TASKS = ("auto", "binary", "multiclass", "classification", "regression")
_MAX_SEGMENTS = 20
_ESTIMATED = ("binary", "multiclass")  # the tasks CBPE estimates


@dataclass(frozen=True, slots=True)
class Joined:
    """Prediction rows with their labels, as arrays (one entry per predicted row)."""

    time_ms: np.ndarray
    predictions: dict[str, np.ndarray]
    label: np.ndarray  # float64 (NaN: no label) or object (None: no label)
    labelled: np.ndarray  # bool
    table: Any  # the joined Arrow table (for segment columns)


def join_labels(traffic: Any, labels: Any, join_window_ms: int) -> Joined:
    """Join flattened predictions with stored labels (module docstring).

    The keys are made integers first: a request id becomes its position in the traffic's
    dictionary of request ids (a few thousand strings, not one per row), and a key is
    ``position * rows_per_request + row``. Each prediction row then looks its label up
    in a hash table of the labels' keys (a label's key is unique: the label store keeps
    one per request and row); the prediction table's columns are never copied.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = traffic.num_rows
    time_ms = np.asarray(
        pc.cast(pc.cast(traffic["time"], pa.timestamp("ms", tz="UTC"), safe=False), pa.int64())
        .combine_chunks()
        .to_numpy(zero_copy_only=False),
        dtype=np.int64,
    )
    codes, dictionary = _request_codes(traffic["request_id"])
    rows = _int64(traffic["row"])
    label_rows = _int64(labels["row"])
    label_codes = pc.index_in(labels["request_id"], value_set=dictionary)
    known = np.asarray(label_codes.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    # one key space for both sides: rows are below ``width`` on each
    width = int(max(rows.max(initial=-1), label_rows.max(initial=-1))) + 1
    label_keys = (
        np.asarray(pc.fill_null(label_codes, 0).to_numpy(zero_copy_only=False), np.int64) * width
        + label_rows
    )[known]
    which = _lookup(codes * width + rows, label_keys, len(dictionary) * width)
    at = np.flatnonzero(which >= 0)
    picked = np.flatnonzero(known)[which[at]]  # each hit's row in ``labels``
    label_time = np.asarray(_int64(labels["label_time"])[picked])
    ok = label_time <= time_ms[at] + join_window_ms
    at, picked = at[ok], picked[ok]
    hits = labels.select(["value_num", "value_text"]).take(pa.array(picked))
    labelled = np.zeros(n, dtype=bool)
    labelled[at] = True
    text = hits["value_text"].combine_chunks()
    label: np.ndarray
    if len(text) and text.null_count < len(text):
        if text.null_count:
            raise InvalidArgumentError(
                "The labels of this deployment mix numbers and text; re-ingest them "
                "with one kind (dl.monitoring.log_labels replaces earlier labels)"
            )
        label = np.full(n, None, dtype=object)
        label[at] = np.asarray(text.to_pylist(), dtype=object)
    else:
        label = np.full(n, np.nan)
        label[at] = hits["value_num"].combine_chunks().to_numpy(zero_copy_only=False)
    predictions = {
        name: _column(traffic[name])
        for name in traffic.column_names
        if name == "prediction" or name.startswith("prediction_")
    }
    return Joined(time_ms, predictions, label, labelled, traffic)


def _lookup(keys: np.ndarray, table_keys: np.ndarray, space: int) -> np.ndarray:
    """The position in ``table_keys`` (unique) of each of ``keys``, or -1.

    Keys lie in ``[0, space)`` (a negative key is in no table). When that space is not
    much larger than the keys, a direct-address table answers with one gather, in key
    order (traffic rows come in key order, so the reads are sequential); else a hash
    table of ``table_keys`` does.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if space <= _DIRECT_TABLE_FACTOR * max(len(keys) + len(table_keys), 1):
        direct = np.full(space + 1, -1, dtype=np.int64)  # the last slot: negative keys
        direct[table_keys] = np.arange(len(table_keys))
        out: np.ndarray = direct[np.where(keys >= 0, keys, space)]
        return out
    found = pc.index_in(pa.array(keys), value_set=pa.array(table_keys))
    return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


# A direct-address table of up to this many slots per key looked up is cheaper than
# hashing (8 bytes a slot: 4x the keys' own size).
_DIRECT_TABLE_FACTOR = 4


def _request_codes(ids: Any) -> tuple[np.ndarray, Any]:
    """Each row's position in one dictionary of the request ids, and that dictionary."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(ids.type):
        ids = pc.dictionary_encode(ids)
    # Each cached file has its own dictionary: unified, the positions mean the same id.
    column = pa.table({"id": ids}).unify_dictionaries().column("id")
    if column.num_chunks == 0:
        return np.zeros(0, np.int64), pa.array([], pa.string())
    dictionary = column.chunk(0).dictionary
    codes = np.concatenate(
        [  # a null id (never written by serving) gets a key no label has
            np.asarray(pc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False), np.int64)
            for c in column.chunks
        ]
    )
    return codes, pc.cast(dictionary, pa.string())


def _int64(col: Any) -> np.ndarray:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return np.asarray(pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False), np.int64)


def _column(col: Any) -> np.ndarray:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    col = col.combine_chunks()
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False))
    return np.asarray(pc.cast(col, pa.string()).to_pylist(), dtype=object)


def infer_task(j: Joined, task: str) -> str:
    """The task (module docstring), checked against the predictions there are."""
    import numpy as np

    if task not in TASKS:
        raise InvalidArgumentError(f"Unknown task {task!r}; use one of {', '.join(TASKS)}")
    probas = _proba_columns(j)
    if task == "auto":
        if len(probas) == 2:
            return "binary"
        if len(probas) > 2:
            return "multiclass"
        pred = j.predictions.get("prediction")
        if pred is None:
            raise InvalidArgumentError(
                "The prediction log has no prediction column (prediction or prediction_0, ...)"
            )
        y = j.label[j.labelled]
        if pred.dtype == object or j.label.dtype == object:
            return "classification"
        if len(y) == 0:
            return "regression" if np.any((pred < 0) | (pred > 1)) else "binary"
        zero_one = bool(np.all((y == 0) | (y == 1)))
        finite = pred[np.isfinite(pred)]
        in_unit = bool(np.all((finite >= 0) & (finite <= 1)))
        if zero_one and in_unit and not np.all((finite == 0) | (finite == 1)):
            return "binary"
        integral = bool(np.all(y == np.round(y)) and np.all(finite == np.round(finite)))
        return "classification" if integral else "regression"
    if task == "binary" and not (len(probas) == 2 or "prediction" in j.predictions):
        raise InvalidArgumentError(
            "A binary task needs a score column (prediction or prediction_1)"
        )
    if task == "multiclass" and len(probas) < 2:
        raise InvalidArgumentError(
            "A multiclass task needs class probabilities (prediction_0, ...)"
        )
    return task


def _proba_columns(j: Joined) -> list[str]:
    names = [n for n in j.predictions if n.startswith("prediction_") and n[11:].isdigit()]
    return sorted(names, key=lambda n: int(n[11:]))


def _score(j: Joined) -> np.ndarray:
    probas = _proba_columns(j)
    return j.predictions[probas[1]] if len(probas) == 2 else j.predictions["prediction"]


def _realized(task: str, j: Joined, rows: np.ndarray, threshold: float) -> dict[str, float]:
    import numpy as np

    y = j.label[rows]
    if task == "binary":
        if j.label.dtype == object or not np.all((y == 0) | (y == 1)):
            raise InvalidArgumentError("Binary labels must be 0/1 (or booleans)")
        return m.binary(y, _score(j)[rows], threshold)
    if task == "multiclass":
        proba = _proba(j, rows)
        if j.label.dtype == object or not np.all(y == np.round(y)):
            raise InvalidArgumentError("Multiclass labels must be class indices (0, 1, 2, ...)")
        return m.multiclass(y.astype(np.int64), proba)
    pred = j.predictions["prediction"][rows]
    if task == "classification":
        if (pred.dtype == object) != (y.dtype == object):
            raise InvalidArgumentError(
                "Predicted labels and labels differ in kind (text against numbers)"
            )
        return m.labels_only(y, pred)
    if y.dtype == object or pred.dtype == object:
        raise InvalidArgumentError("Regression needs numeric labels and predictions")
    return m.regression(y, pred)


def evaluate(
    j: Joined,
    bounds: list[tuple[datetime, datetime]],
    *,
    now_ms: int,
    task: str = "auto",
    threshold: float = 0.5,
    label_delay_ms: int = 0,
    min_rows: int = 100,
    segment: str | None = None,
    estimate: bool = True,
) -> tuple[str, list[PerformanceWindow], int]:
    """Realized and estimated figures per window (and segment): ``(task, windows,
    calibration rows)``."""
    import numpy as np

    # No traffic at all: nothing to infer the task from, and nothing to score.
    task = infer_task(j, task) if len(j.time_ms) or task != "auto" else "unknown"
    starts = np.array([int(s.timestamp() * 1000) for s, _ in bounds], dtype=np.int64)
    ends = np.array([int(e.timestamp() * 1000) for _, e in bounds], dtype=np.int64)
    which = np.searchsorted(starts, j.time_ms, side="right") - 1
    inside = (which >= 0) & (j.time_ms < ends[np.clip(which, 0, len(ends) - 1)])
    which = np.where(inside, which, -1)
    mature = ends <= now_ms - label_delay_ms
    calibration = None
    if estimate and task in _ESTIMATED:
        known = j.labelled & (which >= 0) & mature[np.clip(which, 0, len(ends) - 1)]
        calibration = _calibrate(task, j, known, min_rows)
    groups = _segments(j, segment)
    out = []
    order = np.argsort(which, kind="stable")
    cuts = np.searchsorted(which[order], np.arange(len(bounds) + 1))
    for i in range(len(bounds)):
        members = order[cuts[i] : cuts[i + 1]]
        for value, mask in groups:
            rows: np.ndarray = members if mask is None else members[mask[members]]
            common: dict[str, Any] = {
                "start": int(starts[i]),
                "end": int(ends[i]),
                "task": task,
                "rows": len(rows),
                "segment": segment,
                "segment_value": value,
            }
            labelled = rows[j.labelled[rows]]
            n_lab = len(labelled)
            coverage = n_lab / len(rows) if len(rows) else 0.0
            status = "ok"
            figures: dict[str, float] = {}
            if not mature[i] and len(rows):
                status = "label_delay"
            elif n_lab < min_rows:
                status = "insufficient_data"
            else:
                figures = _realized(task, j, labelled, threshold)
            out.append(
                PerformanceWindow(
                    **common,
                    kind="realized",
                    status=status,
                    labelled=n_lab,
                    coverage=coverage,
                    metrics=figures,
                )
            )
            if task in _ESTIMATED and estimate:
                out.append(_estimated(common, j, rows, calibration, threshold, min_rows))
    return task, out, 0 if calibration is None else calibration.rows


def _calibrate(
    task: str, j: Joined, known: np.ndarray, min_rows: int
) -> m.Calibration | m.MulticlassCalibration | None:
    """The CBPE calibration on the ``known`` rows, or None when they cannot give one
    (too few, a class missing, labels that are not class indices)."""
    import numpy as np

    y = j.label[known]
    if known.sum() < min_rows or j.label.dtype == object:
        return None
    if task == "binary":
        return m.fit_calibration(y, _score(j)[known]) if 0 < np.sum(y) < len(y) else None
    proba = _proba(j, known)
    k = proba.shape[1]
    if not np.all((y >= 0) & (y < k) & (y == np.round(y))):
        return None  # the realized figures name the bad labels
    if np.any(np.bincount(y.astype(np.int64), minlength=k) == 0):
        return None
    return m.fit_multiclass_calibration(y, proba)


def _proba(j: Joined, rows: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.column_stack([j.predictions[n][rows] for n in _proba_columns(j)])


def _estimated(
    common: dict[str, Any],
    j: Joined,
    rows: np.ndarray,
    calibration: m.Calibration | m.MulticlassCalibration | None,
    threshold: float,
    min_rows: int,
) -> PerformanceWindow:
    import numpy as np

    labelled = int(np.count_nonzero(j.labelled[rows]))
    coverage = labelled / len(rows) if len(rows) else 0.0
    base: dict[str, Any] = {
        **common,
        "kind": "estimated",
        "labelled": labelled,
        "coverage": coverage,
    }
    if calibration is None:
        return PerformanceWindow(**base, status="no_calibration")
    if isinstance(calibration, m.MulticlassCalibration):
        proba = _proba(j, rows)
        proba = proba[np.all(np.isfinite(proba), axis=1)]
        if len(proba) < min_rows:
            return PerformanceWindow(**base, status="insufficient_data")
        est, bands = m.cbpe_multiclass(proba, calibration)
    else:
        score = _score(j)[rows]
        score = score[np.isfinite(score)]
        if len(score) < min_rows:
            return PerformanceWindow(**base, status="insufficient_data")
        est, bands = m.cbpe(score, calibration, threshold)
    return PerformanceWindow(
        **base,
        status="ok",
        metrics=est,
        lower={k: lo for k, (lo, _) in bands.items()},
        upper={k: hi for k, (_, hi) in bands.items()},
    )


def _segments(j: Joined, segment: str | None) -> list[tuple[str | None, np.ndarray | None]]:
    """``(value, row mask)`` per segment: the most frequent values, then the rest."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if segment is None:
        return [(None, None)]
    if segment not in j.table.column_names:
        logged = j.table.column_names
        raise InvalidArgumentError(
            f"Cannot segment by {segment!r}: the prediction log has the columns {logged}"
        )
    col = pc.cast(j.table[segment].combine_chunks(), pa.string())
    counts = pc.value_counts(col.drop_null())
    values = counts.field("values").to_pylist()
    n = np.asarray(counts.field("counts").to_numpy())
    top = [values[i] for i in np.argsort(-n, kind="stable")[:_MAX_SEGMENTS]]
    codes = np.asarray(
        pc.fill_null(pc.index_in(col, value_set=pa.array(top, pa.string())), -1).to_numpy(
            zero_copy_only=False
        )
    )
    missing = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    groups: list[tuple[str | None, np.ndarray | None]] = [
        (v, codes == k) for k, v in enumerate(top)
    ]
    rest = (codes == -1) & ~missing
    if rest.any():
        groups.append((OTHER, rest))
    if missing.any():
        groups.append((MISSING, missing))
    return groups
