"""Figures of a deployment's variants from its prediction log, and the canary's verdict.

Everything here is computed from prediction-log rows (an Arrow table with the columns of
:mod:`driftline.serving.predlog`), which every serving process of a deployment writes,
so one process can judge the traffic all of them served.

- :func:`variant_figures`: per variant, requests, server errors (status >= 500), and
  latency percentiles of the answered requests.
- :func:`judge`: the canary against stable over one window: error-rate excess, p99
  latency ratio, and the population stability index (PSI) of the canary's predictions
  against stable's. Fewer than ``min_requests`` answers of either variant is a
  ``wait``: thin data never promotes and never rolls back.
- :func:`with_contributed`: the checks later stages contribute (below) added to a
  verdict.
- :func:`compare_variants`: ``driftline deploy compare``: per variant figures, and for
  each variant answering the same requests as another (the shadow mirrors them) the
  agreement and the mean score delta over the shared request ids.

**Contributed checks.** Stages after serving add checks of their own to every canary
check through the extension point :data:`CANARY_CHECKS` (their ``Stage.extends``; the
monitoring stage judges the live metric from labels this way, which serving cannot
import). A contributed check is a callable taking a :class:`CanaryWindow` and returning
``None`` (it does not apply to this deployment) or a mapping::

    {"check": "live_metric", "verdict": "pass" | "fail" | "wait", "reason": "...",
     "measured": 0.031, "threshold": 0.02, "figures": {...}}   # the last three optional

The check judging the spec's ``canary.checks.metric`` answers as :data:`LIVE_METRIC`;
when the spec asks for it and no check answers so (no monitoring stage, or a workspace
without the labels), the check waits rather than promote unjudged.

It runs only when the built-in checks have enough traffic (a ``wait`` stays a ``wait``).
Any ``fail`` fails the check; otherwise any ``wait`` makes it a ``wait`` (so thin data of
a contributed check never promotes, and never rolls back). A check that raises, or
answers something else, counts as ``wait`` with the reason: a broken check must not roll
a good canary back, nor promote an unchecked one.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftline.serving.models import CanaryChecks, Deployment

__all__ = [
    "CANARY_CHECKS",
    "LIVE_METRIC",
    "CanaryCheck",
    "CanaryWindow",
    "VariantFigures",
    "compare_variants",
    "judge",
    "psi",
    "variant_figures",
    "with_contributed",
]

log = logging.getLogger("driftline.serving")

#: The extension point of contributed canary checks (see the module docstring).
CANARY_CHECKS = "serving.canary_checks"
#: The check that judges the spec's ``canary.checks.metric`` answers under this name.
LIVE_METRIC = "live_metric"
_VERDICTS = ("pass", "fail", "wait")

#: Latencies under this count as this much in the p99 ratio (a ratio of two
#: sub-millisecond figures is scheduling noise, not a slower model).
LATENCY_FLOOR_MS = 1.0
_BINS = 10
_EPSILON = 1e-4


@dataclass(frozen=True, slots=True, kw_only=True)
class VariantFigures:
    """What one variant did over a window."""

    variant: str
    requests: int
    server_errors: int
    p50_ms: float | None
    p99_ms: float | None
    versions: tuple[int, ...]

    @property
    def error_rate(self) -> float:
        """Server errors per request (0 with no requests)."""
        return self.server_errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "variant": self.variant,
            "requests": self.requests,
            "server_errors": self.server_errors,
            "error_rate": round(self.error_rate, 6),
            "p50_ms": None if self.p50_ms is None else round(self.p50_ms, 3),
            "p99_ms": None if self.p99_ms is None else round(self.p99_ms, 3),
            "versions": list(self.versions),
        }


def _percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _rows(table: Any) -> list[dict[str, Any]]:
    columns = ["request_id", "variant", "model_version", "status", "latency_ms", "outputs"]
    return table.select(columns).to_pylist()  # type: ignore[no-any-return]


def variant_figures(table: Any) -> dict[str, VariantFigures]:
    """Per variant figures of prediction-log rows (see the module docstring)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in _rows(table):
        grouped.setdefault(row["variant"], []).append(row)
    return {variant: _figures(variant, rows) for variant, rows in sorted(grouped.items())}


def _figures(variant: str, rows: list[dict[str, Any]]) -> VariantFigures:
    answered = [r["latency_ms"] for r in rows if r["status"] < 400]
    return VariantFigures(
        variant=variant,
        requests=len(rows),
        server_errors=sum(r["status"] >= 500 for r in rows),
        p50_ms=_percentile(answered, 0.5),
        p99_ms=_percentile(answered, 0.99),
        versions=tuple(sorted({int(r["model_version"]) for r in rows})),
    )


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif value is not None:
        yield value


def scores(outputs: Iterable[str | None]) -> list[Any]:
    """The prediction values in logged ``outputs`` (JSON), flattened."""
    found: list[Any] = []
    for text in outputs:
        if text:
            found.extend(_leaves(json.loads(text)))
    return found


def psi(reference: Sequence[Any], current: Sequence[Any]) -> float | None:
    """Population stability index of ``current`` against ``reference`` (``None`` when
    either is empty). Strings, booleans and numbers with at most 10 distinct reference
    values are categories; other numbers fall in the reference's deciles."""
    if not reference or not current:
        return None
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in reference)
    numeric = numeric and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in current
    )
    distinct = set(reference) if not numeric else {float(v) for v in reference}
    if not numeric or len(distinct) <= _BINS:
        keys = sorted(set(map(str, reference)) | set(map(str, current)))
        ref_counts = _counts(map(str, reference), keys)
        cur_counts = _counts(map(str, current), keys)
    else:
        ordered = sorted(float(v) for v in reference)
        edges = sorted({ordered[int(len(ordered) * i / _BINS)] for i in range(1, _BINS)})
        ref_counts = _binned(ordered, edges)
        cur_counts = _binned([float(v) for v in current], edges)
    total_ref, total_cur = sum(ref_counts), sum(cur_counts)
    value = 0.0
    for r, c in zip(ref_counts, cur_counts, strict=True):
        p = max(r / total_ref, _EPSILON)
        q = max(c / total_cur, _EPSILON)
        value += (q - p) * math.log(q / p)
    return value


def _counts(values: Iterable[str], keys: list[str]) -> list[int]:
    index = {k: i for i, k in enumerate(keys)}
    counts = [0] * len(keys)
    for v in values:
        counts[index[v]] += 1
    return counts


def _binned(values: Iterable[float], edges: list[float]) -> list[int]:
    import bisect

    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[bisect.bisect_right(edges, v)] += 1
    return counts


def judge(table: Any, checks: CanaryChecks, min_requests: int) -> dict[str, Any]:
    """The canary's verdict over one window of prediction-log rows.

    Returns ``{"verdict": "pass" | "fail" | "wait", "reason", "checks": [...],
    "figures": {variant: {...}}}``; each check is ``{"check", "measured", "threshold",
    "passed"}``.
    """
    rows = [r for r in _rows(table) if r["variant"] in ("stable", "canary")]
    stable_rows = [r for r in rows if r["variant"] == "stable"]
    canary_rows = [r for r in rows if r["variant"] == "canary"]
    stable, canary = _figures("stable", stable_rows), _figures("canary", canary_rows)
    figures = {"stable": stable.to_dict(), "canary": canary.to_dict()}
    if min(stable.requests, canary.requests) < min_requests:
        return {
            "verdict": "wait",
            "reason": f"too little traffic: canary {canary.requests}, stable {stable.requests} "
            f"requests in the window, {min_requests} needed of each",
            "checks": [],
            "figures": figures,
        }
    results = []
    excess = canary.error_rate - stable.error_rate
    results.append(_check("error_rate", excess, checks.error_rate, excess <= checks.error_rate))
    if canary.p99_ms is None or stable.p99_ms is None:
        # No answered request at all on one side: the error-rate check has the verdict.
        results.append(_check("p99_ms_ratio", None, checks.p99_ms_ratio, canary.p99_ms is not None))
    else:
        ratio = max(canary.p99_ms, LATENCY_FLOOR_MS) / max(stable.p99_ms, LATENCY_FLOOR_MS)
        results.append(
            _check("p99_ms_ratio", ratio, checks.p99_ms_ratio, ratio <= checks.p99_ms_ratio)
        )
    shift = psi(
        scores(r["outputs"] for r in stable_rows if r["status"] == 200),
        scores(r["outputs"] for r in canary_rows if r["status"] == 200),
    )
    results.append(
        _check("score_psi", shift, checks.score_psi, shift is None or shift <= checks.score_psi)
    )
    failed = [c["check"] for c in results if not c["passed"]]
    return {
        "verdict": "fail" if failed else "pass",
        "reason": f"failed: {', '.join(failed)}" if failed else "every check passed",
        "checks": results,
        "figures": figures,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryWindow:
    """What a contributed check judges: one canary check's window of a deployment.

    Attributes:
        deployment: The deployment record (its spec holds the checks' settings).
        start: The window's start (inclusive).
        end: The window's end (exclusive).
        canary_version: The canary's version number.
        stable_versions: The versions that answered as stable in the window.
        table: The window's prediction-log rows (every variant, Arrow).
    """

    deployment: Deployment
    start: datetime
    end: datetime
    canary_version: int
    stable_versions: tuple[int, ...]
    table: Any


#: A contributed check: the window in, ``None`` or a result mapping out (module docstring).
CanaryCheck = Callable[[CanaryWindow], Mapping[str, Any] | None]


def with_contributed(
    verdict: dict[str, Any], window: CanaryWindow, checks: Sequence[CanaryCheck]
) -> dict[str, Any]:
    """``verdict`` (of :func:`judge`) with the contributed ``checks`` run and counted."""
    if verdict["verdict"] == "wait":
        return verdict
    results = [r for r in (_run(check, window) for check in checks) if r is not None]
    canary = window.deployment.spec.canary
    wanted = canary is not None and canary.checks.metric is not None
    if wanted and not any(r["check"] == LIVE_METRIC for r in results):
        # Asked for and judged by no one: never promote without it.
        unjudged = "canary.checks.metric is set, but nothing judges it here (the monitoring "
        unjudged += "stage does, in a workspace holding the labels)"
        results.append(_waiting(LIVE_METRIC, unjudged))
    if not results:
        return verdict
    merged = [*verdict["checks"], *results]
    failed = [c["check"] for c in merged if c["passed"] is False]
    waiting = [c for c in results if c["passed"] is None]
    if failed:
        outcome, reason = "fail", f"failed: {', '.join(failed)}"
    elif waiting:
        outcome = "wait"
        reason = "; ".join(f"{c['check']} waits: {c['reason']}" for c in waiting)
    else:
        outcome, reason = "pass", "every check passed"
    return {**verdict, "verdict": outcome, "reason": reason, "checks": merged}


def _run(check: CanaryCheck, window: CanaryWindow) -> dict[str, Any] | None:
    name = getattr(check, "name", None) or getattr(check, "__name__", type(check).__name__)
    try:
        found = check(window)
    except Exception as exc:  # a contributed check's bug must not decide the rollout
        log.warning("canary check %s of %s failed", name, window.deployment.name, exc_info=True)
        return _waiting(str(name), f"the check could not run ({type(exc).__name__}: {exc})")
    if found is None:
        return None
    verdict = found.get("verdict") if isinstance(found, Mapping) else None
    if verdict not in _VERDICTS:
        return _waiting(str(name), f"the check answered {found!r}, not a verdict")
    assert isinstance(found, Mapping)
    result = {
        "check": str(found.get("check") or name),
        "measured": found.get("measured"),
        "threshold": found.get("threshold"),
        "passed": {"pass": True, "fail": False, "wait": None}[verdict],
        "reason": str(found.get("reason") or verdict),
    }
    if found.get("figures") is not None:
        result["figures"] = found["figures"]
    return result


def _waiting(name: str, reason: str) -> dict[str, Any]:
    return {"check": name, "measured": None, "threshold": None, "passed": None, "reason": reason}


def _check(name: str, measured: float | None, threshold: float, passed: bool) -> dict[str, Any]:
    return {
        "check": name,
        "measured": None if measured is None else round(measured, 6),
        "threshold": threshold,
        "passed": bool(passed),
    }


def compare_variants(table: Any) -> dict[str, Any]:
    """Figures per variant, and agreement between variants that answered the same
    requests (see the module docstring)."""
    rows = _rows(table)
    figures = {v: f.to_dict() for v, f in variant_figures(table).items()}
    by_variant: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == 200:
            by_variant.setdefault(row["variant"], {})[row["request_id"]] = row
    pairs = []
    names = sorted(by_variant)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            shared = by_variant[first].keys() & by_variant[second].keys()
            if not shared:
                continue
            same = 0
            deltas: list[float] = []
            for request_id in shared:
                a = scores([by_variant[first][request_id]["outputs"]])
                b = scores([by_variant[second][request_id]["outputs"]])
                same += a == b
                if len(a) == len(b):
                    deltas += [
                        abs(float(x) - float(y))
                        for x, y in zip(a, b, strict=True)
                        if isinstance(x, int | float) and isinstance(y, int | float)
                    ]
            pairs.append(
                {
                    "variants": [first, second],
                    "requests": len(shared),
                    "agreement": round(same / len(shared), 6),
                    "mean_abs_delta": round(sum(deltas) / len(deltas), 6) if deltas else None,
                }
            )
    return {"figures": figures, "pairs": pairs}
