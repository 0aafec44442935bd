"""``retrain.yaml``: one model's retraining policy, read strictly.

Example (``model`` and ``pipeline`` are required; the rest has defaults)::

    model: churn
    deployment: churn
    triggers:
      - drift: {monitor: churn-prod, columns: any, min_share: 0.3}
      - performance: {monitor: churn-prod, metric: roc_auc, below: 0.80, min_label_coverage: 0.5}
      - new_data: {dataset: customers}
      - schedule: {cron: "0 3 * * 0", timezone: Europe/Berlin}
    pipeline: {name: churn_training, params: {dataset: "{trigger.dataset_version}"}}
    evaluate: {data: recent_labelled, window: 14d, fallback: customers@latest, metric: roc_auc}
    gates: gates.yaml
    challenger_must_beat: {metric: roc_auc, by: 0.0, confidence: 0.95}
    approvals: 0
    rollout: canary
    cooldown: 6h
    max_cycles_per_day: 4
    notify: [log, "webhook:https://hooks.example.com/driftline"]
    stuck_after: 1d

Notifications: every outcome of a cycle (``promoted``, ``rejected``, ``rolled_back``,
``failed``, and ``awaiting_approval``: someone has to act) is sent to alert channels
(``log``, ``webhook:<url>``, read by :func:`driftline.core.notify.parse_channel`). By
default these are the channels of the monitors the triggers name, so the people told of
a drift alert hear what came of it; ``notify:`` replaces them (``notify: []`` tells no
one).

What makes each trigger fire (the thresholds of ``drift`` and ``performance``, a new
version for ``new_data``, a due time for ``schedule``) is :mod:`driftline.retraining.triggers`
and :mod:`driftline.retraining.watch`.

``evaluate.min_labels`` (default 100) is how many labelled production rows the
window needs before it is used instead of ``evaluate.fallback``. With ``rollout:
shadow-then-canary``, ``shadow: {min_requests: 50, max_error_rate: 0.0,
min_agreement: 0.0, period: 30m}`` says how long the challenger shadows the champion
(mirrored requests it answered, at most ``period``: fewer requests by then end the cycle
rolled back) and what it must show before its canary starts. A cycle that has not moved
for ``stuck_after`` ends failed (a canary or shadow it left running is ended).

:func:`parse_policy` checks the file's shape (unknown keys, types, ranges,
contradictions) with errors naming the field and its line; the names it refers to
(monitors, pipeline, deployment, datasets) are checked against the workspace by the
service when the policy is applied.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from driftline.core.metric_direction import LOWER_IS_BETTER
from driftline.core.notify import parse_channels
from driftline.core.yamlfile import Located, check_keys, compose, mapping
from driftline.errors import InvalidArgumentError

__all__ = [
    "ROLLOUTS",
    "Evaluate",
    "MustBeat",
    "PipelineCall",
    "RetrainPolicy",
    "ShadowCheck",
    "TriggerRule",
    "load_policy",
    "parse_policy",
    "policy_from_dict",
]

TOP = (
    "model", "deployment", "triggers", "pipeline", "evaluate", "gates",
    "challenger_must_beat", "approvals", "rollout", "cooldown", "max_cycles_per_day", "notify",
    "shadow", "stuck_after",
)  # fmt: skip
#: How an accepted challenger reaches production.
ROLLOUTS = ("canary", "shadow-then-canary", "direct")
#: Each trigger kind and the keys it takes (the first ones are required).
TRIGGER_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "drift": (("monitor",), ("columns", "min_share")),
    "performance": (("monitor", "metric", "below"), ("min_label_coverage",)),
    "new_data": (("dataset",), ()),
    "schedule": (("cron",), ("timezone",)),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
#: ``evaluate.data`` value meaning predictions joined with their labels.
RECENT = "recent_labelled"


@dataclass(frozen=True, slots=True)
class TriggerRule:
    """One trigger: ``kind`` (drift, performance, new_data, schedule) and its settings."""

    kind: str
    settings: dict[str, Any]

    @property
    def monitor(self) -> str | None:
        """The monitor whose alerts fire it (drift and performance triggers)."""
        value = self.settings.get("monitor")
        return str(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class PipelineCall:
    """The pipeline a cycle runs; params may hold ``{trigger.KEY}`` placeholders."""

    name: str
    module: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Evaluate:
    """Where challenger and champion are compared (the same rows for both)."""

    data: str = RECENT  # recent_labelled, or a dataset ref (customers@latest)
    window_seconds: float = 14 * 86400.0
    fallback: str | None = None  # a dataset ref, used when the window has too few labels
    metric: str = "roc_auc"
    target: str = "label"
    min_labels: int = 100


@dataclass(frozen=True, slots=True)
class MustBeat:
    """The challenger's bar: the lower CI bound of (challenger - champion) > ``by``."""

    metric: str
    by: float = 0.0
    confidence: float = 0.95


@dataclass(frozen=True, slots=True)
class ShadowCheck:
    """What the challenger must show as a shadow (``rollout: shadow-then-canary``).

    It shadows until it has answered ``min_requests`` mirrored requests; then its share
    of server errors must be at most ``max_error_rate`` and the share of requests where
    it answered exactly as the champion at least ``min_agreement`` (0: reported only, a
    retrained model is expected to differ). With ``period_seconds``, a shadow that has
    not answered ``min_requests`` by then ends the cycle rolled back (too little traffic
    to judge it); without, only ``stuck_after`` bounds it.
    """

    min_requests: int = 50
    max_error_rate: float = 0.0
    min_agreement: float = 0.0
    period_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class RetrainPolicy:
    """A model's retraining policy (see the module docstring)."""

    model: str
    pipeline: PipelineCall
    deployment: str | None = None
    triggers: tuple[TriggerRule, ...] = ()
    evaluate: Evaluate = field(default_factory=Evaluate)
    gates: Any = None  # a gates file path or mapping (the registry's format)
    challenger_must_beat: MustBeat | None = None
    approvals: int = 0
    rollout: str = "canary"
    cooldown_seconds: float = 6 * 3600.0
    max_cycles_per_day: int = 4
    #: Alert channels told of each outcome; None: those of the triggers' monitors.
    notify: tuple[str, ...] | None = None
    shadow: ShadowCheck = field(default_factory=ShadowCheck)
    #: A cycle whose state has not changed for this long ends failed ("stuck in ...").
    stuck_after_seconds: float = 86400.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form that :func:`policy_from_dict` reads back."""
        out = asdict(self)
        out["triggers"] = [{t.kind: dict(t.settings)} for t in self.triggers]
        evaluate = out.pop("evaluate")
        evaluate["window"] = evaluate.pop("window_seconds")
        out["evaluate"] = evaluate
        out["cooldown"] = out.pop("cooldown_seconds")
        out["stuck_after"] = out.pop("stuck_after_seconds")
        if self.rollout != "shadow-then-canary":
            del out["shadow"]
        else:
            period = out["shadow"].pop("period_seconds")
            if period is not None:
                out["shadow"]["period"] = period
        if out["challenger_must_beat"] is None:
            del out["challenger_must_beat"]
        if out["notify"] is not None:
            out["notify"] = list(out["notify"])
        for key in ("deployment", "gates", "notify"):
            if out[key] is None:
                del out[key]
        if out["pipeline"]["module"] is None:
            del out["pipeline"]["module"]
        return out


def load_policy(path: str | Path) -> RetrainPolicy:
    """Read a ``retrain.yaml`` file (see the module docstring)."""
    file = Path(path)
    if not file.is_file():
        raise InvalidArgumentError(f"Policy file {file} does not exist")
    return parse_policy(file.read_text(encoding="utf-8"), source=file.name)


def parse_policy(text: str, *, source: str = "retrain.yaml") -> RetrainPolicy:
    """Parse YAML text into a :class:`RetrainPolicy`; errors name the field and line."""
    data, at = compose(text, source)
    if not isinstance(data, dict):
        raise at.error("", "a retraining policy is a mapping (model: ..., pipeline: ...)")
    return _policy(data, at)


def policy_from_dict(data: dict[str, Any], *, source: str = "policy") -> RetrainPolicy:
    """The same rules for a dict (a stored policy, ``dl.retraining.apply({...})``)."""
    return _policy(dict(data), Located(source, {}))


def _name(value: Any, field: str, at: Located) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise at.error(
            field, f"{field} must be a name (letters, digits, '_', '.', '-'), got {value!r}"
        )
    return value


def _number(value: Any, field: str, at: Located, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise at.error(field, f"{field} must be a number, got {value!r}")
    if not low <= value <= high:
        raise at.error(field, f"{field} must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _whole(value: Any, field: str, at: Located, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise at.error(field, f"{field} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise at.error(field, f"{field} must be between {low} and {high}, got {value!r}")
    return value


def _duration(value: Any, field: str, at: Located, low: float, high: float) -> float:
    if isinstance(value, bool):
        raise at.error(field, f"{field} must be a duration like 6h or 14d, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise at.error(field, f"{field} must be a duration like 6h or 14d, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not low <= seconds <= high:
        raise at.error(field, f"{field} must be between {low:g}s and {high:g}s, got {value!r}")
    return seconds


def _dataset_ref(value: Any, field: str, at: Located) -> str:
    name, _, tag = str(value).partition("@") if isinstance(value, str) else ("", "", "")
    if not name or not _NAME.match(name) or (tag and not _NAME.match(tag)):
        raise at.error(field, f"{field} must be a dataset ref like customers@latest, got {value!r}")
    return str(value)


def _trigger(raw: Any, i: int, at: Located) -> TriggerRule:
    where = f"triggers[{i}]"
    data = mapping(raw, where, at)
    if len(data) != 1:
        raise at.error(
            where, f"{where} must have one key, the trigger's kind ({', '.join(TRIGGER_KEYS)})"
        )
    kind, settings = next(iter(data.items()))
    if kind not in TRIGGER_KEYS:
        raise at.error(
            f"{where}.{kind}",
            f"unknown trigger kind {kind!r} in {where}; known: {', '.join(TRIGGER_KEYS)}",
        )
    where = f"{where}.{kind}"
    settings = mapping(settings, where, at)
    required, optional = TRIGGER_KEYS[kind]
    check_keys(settings, required + optional, where, at)
    for key in required:
        if key not in settings:
            raise at.error(where, f"{where} needs {key!r}")
    out = dict(settings)
    if "monitor" in out:
        _name(out["monitor"], f"{where}.monitor", at)
    if "dataset" in out:
        _name(out["dataset"], f"{where}.dataset", at)
    if "metric" in out:
        _name(out["metric"], f"{where}.metric", at)
    if "below" in out:
        _number(out["below"], f"{where}.below", at, -1e12, 1e12)
        if out.get("metric") in LOWER_IS_BETTER:
            raise at.error(
                f"{where}.metric",
                f"{where}.metric: {out['metric']} is better when lower, so a `below` "
                "threshold would fire as it improves; watch a metric that is better when "
                "higher (roc_auc, accuracy, f1, r2, ...)",
            )
    for key in ("min_share", "min_label_coverage"):
        if key in out:
            _number(out[key], f"{where}.{key}", at, 0.0, 1.0)
    if "columns" in out:
        columns = out["columns"]
        if columns != "any" and not (
            isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns)
        ):
            raise at.error(
                f"{where}.columns", f"{where}.columns must be 'any' or a list of column names"
            )
    if "cron" in out:
        from driftline.pipelines import parse_cron

        timezone = out.get("timezone", "UTC")
        if not isinstance(timezone, str):
            raise at.error(f"{where}.timezone", f"{where}.timezone must be an IANA name like UTC")
        try:
            parse_cron(str(out["cron"]), "UTC")
        except InvalidArgumentError as exc:
            raise at.error(f"{where}.cron", f"{where}.cron: {exc}") from None
        try:
            parse_cron(str(out["cron"]), timezone)
        except InvalidArgumentError as exc:
            raise at.error(f"{where}.timezone", f"{where}.timezone: {exc}") from None
    return TriggerRule(kind, out)


def _pipeline(raw: Any, at: Located) -> PipelineCall:
    data = mapping(raw, "pipeline", at)
    check_keys(data, ("name", "module", "params"), "pipeline", at)
    if "name" not in data:
        raise at.error("pipeline", "pipeline needs 'name' (the @pipeline to run)")
    module = data.get("module")
    if module is not None and (not isinstance(module, str) or not module):
        raise at.error("pipeline.module", f"pipeline.module must be a module name, got {module!r}")
    params = mapping(data.get("params", {}), "pipeline.params", at)
    return PipelineCall(_name(data["name"], "pipeline.name", at), module, dict(params))


def _evaluate(raw: Any, at: Located) -> Evaluate:
    data = mapping(raw, "evaluate", at)
    keys = ("data", "window", "fallback", "metric", "target", "min_labels")
    check_keys(data, keys, "evaluate", at)
    source = data.get("data", RECENT)
    if source != RECENT:
        source = _dataset_ref(source, "evaluate.data", at)
    fallback = data.get("fallback")
    if fallback is not None:
        fallback = _dataset_ref(fallback, "evaluate.fallback", at)
    return Evaluate(
        data=source,
        window_seconds=_duration(data.get("window", "14d"), "evaluate.window", at, 60, 366 * 86400),
        fallback=fallback,
        metric=_name(data.get("metric", "roc_auc"), "evaluate.metric", at),
        target=_name(data.get("target", "label"), "evaluate.target", at),
        min_labels=_whole(data.get("min_labels", 100), "evaluate.min_labels", at, 1, 10**9),
    )


def _must_beat(raw: Any, at: Located) -> MustBeat:
    where = "challenger_must_beat"
    data = mapping(raw, where, at)
    check_keys(data, ("metric", "by", "confidence"), where, at)
    if "metric" not in data:
        raise at.error(where, f"{where} needs 'metric'")
    confidence = _number(data.get("confidence", 0.95), f"{where}.confidence", at, 0.5, 0.999)
    return MustBeat(
        metric=_name(data["metric"], f"{where}.metric", at),
        by=_number(data.get("by", 0.0), f"{where}.by", at, -1e12, 1e12),
        confidence=confidence,
    )


def _shadow(raw: Any, at: Located) -> ShadowCheck:
    data = mapping(raw, "shadow", at)
    check_keys(data, ("min_requests", "max_error_rate", "min_agreement", "period"), "shadow", at)
    period = data.get("period")
    return ShadowCheck(
        min_requests=_whole(data.get("min_requests", 50), "shadow.min_requests", at, 1, 10**9),
        max_error_rate=_number(data.get("max_error_rate", 0.0), "shadow.max_error_rate", at, 0, 1),
        min_agreement=_number(data.get("min_agreement", 0.0), "shadow.min_agreement", at, 0, 1),
        period_seconds=None
        if period is None
        else _duration(period, "shadow.period", at, 1, 366 * 86400),
    )


def _policy(data: dict[str, Any], at: Located) -> RetrainPolicy:
    check_keys(data, TOP, "", at)
    for key in ("model", "pipeline"):
        if key not in data:
            raise at.error("", f"a retraining policy needs {key!r}")
    raw_triggers = data.get("triggers", [])
    if not isinstance(raw_triggers, list):
        raise at.error("triggers", "triggers must be a list (- drift: {...})")
    triggers = tuple(_trigger(raw, i, at) for i, raw in enumerate(raw_triggers))
    evaluate = _evaluate(data.get("evaluate", {}), at)
    must_beat = (
        _must_beat(data["challenger_must_beat"], at) if "challenger_must_beat" in data else None
    )
    rollout = data.get("rollout", "canary")
    if rollout not in ROLLOUTS:
        raise at.error("rollout", f"rollout must be one of {', '.join(ROLLOUTS)}, got {rollout!r}")
    deployment = data.get("deployment")
    if deployment is not None:
        deployment = _name(deployment, "deployment", at)
    if "shadow" in data and rollout != "shadow-then-canary":
        raise at.error(
            "shadow", f"shadow applies to rollout: shadow-then-canary, not rollout: {rollout}"
        )
    gates = data.get("gates")
    if gates is not None and not isinstance(gates, str | dict):
        raise at.error("gates", f"gates must be a gates file or a mapping, got {gates!r}")
    policy = RetrainPolicy(
        model=_name(data["model"], "model", at),
        pipeline=_pipeline(data["pipeline"], at),
        deployment=deployment,
        triggers=triggers,
        evaluate=evaluate,
        gates=gates,
        challenger_must_beat=must_beat,
        approvals=_whole(data.get("approvals", 0), "approvals", at, 0, 100),
        rollout=rollout,
        cooldown_seconds=_duration(data.get("cooldown", "6h"), "cooldown", at, 0, 30 * 86400),
        max_cycles_per_day=_whole(
            data.get("max_cycles_per_day", 4), "max_cycles_per_day", at, 1, 1440
        ),
        notify=parse_channels(data["notify"], "notify", at)
        if data.get("notify") is not None
        else None,
        shadow=_shadow(data.get("shadow", {}), at),
        stuck_after_seconds=_duration(
            data.get("stuck_after", "1d"), "stuck_after", at, 1, 366 * 86400
        ),
    )
    _contradictions(policy, at)
    return policy


def _contradictions(policy: RetrainPolicy, at: Located) -> None:
    period = policy.shadow.period_seconds
    if period is not None and period >= policy.stuck_after_seconds:
        raise at.error(
            "shadow.period",
            f"shadow.period ({period:g} s) must be shorter than stuck_after "
            f"({policy.stuck_after_seconds:g} s): the cycle would be failed as stuck first",
        )
    if policy.deployment is None:
        raise at.error(
            "",
            f"rollout: {policy.rollout} needs a deployment to roll out through; add "
            "'deployment: NAME' (the deployment serving the model)",
        )
    beat = policy.challenger_must_beat
    if beat is not None and beat.metric != policy.evaluate.metric:
        raise at.error(
            "challenger_must_beat.metric",
            f"challenger_must_beat.metric is {beat.metric!r} but evaluate.metric is "
            f"{policy.evaluate.metric!r}: the challenger is judged on the metric evaluated",
        )
