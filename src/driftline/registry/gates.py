"""Quality gates: the checks a version must pass before it takes an alias.

A gate file (YAML, or the same structure as a dict)::

    evaluation: {data: customers@7, target: churned}   # default: the version's latest evaluation
    gates:
      - {metric: auc, min: 0.85}
      - {metric: auc, max_regression: 0.01}   # vs the alias's holder, on the same rows
      - {metric: rmse, max: 4.2}
      - {latency_p99_ms: 20}                  # predict() on one row of the input example
      - {signature: compatible}               # with the current holder
      - {data_validation: passed}             # evaluation data vs the training data's schema

The latency gate compares the median of 5 rounds' p99 (each up to 200 timed calls or
0.2 s, after 10 warm-up calls, garbage collection paused) with its threshold, so one
disturbed round on a busy machine cannot flip it; see :mod:`driftline.registry.latency`.

Parsing is strict: an unknown metric or gate key is an error that lists the known ones,
so a typo can never silently turn a gate off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftline.core.metric_direction import HIGHER_IS_BETTER
from driftline.errors import InvalidArgumentError
from driftline.registry.evaluation import canonical_metric

__all__ = ["Gate", "GateSpec", "parse_gates"]

GATE_KINDS = (
    "metric (with min, max or max_regression)",
    "latency_p99_ms",
    "signature: compatible",
    "data_validation: passed",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Gate:
    """One parsed gate."""

    kind: str  # "min", "max", "max_regression", "latency", "signature", "data_validation"
    metric: str | None = None
    threshold: float | None = None

    def describe(self) -> str:
        """A short name for reports: ``roc_auc >= 0.85``."""
        if self.kind == "min":
            return f"{self.metric} >= {self.threshold}"
        if self.kind == "max":
            return f"{self.metric} <= {self.threshold}"
        if self.kind == "max_regression":
            return f"{self.metric} regression <= {self.threshold}"
        if self.kind == "latency":
            return f"latency p99 <= {self.threshold} ms"
        return "signature compatible" if self.kind == "signature" else "data validation passed"

    @property
    def higher_is_better(self) -> bool:
        """Direction of the gate's metric."""
        return HIGHER_IS_BETTER[self.metric or "roc_auc"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GateSpec:
    """Where gate metrics come from and the gates themselves."""

    data: str | None = None
    target: str | None = None
    gates: tuple[Gate, ...] = field(default_factory=tuple)


def parse_gates(spec: str | Path | Mapping[str, Any]) -> GateSpec:
    """Read a gate file or dict; raise a clear error for anything unknown."""
    if isinstance(spec, str | Path):
        import yaml

        path = Path(spec)
        if not path.is_file():
            raise InvalidArgumentError(f"Gate file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InvalidArgumentError(f"Gate file {path} is not valid YAML: {exc}") from exc
        spec = loaded if isinstance(loaded, Mapping) else {}
    unknown = set(spec) - {"evaluation", "gates"}
    if unknown:
        raise InvalidArgumentError(
            f"Unknown key(s) {', '.join(sorted(unknown))} in gates; use 'evaluation' and 'gates'"
        )
    evaluation = spec.get("evaluation") or {}
    if not isinstance(evaluation, Mapping) or set(evaluation) - {"data", "target"}:
        raise InvalidArgumentError("'evaluation' takes {data: <dataset ref>, target: <column>}")
    if bool(evaluation.get("data")) != bool(evaluation.get("target")):
        raise InvalidArgumentError("'evaluation' needs both data and target")
    raw_gates = spec.get("gates") or []
    if not isinstance(raw_gates, list):
        raise InvalidArgumentError("'gates' must be a list")
    return GateSpec(
        data=evaluation.get("data"),
        target=evaluation.get("target"),
        gates=tuple(_parse_gate(g) for g in raw_gates),
    )


def _parse_gate(raw: Any) -> Gate:
    if not isinstance(raw, Mapping):
        raise InvalidArgumentError(f"A gate must be a mapping, got {raw!r}")
    if "metric" in raw:
        metric = canonical_metric(str(raw["metric"]))
        bounds = [k for k in ("min", "max", "max_regression") if k in raw]
        extra = set(raw) - {"metric", "min", "max", "max_regression"}
        if len(bounds) != 1 or extra:
            raise InvalidArgumentError(
                f"Metric gate {dict(raw)} needs exactly one of min, max, max_regression"
            )
        return Gate(kind=bounds[0], metric=metric, threshold=_number(raw[bounds[0]], bounds[0]))
    if set(raw) == {"latency_p99_ms"}:
        return Gate(kind="latency", threshold=_number(raw["latency_p99_ms"], "latency_p99_ms"))
    if dict(raw) == {"signature": "compatible"}:
        return Gate(kind="signature")
    if dict(raw) == {"data_validation": "passed"}:
        return Gate(kind="data_validation")
    raise InvalidArgumentError(f"Unknown gate {dict(raw)}; gates are: {', '.join(GATE_KINDS)}")


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be a number, got {value!r}") from None
