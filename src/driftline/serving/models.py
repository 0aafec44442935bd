"""Serving records: what is served (:class:`ModelTarget`), how (:class:`ServingOptions`),
what answers now (:class:`ServedVersion`) and what a hot swap did (:class:`SwapEvent`).

A served model is always a *variant* of a *deployment*. ``driftline serve churn@champion``
serves one variant (``stable``) of a deployment named after the model. A deployment
record (:class:`Deployment`: its :class:`DeploymentSpec` from ``deploy.yaml`` and the
state of its :class:`Rollout`) adds a canary and a shadow; ``driftline serve
--deployment churn`` serves it, following the record as it changes.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from driftline.errors import InvalidArgumentError

__all__ = [
    "LIVE_METRICS",
    "BatchingPolicy",
    "CanaryChecks",
    "CanaryPolicy",
    "Deployment",
    "DeploymentSpec",
    "LiveMetricCheck",
    "ModelTarget",
    "Rollout",
    "RolloutState",
    "ScoringResult",
    "ServedVersion",
    "ServingOptions",
    "ShadowPolicy",
    "SwapEvent",
    "Variant",
    "is_request_id",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,127}$")
# A request id a client may choose (X-Request-ID, an inference protocol's id): it is
# logged, answered in a header and looked up by `driftline trace`.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def is_request_id(text: str) -> bool:
    """Whether ``text`` is a request id serving accepts from a client (1-128 of
    letters, digits, ``.``, ``_``, ``:``, ``-``); serving answers any other with an id
    of its own (a UUIDv7)."""
    return _REQUEST_ID.fullmatch(text) is not None


class Variant(StrEnum):
    """Which part of a deployment's traffic a model answers."""

    STABLE = "stable"
    CANARY = "canary"
    SHADOW = "shadow"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelTarget:
    """A registered model to serve: a fixed version, or an alias that may move.

    Example:
        >>> ModelTarget.parse("models:/churn@champion").alias
        'champion'
        >>> ModelTarget.parse("churn/3").ref
        'churn/3'
    """

    name: str
    version: int | None = None
    alias: str | None = None

    def __post_init__(self) -> None:
        if (self.version is None) == (self.alias is None):
            raise InvalidArgumentError("A model target names a version or an alias, not both")

    @classmethod
    def parse(cls, text: str) -> ModelTarget:
        """``churn@champion``, ``churn/3``, ``models:/churn@champion``, ``models:/churn/3``."""
        if not isinstance(text, str):
            raise InvalidArgumentError(f"A model reference is a string, got {text!r}")
        ref = text.strip().removeprefix("models:/")
        name, at, alias = ref.partition("@")
        if not at:
            name, slash, number = ref.partition("/")
            if not slash or not number.isdigit():
                raise InvalidArgumentError(
                    f"Cannot serve {text!r}: name a registered model's alias or version, "
                    "e.g. churn@champion, churn/3 or models:/churn@champion"
                )
        if not _NAME.match(name):
            raise InvalidArgumentError(
                f"Invalid model name {name!r} in {text!r}: use letters, digits, '_', '.', '-'"
            )
        if at:
            if not _ALIAS.match(alias):
                raise InvalidArgumentError(f"Invalid alias {alias!r} in {text!r}")
            return cls(name=name, alias=alias)
        return cls(name=name, version=int(number))

    @property
    def ref(self) -> str:
        """``churn@champion`` or ``churn/3``: what the registry resolves."""
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}/{self.version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchingPolicy:
    """Micro-batching: coalesce requests up to ``max_batch_size`` rows or ``max_latency_ms``."""

    max_batch_size: int = 64
    max_latency_ms: float = 5.0

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise InvalidArgumentError("max_batch_size must be at least 1")
        if not 0 <= self.max_latency_ms <= 10_000:
            raise InvalidArgumentError("max_latency_ms must be between 0 and 10000")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingOptions:
    """How one serving process serves a model (every worker reads the same options).

    Attributes:
        target: The registered model (and version or alias) to serve.
        deployment: The name requests and the prediction log are filed under (default:
            the model's name).
        variant: The variant this model answers as.
        auth: Require the workspace's bearer tokens on the predict routes.
        batching: Micro-batching, or ``None`` to predict each request on its own.
        log_sample: The share of requests written to the prediction log (0 turns it off).
        timeout_ms: A request not answered within this is shed with 503 + ``Retry-After``.
        max_rows: The most rows one request may carry (more: 413).
        max_body: The largest request body in bytes (larger: 413).
        max_queue: Requests that may wait for the model at once (more: 503).
        poll_interval: Seconds between looks at the registry for an alias move.
        log_flush_rows: The prediction log writes a file once this many rows wait...
        log_flush_seconds: ... or once the oldest waiting row is this old.
        log_capacity: Rows the prediction log holds in memory; beyond, rows are dropped
            (and counted), never waited for.
        follow_deployment: Serve the deployment record named ``deployment`` (its
            variants, weights and rollout) and follow it as it changes; ``target`` is
            then its stable variant at start-up.
        shadow_capacity: Requests waiting to be mirrored to the shadow; beyond, they are
            dropped (and counted).
    """

    target: ModelTarget
    deployment: str = ""
    variant: Variant = Variant.STABLE
    auth: bool = False
    batching: BatchingPolicy | None = None
    log_sample: float = 1.0
    timeout_ms: float = 5000.0
    max_rows: int = 10_000
    max_body: int = 16 * 1024 * 1024
    max_queue: int = 512
    poll_interval: float = 1.0
    log_flush_rows: int = 5_000
    log_flush_seconds: float = 2.0
    log_capacity: int = 100_000
    follow_deployment: bool = False
    shadow_capacity: int = 1_000

    def __post_init__(self) -> None:
        if not self.deployment:
            object.__setattr__(self, "deployment", self.target.name)
        if not _NAME.match(self.deployment):
            raise InvalidArgumentError(
                f"Invalid deployment name {self.deployment!r}: use letters, digits, '_', '.', '-'"
            )
        if not 0.0 <= self.log_sample <= 1.0:
            raise InvalidArgumentError("log_sample must be between 0 and 1")
        for name in ("timeout_ms", "max_rows", "max_body", "max_queue", "poll_interval"):
            if getattr(self, name) <= 0:
                raise InvalidArgumentError(f"{name} must be positive")

    def to_json(self) -> str:
        """The options as JSON (how the parent process hands them to its workers)."""
        data = dataclasses.asdict(self)
        data["variant"] = str(self.variant)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ServingOptions:
        """The options :meth:`to_json` wrote."""
        data = json.loads(text)
        data["target"] = ModelTarget(**data["target"])
        data["variant"] = Variant(data["variant"])
        if data.get("batching") is not None:
            data["batching"] = BatchingPolicy(**data["batching"])
        return cls(**data)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedVersion:
    """The registered version a serving process answers with right now."""

    name: str
    version: int
    flavor: str
    loaded_at: datetime
    alias: str | None = None

    @property
    def ref(self) -> str:
        """``churn/3``."""
        return f"{self.name}/{self.version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SwapEvent:
    """One attempt to follow an alias move: swapped in, or refused (the old one kept)."""

    at: datetime
    version: int
    previous_version: int | None
    ok: bool
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the ``/status`` route and the OIP metadata show it)."""
        return {
            "at": self.at.isoformat(),
            "version": self.version,
            "previous_version": self.previous_version,
            "ok": self.ok,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoringResult:
    """What a batch scoring (``driftline predict``) did, and the run that records it."""

    model: str  # the version that scored: ``churn/3``
    input: str  # a dataset version ref (``customers@7``) or a file path
    output: str
    rows: int
    seconds: float
    run_id: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``driftline predict --json``)."""
        return {
            "model": self.model,
            "input": self.input,
            "output": self.output,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds, 1) if self.seconds else None,
            "run_id": self.run_id,
        }


class RolloutState(StrEnum):
    """Where a deployment's rollout is.

    ``stable``: no canary, all traffic to stable. ``progressing``: the canary takes
    ``steps[step]`` percent and is checked every ``interval``. ``paused``: the same
    split, no checks and no steps until resumed. ``promoted``: the canary passed every
    step and is now stable. ``rolled_back``: the canary failed (or was rolled back by
    hand) and takes no traffic.
    """

    STABLE = "stable"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


#: The states of a rollout whose canary is live (it takes traffic and may still move).
ACTIVE_ROLLOUT_STATES = frozenset({RolloutState.PROGRESSING, RolloutState.PAUSED})


#: The metrics a live-metric check may name: monitoring computes them from the labels of
#: the canary's and stable's requests (serving cannot import monitoring, so the names are
#: listed here too, and a test pins them to monitoring's).
LIVE_METRICS = (
    "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "calibration_error",
    "mae", "rmse", "mape", "r2",
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveMetricCheck:
    """The canary's live metric against stable's, from the labels of their requests.

    Attributes:
        name: The metric (:data:`LIVE_METRICS`), computed by the monitoring stage.
        max_drop: The most the canary's metric may be worse than stable's (lower for
            accuracy or ROC AUC, higher for log loss or RMSE), in the metric's units.
        min_labels: Labelled requests each variant needs in the window; with fewer the
            check waits (thin labels never promote and never roll back).
    """

    name: str
    max_drop: float = 0.02
    min_labels: int = 50

    def __post_init__(self) -> None:
        if self.name not in LIVE_METRICS:
            raise InvalidArgumentError(
                f"Unknown live metric {self.name!r}; known: {', '.join(LIVE_METRICS)}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryChecks:
    """What a canary must keep to pass a check, compared with stable over the same window.

    Attributes:
        error_rate: The most the canary's share of server errors (status >= 500) may
            exceed stable's.
        p99_ms_ratio: The most the canary's p99 latency may be, as a multiple of
            stable's (latencies under 1 ms count as 1 ms: the ratio of two
            sub-millisecond figures is noise).
        score_psi: The most the population stability index of the canary's predictions
            may be against stable's.
        metric: The live metric, once labels exist (``None``: not checked). Judged by
            a check the monitoring stage contributes (see :mod:`driftline.serving.analysis`).
    """

    error_rate: float = 0.01
    p99_ms_ratio: float = 1.5
    score_psi: float = 0.2
    metric: LiveMetricCheck | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryPolicy:
    """A canary's rollout: the version, its traffic steps, and how each step is checked.

    Attributes:
        version: The canary: an alias or a version number (resolved to a number when
            the deployment is applied: what passed the gates is what is served).
        steps: Percent of traffic at each step, rising; the last passed step promotes.
        interval: Seconds between checks.
        min_requests: Requests each of canary and stable must have answered in a
            check's window; fewer means wait (never promote on thin data).
        max_failed_checks: Consecutive failed checks that roll the canary back.
        checks: The thresholds.
    """

    version: str
    steps: tuple[int, ...] = (5, 25, 50, 100)
    interval: float = 60.0
    min_requests: int = 200
    max_failed_checks: int = 3
    checks: CanaryChecks = CanaryChecks()


@dataclass(frozen=True, slots=True, kw_only=True)
class ShadowPolicy:
    """A shadow: a version mirrored a share (``sample``) of the requests, asynchronously."""

    version: str
    sample: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentSpec:
    """What ``deploy.yaml`` declares (see :mod:`driftline.serving.spec`).

    Attributes:
        name: The deployment's name.
        model: The registered model.
        stable: The stable variant: an alias (followed as it moves) or a version number.
        canary: The canary and its rollout, if any.
        shadow: The shadow, if any.
        batching: Micro-batching, or ``None``.
        log_sample: The share of requests written to the prediction log.
        routing_key: The input field whose value picks the variant (sticky A/B); the
            ``X-Routing-Key`` header wins over it.
        variant_override: Whether an ``X-Variant`` header may pick the variant.
        gates: Registry quality gates (the structure of a gates file) the canary must
            pass to be deployed, and again to be promoted.
        alerts: Alert channels (``log``, ``webhook:<url>``) told when a canary is
            promoted or rolled back (see :func:`driftline.core.notify.parse_channel`).
    """

    name: str
    model: str
    stable: str
    canary: CanaryPolicy | None = None
    shadow: ShadowPolicy | None = None
    batching: BatchingPolicy | None = None
    log_sample: float = 1.0
    routing_key: str | None = None
    variant_override: bool = False
    gates: dict[str, Any] | None = None
    alerts: tuple[str, ...] = ()

    @property
    def stable_alias(self) -> str | None:
        """The alias the stable variant follows, or ``None`` when it is pinned to a
        version number (``stable: 3``)."""
        return None if self.stable.isdigit() else self.stable

    @property
    def stable_target(self) -> ModelTarget:
        """The stable variant as a model target."""
        return version_target(self.model, self.stable)


def version_target(model: str, version: str) -> ModelTarget:
    """``("churn", "champion")`` -> ``churn@champion``; ``("churn", "3")`` -> ``churn/3``."""
    if version.isdigit():
        return ModelTarget(name=model, version=int(version))
    return ModelTarget.parse(f"{model}@{version}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollout:
    """The state of a deployment's rollout (every serving process reads the same one).

    Attributes:
        state: See :class:`RolloutState`.
        step: Index into the canary's ``steps``.
        canary_version: The canary's version number (resolved at apply).
        shadow_version: The shadow's version number (resolved at apply).
        failed_checks: Consecutive failed checks.
        window_start: The start of the window the next check looks at.
        next_check_at: When the next check is due.
        last_check: The latest check's figures and verdict (JSON).
        message: What happened last, for people.
    """

    state: RolloutState
    step: int = 0
    canary_version: int | None = None
    shadow_version: int | None = None
    failed_checks: int = 0
    window_start: datetime | None = None
    next_check_at: datetime | None = None
    last_check: dict[str, Any] | None = None
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """A deployment record: its spec and its rollout.

    ``generation`` grows by one with every change; changes are compare-and-set on it,
    so two processes never both drive one step.
    """

    spec: DeploymentSpec
    rollout: Rollout
    generation: int
    created_at: datetime
    updated_at: datetime
    updated_by: str

    @property
    def name(self) -> str:
        """The deployment's name."""
        return self.spec.name

    @property
    def canary_weight(self) -> int:
        """Percent of traffic the canary takes now (0 when there is none)."""
        canary = self.spec.canary
        if canary is None or self.rollout.state not in (
            RolloutState.PROGRESSING,
            RolloutState.PAUSED,
        ):
            return 0
        return canary.steps[min(self.rollout.step, len(canary.steps) - 1)]

    def targets(self) -> dict[Variant, ModelTarget]:
        """What each variant serves now (a canary only while it takes traffic)."""
        found = {Variant.STABLE: self.spec.stable_target}
        if self.canary_weight and self.rollout.canary_version is not None:
            found[Variant.CANARY] = ModelTarget(
                name=self.spec.model, version=self.rollout.canary_version
            )
        if self.spec.shadow is not None and self.rollout.shadow_version is not None:
            found[Variant.SHADOW] = ModelTarget(
                name=self.spec.model, version=self.rollout.shadow_version
            )
        return found
