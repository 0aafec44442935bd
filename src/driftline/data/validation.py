"""Validate a batch of data against a schema and, optionally, a reference profile.

Every check of a batch is compiled into the one aggregate query that also profiles it
(pandera was measured 16x slower than hand-written checks because it scans once per
check): null counts; exact counts of the domain and reference values (a binary search
over their hashes, see ``_Scan._count_agg``), which give the out-of-domain share and the
category shares; out-of-range counts with the extreme values as examples; and the batch's
counts on the *reference* histogram's bins, the outer bins open (values beyond the
reference range land in the first or last bin). Bins are never re-fitted per batch.

A second query runs only when the batch's own profile needs it: a column the reference
does not cover, or string values that neither the domain nor the reference knew. That is
also where the examples of out-of-domain values come from (the most frequent ones), so a
clean batch costs one scan and a failing one two.

Drift, per column present in the schema and the reference:

- numeric: Jensen-Shannon distance, base 2 (0 = same, 1 = disjoint), between the shares
  of the reference histogram's bins in the reference and in the batch;
- string and bool: L-infinity distance, the largest change of one share, over the
  reference's top-k values plus one "other" share for everything else.

A score above the threshold (the column's ``drift_threshold``, else the schema's default)
is an error-severity anomaly, so ``ok`` turns false. Thresholds are never loosened; but a
batch so small that sampling noise alone could reach the score (the 99th percentile of the
noise, from the chi-square approximation for numeric columns) gets a warning instead,
which names the row count: small windows would otherwise raise false alarms, as
Evidently's do at 100 rows. A score above that noise level is an error however small the
batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftline.data._stats_sql import _Col, _Scan, _sql_float
from driftline.data.profile import ColumnProfile, TableProfile
from driftline.data.schema import ColumnSchema, Schema

__all__ = ["ANOMALY_KINDS", "Anomaly", "ValidationReport", "validate"]

ANOMALY_KINDS = (
    "type_mismatch",
    "missing_column",
    "unexpected_column",
    "null_fraction",
    "out_of_domain",
    "out_of_range",
    "drift",
    "empty",
)
_EXAMPLES = 5
_Z99 = 2.326  # one-sided 99% normal quantile, for the numeric noise level
_Z_SHARES = 3.0  # for the largest of several share differences


@dataclass(frozen=True, slots=True, kw_only=True)
class Anomaly:
    """One finding about a batch.

    Attributes:
        column: The column, or None for the whole batch (``empty``).
        kind: One of :data:`ANOMALY_KINDS`.
        severity: ``"error"`` (fails the report) or ``"warning"``.
        measured: What the batch showed (a share, a score, a value or a type name).
        threshold: The limit it was held to.
        message: One human sentence.
        examples: A few offending values, as text.
    """

    column: str | None
    kind: str
    severity: str
    measured: float | str | None
    threshold: float | str | None
    message: str
    examples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        return {
            "column": self.column,
            "kind": self.kind,
            "severity": self.severity,
            "measured": self.measured,
            "threshold": self.threshold,
            "examples": list(self.examples),
            "message": self.message,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    """The outcome of :func:`validate`; ``ok`` is the one boolean to gate CI on.

    Attributes:
        ok: False if any anomaly has error severity.
        rows: Rows in the batch.
        anomalies: Findings, errors first.
        profile: The batch's profile (on the reference's bins where there is a reference).
        reference: The reference profile, if one was given.
        drift: Drift score per column that has a reference (see the module docstring).
    """

    ok: bool
    rows: int
    anomalies: tuple[Anomaly, ...]
    profile: TableProfile
    reference: TableProfile | None
    drift: dict[str, float]

    @property
    def errors(self) -> tuple[Anomaly, ...]:
        """Anomalies of error severity."""
        return tuple(a for a in self.anomalies if a.severity == "error")

    def counts_by_kind(self) -> dict[str, int]:
        """How many anomalies of each kind, for summaries."""
        out: dict[str, int] = {}
        for a in self.anomalies:
            out[a.kind] = out.get(a.kind, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (profiles as :meth:`TableProfile.to_dict`)."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "anomalies": [a.to_dict() for a in self.anomalies],
            "drift": dict(self.drift),
            "profile": self.profile.to_dict(),
            "reference": None if self.reference is None else self.reference.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ValidationReport:
        """Rebuild a report from :meth:`to_dict` output."""
        anomalies = []
        for a in d["anomalies"]:
            anomalies.append(Anomaly(**{**a, "examples": tuple(a.get("examples") or ())}))
        ref = d.get("reference")
        return cls(
            ok=bool(d["ok"]),
            rows=int(d["rows"]),
            anomalies=tuple(anomalies),
            profile=TableProfile.from_dict(d["profile"]),
            reference=None if ref is None else TableProfile.from_dict(ref),
            drift={str(k): float(v) for k, v in d.get("drift", {}).items()},
        )


def validate(
    data: Any, *, schema: Schema, reference: TableProfile | None = None
) -> ValidationReport:
    """Check a batch against a schema and, if given, a reference profile.

    Args:
        data: A ``pyarrow.Table``, a ``pandas.DataFrame``, or Parquet/CSV paths.
        schema: The expectations (see :mod:`driftline.data.schema`).
        reference: A profile of known-good data (e.g. the training set) for drift.

    Returns:
        The report; ``report.ok`` is False when any check failed.

    Example::

        report = validate(["batch.parquet"], schema=Schema.load("schema.yaml"),
                          reference=TableProfile.from_dict(stored))
        if not report.ok:
            print(*(a.message for a in report.errors), sep="\\n")
    """
    top_k = reference.top_k_size if reference is not None else 50
    with _Scan(data, top_k=top_k) as scan:
        anomalies: list[Anomaly] = []
        checked = _check_columns(scan, schema, anomalies)
        extra: dict[str, str] = {}
        for col, spec in checked:
            ref = reference.columns.get(col.name) if reference is not None else None
            _plan(scan, col, spec, ref)
            extra |= _range_aggs(col, spec)
        found = scan.first_pass(extra)
        counts = {c.name: dict(c.counts or {}) for c, _ in checked}  # the checks' counts
        bins = {c.name: c.bins for c, _ in checked}
        profile = scan.finish()  # a second query only if the profile needs more
        values = {c.name: dict(c.counts or {}) for c, _ in checked}  # for examples
    rows = profile.rows
    drift: dict[str, float] = {}
    if rows == 0:
        anomalies.append(
            Anomaly(
                column=None,
                kind="empty",
                severity="error",
                measured=0,
                threshold=1,
                message="The batch has no rows.",
            )
        )
    for col, spec in checked if rows else ():
        p = profile.columns[col.name]
        ref = reference.columns.get(col.name) if reference is not None else None
        anomalies += _null_check(p, spec)
        if spec.domain is not None and p.non_null:
            anomalies += _domain_check(p, spec, schema, counts[col.name], values[col.name])
        anomalies += _range_checks(col, spec, found)
        if ref is not None and ref.type in _kind_group(spec.type) and p.non_null:
            score = _drift(ref, p, bins[col.name], counts[col.name])
            if score is not None:
                drift[col.name] = score
                anomalies += _drift_check(p, ref, spec, schema, score, counts[col.name])
    anomalies.sort(key=lambda a: (a.severity != "error", _order(a)))
    return ValidationReport(
        ok=not any(a.severity == "error" for a in anomalies),
        rows=rows,
        anomalies=tuple(anomalies),
        profile=profile,
        reference=reference,
        drift=drift,
    )


def _order(a: Anomaly) -> int:
    return ANOMALY_KINDS.index(a.kind)


def _kind_group(type_: str) -> tuple[str, ...]:
    """Types whose reference statistics compare with a column of this schema type."""
    return ("int", "float") if type_ in ("int", "float") else (type_,)


def _check_columns(
    scan: _Scan, schema: Schema, anomalies: list[Anomaly]
) -> list[tuple[_Col, ColumnSchema]]:
    """Presence and type checks; returns the columns whose values are checked further."""
    checked = []
    for spec in schema.columns:
        col = scan.by_name.get(spec.name)
        if col is None:
            anomalies.append(
                Anomaly(
                    column=spec.name,
                    kind="missing_column",
                    severity="error" if spec.required else "warning",
                    measured=None,
                    threshold=None,
                    message=f"Column {spec.name!r} is missing from the batch"
                    + (" but is required." if spec.required else "."),
                )
            )
        elif col.type != spec.type and not (spec.type == "float" and col.type == "int"):
            anomalies.append(
                Anomaly(
                    column=spec.name,
                    kind="type_mismatch",
                    severity="error",
                    measured=col.type,
                    threshold=spec.type,
                    message=f"Column {spec.name!r} is {col.type} ({col.sql_type}); "
                    f"the schema expects {spec.type}.",
                )
            )
        else:
            checked.append((col, spec))
    named = {c.name for c in schema.columns}
    for col in scan.columns:
        if col.name not in named and not schema.allow_extra_columns:
            anomalies.append(
                Anomaly(
                    column=col.name,
                    kind="unexpected_column",
                    severity="error",
                    measured=col.type,
                    threshold=None,
                    message=f"Column {col.name!r} is not in the schema; add it or set "
                    "allow_extra_columns.",
                )
            )
    return checked


def _plan(scan: _Scan, col: _Col, spec: ColumnSchema, ref: ColumnProfile | None) -> None:
    """Ask the scan's first pass for what the checks and drift need."""
    if col.numeric and ref is not None and ref.histogram is not None:
        scan.plan_bins(col.name, ref.histogram.edges)
    if col.type == "string":
        values = list(spec.domain or ())
        if ref is not None and ref.type == "string":
            values += [v for v, _ in ref.top_k]
        if values:
            scan.plan_counts(col.name, values)


def _range_aggs(col: _Col, spec: ColumnSchema) -> dict[str, str]:
    """Out-of-range counts and the extreme values; infinities count, NaN does not."""
    aggs: dict[str, str] = {}
    if not col.numeric:
        return aggs
    v = col.raw
    if col.sql_type in ("DOUBLE", "FLOAT", "REAL"):
        v = f"CASE WHEN isnan({v}) THEN NULL ELSE {v} END"
    for side, bound, op, pick in (("lo", spec.min, "<", "min"), ("hi", spec.max, ">", "max")):
        if bound is not None:
            aggs[f"r{col.i}_{side}"] = f"count_if({v} {op} {_sql_float(bound)})"
            aggs[f"r{col.i}_{side}_ex"] = f"{pick}(CAST({v} AS DOUBLE), {_EXAMPLES})"
    return aggs


def _null_check(p: ColumnProfile, spec: ColumnSchema) -> list[Anomaly]:
    limit = spec.max_null_fraction
    if limit is None and spec.required:
        limit = 0.0
    if limit is None or p.null_fraction <= limit:
        return []
    return [
        Anomaly(
            column=p.name,
            kind="null_fraction",
            severity="error",
            measured=p.null_fraction,
            threshold=limit,
            message=f"Column {p.name!r} has {p.nulls} nulls of {p.count} values "
            f"({p.null_fraction:.2%}); at most {limit:.2%} are allowed.",
        )
    ]


def _domain_check(
    p: ColumnProfile,
    spec: ColumnSchema,
    schema: Schema,
    counts: Mapping[str, int],
    values: Mapping[str, int],
) -> list[Anomaly]:
    """Out-of-domain share from the first pass's exact counts of the domain values."""
    assert spec.domain is not None
    allowed = set(spec.domain)
    outside = p.non_null - sum(n for v, n in counts.items() if v in allowed)
    if outside <= 0:
        return []
    share = outside / p.non_null
    offenders = sorted(((n, v) for v, n in values.items() if v not in allowed and n), reverse=True)
    examples = tuple(v for _, v in offenders[:_EXAMPLES])
    error = share > schema.min_domain_share
    return [
        Anomaly(
            column=p.name,
            kind="out_of_domain",
            severity="error" if error else "warning",
            measured=share,
            threshold=schema.min_domain_share,
            examples=examples,
            message=f"Column {p.name!r} has {outside} values ({share:.2%}) outside its domain"
            + (f", e.g. {', '.join(map(repr, examples))}" if examples else "")
            + f"; {schema.min_domain_share:.2%} are tolerated.",
        )
    ]


def _range_checks(col: _Col, spec: ColumnSchema, found: Mapping[str, Any]) -> list[Anomaly]:
    out = []
    for side, bound, word in (
        ("lo", spec.min, "below the minimum"),
        ("hi", spec.max, "above the maximum"),
    ):
        key = f"r{col.i}_{side}"
        if bound is None or not found.get(key):
            continue
        extremes = [float(v) for v in found[key + "_ex"] or ()]
        bad = [v for v in extremes if (v < bound if side == "lo" else v > bound)]
        examples = tuple(f"{v:g}" for v in bad)
        out.append(
            Anomaly(
                column=col.name,
                kind="out_of_range",
                severity="error",
                measured=bad[0] if bad else None,
                threshold=bound,
                examples=examples,
                message=f"Column {col.name!r} has {found[key]} values {word} {bound:g}, "
                f"e.g. {', '.join(examples)}.",
            )
        )
    return out


def _drift(
    ref: ColumnProfile, p: ColumnProfile, bins: list[int] | None, counts: Mapping[str, int]
) -> float | None:
    if ref.histogram is not None and bins is not None:
        return _js_distance(ref.histogram.counts, bins)
    if ref.type in ("string", "bool") and ref.top_k and ref.non_null:
        ref_shares = [n / ref.non_null for _, n in ref.top_k]
        new_shares = [counts.get(v, 0) / p.non_null for v, _ in ref.top_k]
        diffs = [abs(a - b) for a, b in zip(ref_shares, new_shares, strict=True)]
        diffs.append(abs((1 - sum(ref_shares)) - (1 - sum(new_shares))))  # "other"
        return max(diffs)
    return None


def _js_distance(p: Sequence[int], q: Sequence[int]) -> float:
    """Jensen-Shannon distance, base 2, between two count vectors over the same bins."""
    sp, sq = sum(p), sum(q)
    if not sp or not sq:
        return 0.0
    js = 0.0
    for count_p, count_q in zip(p, q, strict=True):
        a, b = count_p / sp, count_q / sq
        m = (a + b) / 2
        if a:
            js += a * math.log2(a / m) / 2
        if b:
            js += b * math.log2(b / m) / 2
    return math.sqrt(max(js, 0.0))


def _noise_level(ref: ColumnProfile, p: ColumnProfile) -> float:
    """A drift score that sampling noise alone reaches about once in a hundred batches."""
    n_ref = ref.histogram.total if ref.histogram is not None else ref.non_null
    n_new = p.non_null - p.infinite
    if not n_ref or not n_new:
        return math.inf
    n_eff = 1 / (1 / n_ref + 1 / n_new)
    if ref.histogram is not None:
        k = max(len(ref.histogram.counts) - 1, 1)  # degrees of freedom
        chi2 = k * (1 - 2 / (9 * k) + _Z99 * math.sqrt(2 / (9 * k))) ** 3  # Wilson-Hilferty
        return math.sqrt(chi2 / (8 * n_eff * math.log(2)))  # JSD ~ chi2 / (8 n ln 2)
    return _Z_SHARES * math.sqrt(0.25 / n_eff)


def _drift_check(
    p: ColumnProfile,
    ref: ColumnProfile,
    spec: ColumnSchema,
    schema: Schema,
    score: float,
    counts: Mapping[str, int],
) -> list[Anomaly]:
    threshold = schema.drift_threshold(spec)
    if score <= threshold:
        return []
    noise = _noise_level(ref, p)
    what = "Jensen-Shannon distance" if ref.histogram is not None else "largest share change"
    message = f"Column {p.name!r} drifted from the reference: {what} {score:.3f} > {threshold:g}"
    if score <= noise:
        message += (
            f", but with {p.non_null} values sampling noise alone reaches {noise:.3f}; "
            "check again on a larger batch."
        )
    return [
        Anomaly(
            column=p.name,
            kind="drift",
            severity="error" if score > noise else "warning",
            measured=score,
            threshold=threshold,
            examples=_drift_examples(ref, p, counts),
            message=message + ("" if score <= noise else "."),
        )
    ]


def _drift_examples(
    ref: ColumnProfile, p: ColumnProfile, counts: Mapping[str, int]
) -> tuple[str, ...]:
    """The statistics that moved most, as short text."""
    if ref.mean is not None and p.mean is not None:
        return (
            f"mean {ref.mean:.4g} -> {p.mean:.4g}",
            f"std {ref.std or 0:.4g} -> {p.std or 0:.4g}",
        )
    changes = sorted(
        ((v, n / ref.non_null, counts.get(v, 0) / p.non_null) for v, n in ref.top_k),
        key=lambda t: -abs(t[1] - t[2]),
    )
    return tuple(f"{v!r} {a:.1%} -> {b:.1%}" for v, a, b in changes[:3])
