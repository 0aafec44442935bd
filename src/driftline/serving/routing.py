"""Routing among a deployment's variants in one serving process, and the shadow mirror.

:class:`Router` holds a :class:`Routes` snapshot: the deployment record it was built
from and one :class:`~driftline.serving.service.ModelSlot` per variant. A request reads
``router.current`` once, so it routes and predicts with one consistent snapshot; a
refresh builds a new snapshot and swaps it in with one assignment.

``driftline serve --deployment churn``: every ``poll_interval`` the router reads the
record (one indexed row); a variant whose target changed (a new canary, a promotion to
a version number, a removed shadow) gets a new slot, loaded, verified and warmed in the
refresh thread before the snapshot that uses it is swapped in. A version that fails to
load is not retried until the record names another; its variant takes no traffic
meanwhile (a canary's share goes to stable). Aliases are followed as in ``driftline
serve churn@champion``. Every process reads the same record, so all route alike.

Choosing a variant (:meth:`Router.choose`): the canary takes ``canary_weight`` percent
of 10,000 buckets. The bucket is a hash of the routing key (the ``X-Routing-Key``
header, else the spec's ``routing_key`` input field of the request's first row), so an
entity sees one variant, and keeps it as the canary's share grows; a request without a
key gets a random bucket. ``X-Variant: stable|canary`` picks the variant only when the
spec enables ``variant_override``.

The shadow (:class:`ShadowMirror`): after the primary answer is computed, the request
is offered to a bounded queue that a thread drains, predicting with the shadow and
logging the row with the same request id and variant ``shadow``. A full queue drops
the request and counts it; the primary answer never waits for the shadow.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError
from driftline.models import NumericRows
from driftline.serving.models import Deployment, ModelTarget, ServingOptions, Variant
from driftline.serving.service import ModelSlot

if TYPE_CHECKING:
    from driftline.models import ModelCache
    from driftline.registry import ModelVersion, RegistryService
    from driftline.serving.deployments import DeploymentService
    from driftline.serving.metrics import ServingMetrics
    from driftline.serving.predlog import PredictionLog

__all__ = ["BUCKETS", "Router", "Routes", "ShadowMirror", "bucket_of"]

log = logging.getLogger("driftline.serving")

BUCKETS = 10_000


def bucket_of(deployment: str, key: str) -> int:
    """The bucket (0..9999) of a routing key: the same in every process and release."""
    digest = hashlib.blake2b(f"{deployment}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True, slots=True)
class Routes:
    """One consistent view: the record and a loaded slot per variant serving now."""

    deployment: Deployment | None
    slots: Mapping[Variant, ModelSlot]
    canary_weight: int = 0
    failures: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def stable(self) -> ModelSlot:
        """The stable variant's slot (always present)."""
        return self.slots[Variant.STABLE]


class Router:
    """The variants of one serving process and how requests are routed among them."""

    def __init__(
        self,
        registry: RegistryService,
        cache: ModelCache,
        options: ServingOptions,
        *,
        deployments: DeploymentService | None = None,
        preloaded: tuple[Any, ModelVersion] | None = None,
        on_swap: Callable[[Any], None] | None = None,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.options = options
        self.deployments = deployments if options.follow_deployment else None
        self._on_swap = on_swap
        self._refused: dict[ModelTarget, str] = {}
        self._lock = threading.Lock()
        stable = ModelSlot(
            registry, cache, options.target, preloaded=preloaded, on_swap=self._swapped
        )
        self.current = Routes(None, {Variant.STABLE: stable})
        if self.deployments is not None:
            self.refresh()  # the canary and shadow load before the first request

    @property
    def follows(self) -> bool:
        """Whether a refresh can change anything (a deployment record or an alias)."""
        return self.deployments is not None or self.options.target.alias is not None

    def refresh(self) -> Routes:
        """Read the record, load what changed, follow aliases; swap in the new view."""
        with self._lock:
            routes = self.current
            record = routes.deployment
            if self.deployments is not None:
                try:
                    record = self.deployments.find_deployment(self.options.deployment) or record
                except DriftlineError as exc:  # the database is away: keep routing as we do
                    log.warning("could not read deployment %s: %s", self.options.deployment, exc)
            slots = dict(routes.slots)
            if record is not None:
                slots = self._reconcile(routes, record)
            for slot in {id(s): s for s in slots.values()}.values():
                slot.refresh()
            weight = record.canary_weight if record and Variant.CANARY in slots else 0
            failures = tuple({"target": t.ref, "error": e} for t, e in self._refused.items())
            self.current = Routes(record, slots, weight, failures)
            return self.current

    def _reconcile(self, routes: Routes, record: Deployment) -> dict[Variant, ModelSlot]:
        slots: dict[Variant, ModelSlot] = {}
        loaded = {s.target: s for s in routes.slots.values()}
        for variant, target in record.targets().items():
            if target in loaded:
                slots[variant] = loaded[target]
                continue
            if target in self._refused:
                continue
            try:
                slots[variant] = ModelSlot(self.registry, self.cache, target, on_swap=self._swapped)
                log.info("deployment %s: %s serves %s", record.name, variant, target.ref)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                self._refused[target] = error
                log.error("deployment %s: cannot serve %s as %s: %s", record.name, target.ref,
                          variant, exc)  # fmt: skip
                self._report(str(variant), target.ref, error)
        if Variant.STABLE not in slots:  # the new stable failed to load: keep the old one
            slots[Variant.STABLE] = routes.stable
        return slots

    def _report(self, variant: str, ref: str, error: str) -> None:
        """Put a load failure in the record and the audit log (``deploy status`` shows it)."""
        if self.deployments is None:
            return
        try:
            self.deployments.report_failure(self.options.deployment, variant, ref, error)
        except DriftlineError as exc:  # the database is away: the log line above stays
            log.warning("could not record the failure of %s: %s", ref, exc)

    def _swapped(self, event: Any) -> None:
        """A hot swap's outcome: counted, and a refused one reported."""
        if self._on_swap is not None:
            self._on_swap(event)
        if not event.ok and event.error:
            self._report("stable", f"{self.options.target.name}/{event.version}", event.error)

    def choose(self, routes: Routes, headers: Mapping[str, str], data: Any) -> Variant:
        """The variant that answers a request (see the module docstring)."""
        record = routes.deployment
        if record is None or not routes.canary_weight:
            return Variant.STABLE
        if record.spec.variant_override:
            asked = headers.get("x-variant")
            if asked in ("stable", "canary") and Variant(asked) in routes.slots:
                return Variant(asked)
        key = headers.get("x-routing-key")
        column = record.spec.routing_key
        if key is None and column is not None:
            key = _first_value(data, column)
        bucket = random.randrange(BUCKETS) if key is None else bucket_of(record.name, key)
        return (
            Variant.CANARY if bucket < routes.canary_weight * (BUCKETS // 100) else Variant.STABLE
        )

    def status(self) -> dict[str, Any]:
        """JSON: each variant's slot, the weights, and versions that failed to load."""
        routes = self.current
        record = routes.deployment
        return {
            "rollout": None if record is None else {
                "state": str(record.rollout.state),
                "generation": record.generation,
                "canary_weight": routes.canary_weight,
                "message": record.rollout.message,
            },
            "variants": {str(v): s.status() for v, s in routes.slots.items()},
            "load_failures": list(routes.failures),
        }  # fmt: skip


def _first_value(data: Any, column: str) -> str | None:
    """The routing field of the request's first row, as text (``None`` if absent)."""
    try:
        if isinstance(data, NumericRows):
            value = data[column][0]
        elif isinstance(data, Mapping):
            value = data.get(column)
            value = value[0] if isinstance(value, list | tuple) else value
        elif hasattr(data, "columns") and column in data.columns:
            value = data[column].iloc[0]
        else:
            return None
    except (IndexError, KeyError, TypeError):
        return None
    if value is None:
        return None
    return str(value.item() if hasattr(value, "item") else value)


@dataclass(slots=True)
class _Mirrored:
    request_id: str
    arrived: datetime
    endpoint: str
    data: Any
    rows: int


class ShadowMirror:
    """Mirrors requests to the shadow variant in a thread, through a bounded queue."""

    def __init__(
        self,
        router: Router,
        *,
        capacity: int,
        metrics: ServingMetrics,
        prediction_log: PredictionLog | None,
    ) -> None:
        self.router = router
        self.capacity = capacity
        self.metrics = metrics
        self.prediction_log = prediction_log
        self.mirrored = 0
        self.dropped = 0
        self._queue: deque[_Mirrored] = deque()
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="driftline-shadow", daemon=True)
        self._thread.start()

    def offer(
        self, request_id: str, arrived: datetime, endpoint: str, data: Any, rows: int
    ) -> bool:
        """Queue a request for the shadow; ``False`` (counted) when the queue is full."""
        routes = self.router.current
        record = routes.deployment
        if record is None or record.spec.shadow is None or Variant.SHADOW not in routes.slots:
            return False
        sample = record.spec.shadow.sample
        if sample < 1.0 and random.random() >= sample:
            return False
        if len(self._queue) >= self.capacity:
            self.dropped += 1
            self.metrics.shadow_dropped.inc()
            return False
        self._queue.append(_Mirrored(request_id, arrived, endpoint, data, rows))
        self._wake.set()
        return True

    def _run(self) -> None:
        from driftline.serving.batching import predict_one

        while True:
            if not self._queue:
                if self._stop:
                    return
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            item = self._queue.popleft()
            slot = self.router.current.slots.get(Variant.SHADOW)
            if slot is None:
                continue
            model, served = slot.current
            started = time.perf_counter()
            output, status, error = None, 200, None
            try:
                output = predict_one(model, item.data)
            except DriftlineError as exc:
                status, error = exc.http_status, f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # never let the mirror die
                status, error = 500, f"{type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - started
            self.mirrored += 1
            self.metrics.observe(item.endpoint, served.version, status, seconds, "shadow")
            if self.prediction_log is not None:
                self.prediction_log.append(
                    (item.request_id, served.name, served.version, "shadow", item.arrived,
                     item.endpoint, item.data, output, item.rows, seconds * 1000.0, status, error)
                )  # fmt: skip

    def close(self, timeout: float = 10.0) -> None:
        """Mirror what is queued (up to ``timeout``), then stop."""
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)

    def stats(self) -> dict[str, int]:
        """``{"mirrored", "dropped", "queued"}``."""
        return {"mirrored": self.mirrored, "dropped": self.dropped, "queued": len(self._queue)}
