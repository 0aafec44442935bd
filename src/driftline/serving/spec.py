"""``deploy.yaml``: a deployment's spec, read strictly, with errors naming field and line.

Example (every key but ``name``, ``model`` and ``stable`` is optional)::

    name: churn
    model: churn                 # registered model
    stable: champion             # alias (or a version number)
    canary: {version: challenger, steps: [5, 25, 50, 100], interval: 60s, min_requests: 200,
             max_failed_checks: 3, checks: {error_rate: 0.01, p99_ms_ratio: 1.5, score_psi: 0.2,
             metric: {name: roc_auc, max_drop: 0.02, min_labels: 50}}}   # live metric: labels
    shadow: {version: 7, sample: 1.0}
    batching: {max_batch_size: 64, max_latency_ms: 5}
    prediction_log: {sample: 1.0}
    routing_key: customer_id     # sticky A/B: one entity always sees one variant
    variant_override: false      # whether an X-Variant header may pick the variant
    gates:                       # registry quality gates the canary must pass
      gates: [{metric: auc, min: 0.85}]
    alerts: [log, "webhook:https://hooks.example.com/driftline"]   # told of promotions
                                 # and rollbacks (the monitors' alert channels)

The file is composed into YAML nodes first, so every error says where: ``deploy.yaml
line 4: canary.steps must rise (5, 25, 50, 100), got [25, 5]``. Unknown keys are
errors (a typo never turns a check off). Durations are seconds, or a number with
``ms``, ``s``, ``m`` or ``h``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from driftline.core.notify import parse_channels
from driftline.core.yamlfile import Located as _Located
from driftline.core.yamlfile import check_keys as _check_keys
from driftline.core.yamlfile import compose
from driftline.core.yamlfile import mapping as _mapping
from driftline.errors import InvalidArgumentError
from driftline.serving.models import (
    LIVE_METRICS,
    BatchingPolicy,
    CanaryChecks,
    CanaryPolicy,
    DeploymentSpec,
    LiveMetricCheck,
    ModelTarget,
    ShadowPolicy,
)

__all__ = ["load_spec", "parse_spec", "spec_from_dict", "spec_to_dict"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,127}$")
_FIELD = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")
TOP = (
    "name", "model", "stable", "canary", "shadow", "batching", "prediction_log",
    "routing_key", "variant_override", "gates", "alerts",
)  # fmt: skip


def load_spec(path: str | Path) -> DeploymentSpec:
    """Read a ``deploy.yaml`` file (see the module docstring)."""
    file = Path(path)
    if not file.is_file():
        raise InvalidArgumentError(f"Deployment file {file} does not exist")
    return parse_spec(file.read_text(encoding="utf-8"), source=file.name)


def parse_spec(text: str, *, source: str = "deploy.yaml") -> DeploymentSpec:
    """Parse YAML text into a :class:`DeploymentSpec`; errors name the field and line."""
    data, located = compose(text, source)
    if not isinstance(data, dict):
        raise located.error("", "a deployment file is a mapping (name: ..., model: ...)")
    return _spec(data, located)


def spec_from_dict(data: Mapping[str, Any], *, source: str = "deployment") -> DeploymentSpec:
    """The same rules for a dict (``dl.serving.deploy(...)``, the REST API)."""
    return _spec(dict(data), _Located(source, {}))


def _number(
    value: Any, field: str, at: _Located, *, low: float, high: float, integer: bool = False
) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise at.error(field, f"{field} must be a number, got {value!r}")
    if integer and not isinstance(value, int):
        raise at.error(field, f"{field} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise at.error(field, f"{field} must be between {low:g} and {high:g}, got {value!r}")
    return value


def _duration(value: Any, field: str, at: _Located) -> float:
    if isinstance(value, bool):
        raise at.error(field, f"{field} must be a duration like 60s or 500ms, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise at.error(field, f"{field} must be a duration like 60s or 500ms, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0.01 <= seconds <= 7 * 86400:
        raise at.error(field, f"{field} must be between 10ms and 7 days, got {value!r}")
    return seconds


def _version(value: Any, field: str, at: _Located) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return str(value)
    if isinstance(value, str) and ((value.isdigit() and int(value) >= 1) or _ALIAS.match(value)):
        return value
    raise at.error(field, f"{field} must be an alias or a version number, got {value!r}")


def _text(value: Any, field: str, at: _Located, pattern: re.Pattern[str] = _FIELD) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise at.error(
            field, f"{field} must be a name (letters, digits, '_', '.', '-'), got {value!r}"
        )
    return value


def _canary(raw: Any, at: _Located) -> CanaryPolicy:
    data = _mapping(raw, "canary", at)
    known = ("version", "steps", "interval", "min_requests", "max_failed_checks", "checks")
    _check_keys(data, known, "canary", at)
    if "version" not in data:
        raise at.error("canary", "canary.version is required (an alias or a version number)")
    steps = data.get("steps", [5, 25, 50, 100])
    if not isinstance(steps, list) or not steps:
        raise at.error("canary.steps", f"canary.steps must be a list of percents, got {steps!r}")
    for i, step in enumerate(steps):
        _number(step, f"canary.steps[{i}]", at, low=1, high=100, integer=True)
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise at.error("canary.steps", f"canary.steps must rise, got {steps}")
    checks_raw = _mapping(data.get("checks", {}), "canary.checks", at)
    known_checks = ("error_rate", "p99_ms_ratio", "score_psi", "metric")
    _check_keys(checks_raw, known_checks, "canary.checks", at)
    defaults = CanaryChecks()
    checks = CanaryChecks(
        error_rate=float(
            _number(checks_raw.get("error_rate", defaults.error_rate), "canary.checks.error_rate",
                    at, low=0, high=1)
        ),
        p99_ms_ratio=float(
            _number(checks_raw.get("p99_ms_ratio", defaults.p99_ms_ratio),
                    "canary.checks.p99_ms_ratio", at, low=1, high=1000)
        ),
        score_psi=float(
            _number(checks_raw.get("score_psi", defaults.score_psi), "canary.checks.score_psi",
                    at, low=0, high=100)
        ),
        metric=(
            _live_metric(checks_raw["metric"], at) if checks_raw.get("metric") is not None else None
        ),
    )  # fmt: skip
    return CanaryPolicy(
        version=_version(data["version"], "canary.version", at),
        steps=tuple(int(s) for s in steps),
        interval=_duration(data.get("interval", 60), "canary.interval", at),
        min_requests=int(
            _number(data.get("min_requests", 200), "canary.min_requests", at, low=1,
                    high=10**9, integer=True)
        ),
        max_failed_checks=int(
            _number(data.get("max_failed_checks", 3), "canary.max_failed_checks", at, low=1,
                    high=1000, integer=True)
        ),
        checks=checks,
    )  # fmt: skip


def _live_metric(raw: Any, at: _Located) -> LiveMetricCheck:
    where = "canary.checks.metric"
    data = _mapping(raw, where, at)
    _check_keys(data, ("name", "max_drop", "min_labels"), where, at)
    name = data.get("name")
    if name not in LIVE_METRICS:
        raise at.error(
            f"{where}.name",
            f"{where}.name must be one of {', '.join(LIVE_METRICS)}, got {name!r}",
        )
    defaults = LiveMetricCheck(name=name)
    max_drop = _number(data.get("max_drop", defaults.max_drop), f"{where}.max_drop", at,
                       low=0, high=1e9)  # fmt: skip
    min_labels = _number(data.get("min_labels", defaults.min_labels), f"{where}.min_labels",
                         at, low=1, high=10**9, integer=True)  # fmt: skip
    return LiveMetricCheck(name=name, max_drop=float(max_drop), min_labels=int(min_labels))


def _shadow(raw: Any, at: _Located) -> ShadowPolicy:
    data = _mapping(raw, "shadow", at)
    _check_keys(data, ("version", "sample"), "shadow", at)
    if "version" not in data:
        raise at.error("shadow", "shadow.version is required (an alias or a version number)")
    sample = _number(data.get("sample", 1.0), "shadow.sample", at, low=0, high=1)
    return ShadowPolicy(version=_version(data["version"], "shadow.version", at), sample=sample)


def _batching(raw: Any, at: _Located) -> BatchingPolicy:
    data = _mapping(raw, "batching", at)
    _check_keys(data, ("max_batch_size", "max_latency_ms"), "batching", at)
    size = _number(data.get("max_batch_size", 64), "batching.max_batch_size", at, low=1,
                   high=100_000, integer=True)  # fmt: skip
    wait = _number(data.get("max_latency_ms", 5), "batching.max_latency_ms", at, low=0,
                   high=10_000)  # fmt: skip
    return BatchingPolicy(max_batch_size=int(size), max_latency_ms=float(wait))


def _spec(data: dict[str, Any], at: _Located) -> DeploymentSpec:
    _check_keys(data, TOP, "", at)
    for required in ("name", "model", "stable"):
        if data.get(required) in (None, ""):
            raise at.error("", f"{required!r} is required")
    name = _text(data["name"], "name", at)
    model = _text(data["model"], "model", at)
    try:
        ModelTarget(name=model, version=1)
        ModelTarget.parse(f"{model}/1")
    except InvalidArgumentError as exc:
        raise at.error("model", str(exc)) from None
    log = _mapping(data.get("prediction_log", {}), "prediction_log", at)
    _check_keys(log, ("sample",), "prediction_log", at)
    log_sample = float(_number(log.get("sample", 1.0), "prediction_log.sample", at, low=0, high=1))
    canary = _canary(data["canary"], at) if data.get("canary") is not None else None
    if canary is not None and log_sample == 0:
        raise at.error(
            "prediction_log.sample",
            "a canary is judged on the prediction log: prediction_log.sample must be above 0",
        )
    routing_key = data.get("routing_key")
    override = data.get("variant_override", False)
    if not isinstance(override, bool):
        raise at.error(
            "variant_override", f"variant_override must be true or false, got {override!r}"
        )
    gates = data.get("gates")
    if gates is not None:
        _check_gates(gates, at)
    optional: dict[str, Callable[[Any, _Located], Any]] = {"shadow": _shadow, "batching": _batching}
    parts = {
        key: parse(data[key], at) for key, parse in optional.items() if data.get(key) is not None
    }
    return DeploymentSpec(
        name=name,
        model=model,
        stable=_version(data["stable"], "stable", at),
        canary=canary,
        log_sample=log_sample,
        routing_key=None if routing_key is None else _text(routing_key, "routing_key", at),
        variant_override=override,
        gates=gates,
        alerts=parse_channels(data["alerts"], "alerts", at)
        if data.get("alerts") is not None
        else (),
        **parts,
    )


def _check_gates(gates: Any, at: _Located) -> None:
    """Parse the gates with the registry's own parser now, so a typo fails at apply."""
    from driftline.registry import parse_gates

    if not isinstance(gates, dict):
        raise at.error("gates", "gates must be a mapping (the structure of a gates file)")
    try:
        parse_gates(gates)
    except InvalidArgumentError as exc:
        raise at.error("gates", f"gates: {exc}") from None


def spec_to_dict(spec: DeploymentSpec) -> dict[str, Any]:
    """The ``deploy.yaml`` structure of a spec (``spec_from_dict`` reads it back equal)."""
    data: dict[str, Any] = {"name": spec.name, "model": spec.model, "stable": spec.stable}
    if spec.canary is not None:
        c = spec.canary
        data["canary"] = {
            "version": c.version, "steps": list(c.steps), "interval": c.interval,
            "min_requests": c.min_requests, "max_failed_checks": c.max_failed_checks,
            "checks": {"error_rate": c.checks.error_rate, "p99_ms_ratio": c.checks.p99_ms_ratio,
                       "score_psi": c.checks.score_psi},
        }  # fmt: skip
        if c.checks.metric is not None:
            m = c.checks.metric
            data["canary"]["checks"]["metric"] = {
                "name": m.name, "max_drop": m.max_drop, "min_labels": m.min_labels,
            }  # fmt: skip
    if spec.shadow is not None:
        data["shadow"] = {"version": spec.shadow.version, "sample": spec.shadow.sample}
    if spec.batching is not None:
        data["batching"] = {
            "max_batch_size": spec.batching.max_batch_size,
            "max_latency_ms": spec.batching.max_latency_ms,
        }
    data["prediction_log"] = {"sample": spec.log_sample}
    if spec.routing_key is not None:
        data["routing_key"] = spec.routing_key
    data["variant_override"] = spec.variant_override
    if spec.gates is not None:
        data["gates"] = spec.gates
    if spec.alerts:
        data["alerts"] = list(spec.alerts)
    return data
