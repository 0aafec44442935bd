"""Prometheus metrics of a serving process (``GET /metrics``, text format).

Names (all prefixed ``driftline_serving_``), labels in brackets::

    requests_total               [deployment, model_version, variant, endpoint]
    errors_total                 [deployment, model_version, variant, endpoint, status]
    request_latency_seconds      [deployment, model_version, variant, endpoint]   histogram
    batch_rows                   [deployment, model_version, variant]   histogram: rows/predict
    queue_depth                  [deployment]   requests waiting for the model (gauge)
    prediction_log_rows_written_total   [deployment]
    prediction_log_rows_dropped_total   [deployment]
    swaps_total                  [deployment, result]   alias moves followed (ok) or refused
    shadow_dropped_total         [deployment]   requests not mirrored to the shadow (queue full)

With several workers (``--workers N``) the parent process points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before any worker starts, and ``/metrics``
merges every worker's figures (prometheus-client's multiprocess mode: counters and
histograms summed, the queue gauge summed over live workers). With one worker the
figures live in the process.

**Contributed metrics.** Stages after serving add collectors to ``/metrics`` through the
extension point :data:`METRICS` (their ``Stage.extends``; the monitoring stage adds its
monitors' alert gauges this way, which serving cannot import). A contribution is a
callable ``collector_for(deployment) -> collector | None``; a collector is what
prometheus-client registers (``collect()`` yields metric families). Such a collector
may read a database, so :class:`ContributedMetrics` asks it at most once every
``max_age`` seconds (default 5) and answers scrapes in between from what it collected:
a burst of scrapes, or several Prometheus servers, cost one read.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["METRICS", "CachedCollector", "ContributedMetrics", "ServingMetrics", "render_metrics"]

#: The extension point of contributed ``/metrics`` collectors (see the module docstring).
METRICS = "serving.metrics"

log = logging.getLogger("driftline.serving")

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServingMetrics:
    """The metric families of one process, with label children cached per key.

    Looking a child up by labels costs a lock and a dict lookup in prometheus-client;
    caching the children keeps the cost per request at a few microseconds.
    """

    def __init__(self, deployment: str, variant: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.deployment = deployment
        self.variant = variant
        # Our own registry: a worker never exports the default process collectors twice,
        # and tests can build several apps in one process.
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["deployment", "model_version", "variant", "endpoint"]
        r = self.registry
        p = "driftline_serving_"
        self.requests = Counter(f"{p}requests", "Requests answered", labels, registry=r)
        self.errors = Counter(
            f"{p}errors", "Requests answered with an error", [*labels, "status"], registry=r
        )
        self.latency = Histogram(
            f"{p}request_latency_seconds", "Time from request to response", labels,
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch = Histogram(
            f"{p}batch_rows", "Rows per predict call", labels[:3], buckets=_BATCH_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.queue = Gauge(
            f"{p}queue_depth", "Requests waiting for the model", ["deployment"],
            registry=r, multiprocess_mode="livesum",
        ).labels(deployment)  # fmt: skip
        self.log_written = Counter(
            f"{p}prediction_log_rows_written", "Prediction-log rows written", ["deployment"],
            registry=r,
        ).labels(deployment)  # fmt: skip
        self.log_dropped = Counter(
            f"{p}prediction_log_rows_dropped", "Prediction-log rows dropped (buffer full)",
            ["deployment"], registry=r,
        ).labels(deployment)  # fmt: skip
        self.swaps = Counter(
            f"{p}swaps", "Alias moves followed or refused", ["deployment", "result"], registry=r
        )
        self.shadow_dropped = Counter(
            f"{p}shadow_dropped", "Requests not mirrored to the shadow (its queue was full)",
            ["deployment"], registry=r,
        ).labels(deployment)  # fmt: skip
        self._children: dict[tuple[str, int, str], tuple[Any, Any]] = {}
        self._batch_children: dict[tuple[int, str], Any] = {}

    def observe(
        self, endpoint: str, version: int, status: int, seconds: float, variant: str | None = None
    ) -> None:
        """Count one answered request (of ``variant``, by default the process's)."""
        variant = variant or self.variant
        key = (endpoint, version, variant)
        children = self._children.get(key)
        if children is None:
            labels = (self.deployment, str(version), variant, endpoint)
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if status >= 400:
            self.errors.labels(self.deployment, str(version), variant, endpoint, str(status)).inc()

    def batch_rows(self, version: int, rows: int, variant: str | None = None) -> None:
        """Record the rows of one predict call."""
        key = (version, variant or self.variant)
        child = self._batch_children.get(key)
        if child is None:
            child = self.batch.labels(self.deployment, str(version), key[1])
            self._batch_children[key] = child
        child.observe(rows)


class CachedCollector:
    """A collector answering from what ``inner`` collected at most ``max_age`` seconds ago.

    A failing collect is logged and answers what was collected last (nothing at first):
    a contributed collector never breaks the serving process's own metrics.
    """

    def __init__(
        self, inner: Any, max_age: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = inner
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._families: list[Any] = []
        self._at: float | None = None

    def describe(self) -> list[Any]:
        """Nothing up front (the families are known at collect time)."""
        return []

    def collect(self) -> list[Any]:
        """The families, collected again only when the last collect is ``max_age`` old."""
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= self.max_age:
                self._at = now
                try:
                    self._families = list(self.inner.collect())
                except Exception:  # a contributed collector must not break /metrics
                    log.warning("a contributed metrics collector failed", exc_info=True)
            return self._families


class ContributedMetrics:
    """The collectors later stages contribute to one deployment's ``/metrics``, each
    cached (:class:`CachedCollector`). ``contributions`` is the workspace's
    ``contributions(point)``, asked at the first scrape (not at start-up: a serving
    process nobody scrapes never builds the contributing stages)."""

    def __init__(
        self,
        contributions: Callable[[str], Sequence[Any]],
        deployment: str,
        *,
        max_age: float = 5.0,
    ) -> None:
        self._contributions = contributions
        self.deployment = deployment
        self.max_age = max_age
        self._lock = threading.Lock()
        self._collectors: list[CachedCollector] | None = None

    def collectors(self) -> list[CachedCollector]:
        """The cached collectors (built on the first call)."""
        with self._lock:
            if self._collectors is None:
                made = []
                try:
                    for collector_for in self._contributions(METRICS):
                        collector = collector_for(self.deployment)
                        if collector is not None:
                            made.append(CachedCollector(collector, self.max_age))
                except Exception:  # e.g. the contributing stage cannot open its stores
                    # Not cached: the next scrape tries again (the database may be back).
                    log.warning("contributed metrics are unavailable", exc_info=True)
                    return made
                self._collectors = made
            return self._collectors


def render_metrics(metrics: ServingMetrics, contributed: Sequence[Any] = ()) -> tuple[bytes, str]:
    """The exposition text and its content type (merged over workers in multiprocess
    mode), followed by the ``contributed`` collectors' families."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(metrics.registry)
    if contributed:
        extra = CollectorRegistry(auto_describe=False)
        for collector in contributed:
            extra.register(collector)
        body += generate_latest(extra)
    return body, CONTENT_TYPE_LATEST
