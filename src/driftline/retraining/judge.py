"""Judging a challenger: the rows, the paired comparison with the champion, the gates.

The rows (``evaluate.data``):

- ``recent_labelled``: the deployment's served rows of the last ``evaluate.window``
  that have labels (predictions joined with labels, as monitoring joins them:
  :meth:`MonitoringService.labelled_rows`), when there are at least
  ``evaluate.min_labels`` of them; else ``evaluate.fallback`` (a dataset version), and
  the report says how many labelled rows there were;
- a dataset ref: that dataset version (pinned when judged, so the report names the
  exact rows).

Both models are scored on those same rows by the registry's ``compare_models``
(paired bootstrap CIs of the difference); the challenger must beat the champion
(``challenger_must_beat``), then pass the policy's gates (the registry's gate code,
with the champion, the holder of the deployment's stable alias, as the baseline, on
the same rows unless the gates name their own). Nothing here changes any record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from driftline.core.clock import utcnow
from driftline.errors import DriftlineError
from driftline.retraining.policy import RECENT, RetrainPolicy

if TYPE_CHECKING:
    from driftline.retraining.loop import Retrainer

__all__ = ["EvaluationRows", "Judgement", "JudgingError", "judge"]


class JudgingError(Exception):
    """The challenger could not be judged (the message says why); the cycle fails."""


@dataclass(frozen=True, slots=True)
class EvaluationRows:
    """The rows both models are scored on, and where they came from."""

    data: Any  # a pinned dataset ref, or a DataFrame of labelled production rows
    name: str  # customers@3, or recent_labelled:churn (last 14d)
    source: str  # recent_labelled, fallback or dataset
    note: str  # why this source


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict: ``accepted``, ``rejected`` (by the comparison) or ``gated`` (by a
    gate), the report to store, and the reason for a rejection."""

    verdict: str
    report: dict[str, Any]
    reason: str | None = None


def judge(
    loop: Retrainer, policy: RetrainPolicy, champion: str, alias: str, version: int, ws: Any
) -> Judgement:
    """Compare ``model/version`` with ``champion`` and run the gates (module docstring).

    Raises:
        JudgingError: No rows to judge on, a model that cannot be loaded or scored, a
            metric that cannot be computed.
    """
    from driftline.registry import compare_models

    rows = evaluation_rows(loop, policy, ws)
    evaluate = policy.evaluate
    challenger = f"{policy.model}/{version}"
    beat = policy.challenger_must_beat
    try:
        comparison = compare_models(
            [champion, challenger], data=rows.data, target=evaluate.target,
            confidence=beat.confidence if beat else 0.95, workspace=ws,
        )  # fmt: skip
    except Exception as exc:  # a model's own code may raise anything while it loads
        raise JudgingError(
            f"comparing {challenger} with {champion} on {rows.name} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    found = {m.metric: m for m in comparison.metrics}
    metric = found.get(evaluate.metric)
    if metric is None or metric.differences[1] is None:
        raise JudgingError(
            f"metric {evaluate.metric!r} could not be computed (have: {', '.join(found)})"
        )
    sign = 1.0 if metric.higher_is_better else -1.0
    gain = sign * float(metric.differences[1])
    low, high = metric.ci_low[1], metric.ci_high[1]
    bound = (low if metric.higher_is_better else high) if beat else metric.differences[1]
    margin = beat.by if beat else 0.0
    passed = bound is not None and sign * float(bound) > margin
    report: dict[str, Any] = {
        "data": rows.name,
        "data_source": rows.source,
        "data_note": rows.note,
        "rows": comparison.rows,
        "champion": champion,
        "challenger": challenger,
        "metric": evaluate.metric,
        "champion_value": metric.values[0],
        "challenger_value": metric.values[1],
        "gain": gain,
        "ci": [low, high],
        "confidence": comparison.confidence,
        "must_beat_by": margin,
        "verdict": "accepted" if passed else "rejected",
    }
    if not passed:
        return Judgement(
            "rejected", report,
            f"{challenger} did not beat {champion} on {evaluate.metric} by more than "
            f"{margin:g} at {comparison.confidence:.0%} confidence (gain {gain:+.4f}, CI "
            f"{_num(low)} to {_num(high)}); the champion stays",
        )  # fmt: skip
    if policy.gates is None:
        return Judgement("accepted", report)
    return _gated(loop, policy, alias, version, rows, report, ws)


def _gated(
    loop: Retrainer,
    policy: RetrainPolicy,
    alias: str,
    version: int,
    rows: EvaluationRows,
    report: dict[str, Any],
    ws: Any,
) -> Judgement:
    from driftline.models import ModelCache
    from driftline.registry import GateFailedError, check_gates

    try:
        checked = check_gates(
            loop.registry, policy.model, version, alias, gates=policy.gates,
            cache=ModelCache.of(ws.settings), data=rows.data, target=policy.evaluate.target,
        )  # fmt: skip
    except GateFailedError as exc:
        report = {**report, "verdict": "gated", "gates": _gates(exc.report)}
        return Judgement("gated", report, f"{exc}; the champion stays")
    except Exception as exc:  # as the comparison: a model that fails to load or predict
        raise JudgingError(f"checking the gates of {policy.model}/{version} failed: {exc}") from exc
    return Judgement("accepted", {**report, "gates": _gates(checked)})


def _gates(report: Any) -> list[dict[str, Any]]:
    return [
        {"gate": g.gate, "passed": g.passed, "measured": g.measured,
         "threshold": g.threshold, "detail": g.message}
        for g in report.gates
    ]  # fmt: skip


def evaluation_rows(loop: Retrainer, policy: RetrainPolicy, ws: Any) -> EvaluationRows:
    """The rows to judge on (module docstring).

    Raises:
        JudgingError: Too few labelled rows and no fallback, or a dataset that is gone.
    """
    evaluate = policy.evaluate
    if evaluate.data != RECENT:
        pinned = _pinned(ws, evaluate.data)
        return EvaluationRows(pinned, pinned, "dataset", "the policy's evaluate.data")
    assert policy.deployment is not None  # parse_policy requires it
    window = _duration(evaluate.window_seconds)
    try:
        frame = loop.monitoring.labelled_rows(
            policy.deployment,
            since=utcnow() - timedelta(seconds=evaluate.window_seconds),
            target=evaluate.target,
        )
        labelled, why = len(frame), ""
    except DriftlineError as exc:  # no prediction log here (a remote workspace): no rows
        frame, labelled, why = None, 0, f" ({exc})"
    if frame is not None and labelled >= evaluate.min_labels:
        return EvaluationRows(
            frame, f"recent_labelled:{policy.deployment} (last {window})", "recent_labelled",
            f"{labelled} labelled production rows of deployment {policy.deployment} in the "
            f"last {window} (evaluate.min_labels: {evaluate.min_labels})",
        )  # fmt: skip
    short = (
        f"only {labelled} labelled production rows of deployment {policy.deployment} in the "
        f"last {window}{why}, {evaluate.min_labels} needed (evaluate.min_labels)"
    )
    if evaluate.fallback is None:
        raise JudgingError(f"{short}, and no evaluate.fallback dataset is set")
    pinned = _pinned(ws, evaluate.fallback)
    return EvaluationRows(pinned, pinned, "fallback", f"{short}: the fallback dataset")


def _pinned(ws: Any, ref: str) -> str:
    try:
        return str(ws.data.get(ref).ref)
    except DriftlineError as exc:
        raise JudgingError(f"the evaluation dataset {ref} cannot be read: {exc}") from exc


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"
