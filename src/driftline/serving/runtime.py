"""One serving process's parts, and the path every predict request takes through them.

:class:`ServingRuntime` owns the workspace connection, the :class:`ModelSlot` and its
alias watcher, the batcher (when batching), the metrics and the prediction log. Each
protocol route (``/predict``, ``/invocations``, OIP ``infer``) only decodes its body and
encodes its answer; :meth:`ServingRuntime.answer` does the rest the same way for all:
request id, body limits, authentication, predicting (or shedding load), the metrics and
the prediction-log row.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from driftline.errors import (
    DriftlineError,
    InvalidArgumentError,
    OverloadedError,
    PayloadTooLargeError,
    UnauthenticatedError,
)
from driftline.serving.batching import Batcher, ModelFailure, predict_one
from driftline.serving.deployments import DeploymentService
from driftline.serving.metrics import ServingMetrics
from driftline.serving.models import Variant, is_request_id
from driftline.serving.payloads import InputShaper, check_rows
from driftline.serving.predlog import PredictionLog, prediction_root
from driftline.serving.routing import Router, Routes, ShadowMirror
from driftline.serving.service import ModelSlot, RefreshThread

if TYPE_CHECKING:
    from starlette.requests import Request

    from driftline.serving.models import ServedVersion, ServingOptions
    from driftline.settings import Settings

__all__ = ["Outcome", "ServingRuntime"]

log = logging.getLogger("driftline.serving")

# The decoder a route passes: (body bytes, request, shaper) -> (model input, protocol id).
Decoder = Callable[[bytes, "Request", InputShaper], tuple[Any, str | None]]


@dataclass(slots=True)
class Outcome:
    """What happened to one request: the output or the error, and what answered it."""

    request_id: str
    served: ServedVersion
    variant: Variant = Variant.STABLE
    output: Any = None
    error: DriftlineError | None = None
    protocol_id: str | None = None
    started: float = 0.0

    @property
    def status(self) -> int:
        """The HTTP status to answer with."""
        return 200 if self.error is None else self.error.http_status


class ServingRuntime:
    """Everything one serving process needs (built at start-up, closed at shutdown)."""

    def __init__(self, settings: Settings, options: ServingOptions, *, preloaded: Any = None):
        from driftline.models import ModelCache
        from driftline.workspace import Workspace

        self.settings = settings
        self.options = options
        self.workspace = Workspace.from_settings(settings)
        try:
            self.metrics = ServingMetrics(options.deployment, str(options.variant))
            self.router = Router(
                self.workspace.registry,
                ModelCache.of(settings),
                options,
                deployments=self.workspace.service("serving", DeploymentService),
                preloaded=preloaded,
                on_swap=lambda e: self.metrics.swaps.labels(
                    options.deployment, "ok" if e.ok else "refused"
                ).inc(),
            )
        except BaseException:
            self.workspace.close()
            raise
        self._shapers: dict[int, InputShaper] = {}
        self._batchers: dict[int, Batcher] = {}
        self.watcher = RefreshThread(
            self.router.refresh, options.poll_interval, enabled=self.router.follows
        )
        self.controller = (
            RefreshThread(self._drive_rollout, options.poll_interval, enabled=True, name="rollout")
            if options.follow_deployment
            else None
        )
        self.log = (
            PredictionLog(
                prediction_root(settings.home, settings.artifact_root),
                options.deployment,
                flush_rows=options.log_flush_rows,
                flush_seconds=options.log_flush_seconds,
                capacity=options.log_capacity,
                on_written=self.metrics.log_written.inc,
                on_dropped=self.metrics.log_dropped.inc,
            )
            if options.log_sample > 0
            else None
        )
        self.shadow = (
            ShadowMirror(
                self.router, capacity=options.shadow_capacity, metrics=self.metrics,
                prediction_log=self.log,
            )
            if options.follow_deployment
            else None
        )  # fmt: skip
        self.auth = None
        if options.auth:
            from driftline.auth import auth_service

            if self.workspace.database is None:
                raise InvalidArgumentError(
                    "--auth checks tokens in the workspace's database; a remote workspace "
                    "(DRIFTLINE_URI=http://...) has none here"
                )
            self.auth = auth_service(self.workspace.database, actor=settings.user)
        self.inflight = 0
        self.timeout = options.timeout_ms / 1000.0

    @property
    def slot(self) -> ModelSlot:
        """The stable variant's slot (what OIP metadata and single-model serving show)."""
        return self.router.current.stable

    def _drive_rollout(self) -> None:
        """Drive the deployment's canary one check when one is due (any process may;
        the record's compare-and-set lets exactly one do each check)."""
        self.workspace.service("serving", DeploymentService).tick(self.options.deployment)

    def start(self) -> None:
        """Start the background parts (on the running event loop)."""
        self.watcher.start()
        if self.controller is not None:
            self.controller.start()

    async def close(self) -> None:
        """Stop watching and batching, drain the shadow and the prediction log, close the
        workspace."""
        self.watcher.stop()
        if self.controller is not None:
            self.controller.stop()
        for batcher in self._batchers.values():
            await batcher.stop()
        if self.shadow is not None:
            self.shadow.close()
        if self.log is not None:
            self.log.close()
        if self.auth is not None:
            self.auth.close()
        self.workspace.close()

    def batcher(self, slot: ModelSlot, variant: Variant) -> Batcher:
        """The batcher of a variant's slot (made, on the event loop, at its first request)."""
        found = self._batchers.get(id(slot))
        if found is None:
            assert self.options.batching is not None
            found = Batcher(
                slot, self.options.batching, max_queue=self.options.max_queue,
                metrics=self.metrics, variant=str(variant),
            )  # fmt: skip
            found.start()
            self._batchers[id(slot)] = found
        return found

    def shaper(self, model: Any) -> InputShaper:
        """The input shaper of a loaded model (one per model object, built once)."""
        key = id(model)
        shaper = self._shapers.get(key)
        if shaper is None:
            if len(self._shapers) > 8:  # old models swapped out long ago
                self._shapers.clear()
            from driftline.models import LinearPredictor

            rows = isinstance(model.raw, LinearPredictor)  # predicts on arrays: no pandas
            shaper = self._shapers[key] = InputShaper(model.signature, rows=rows)
        return shaper

    def request_id(self, request: Request, protocol_id: str | None = None) -> str:
        """The client's ``X-Request-ID`` (if well-formed), the protocol's id, or a new one."""
        given = request.headers.get("x-request-id") or protocol_id
        if given and is_request_id(given):
            return given
        from driftline.core.ids import new_id

        return new_id()

    async def authenticate(self, request: Request) -> None:
        """Raise ``UnauthenticatedError``/``PermissionDeniedError`` unless the caller may
        read the served model (with ``--auth``)."""
        if self.auth is None:
            return
        from starlette.concurrency import run_in_threadpool

        from driftline.auth import require

        header = request.headers.get("authorization")
        if not header:
            raise UnauthenticatedError(
                "Authentication required: send 'Authorization: Bearer <token>' "
                "(create one with `driftline tokens create`)"
            )
        caller = self.auth.peek_authorization(header)
        if caller is None:
            client = request.client.host if request.client else ""
            caller = await run_in_threadpool(
                self.auth.authenticate_authorization, header, client=client
            )
        require(caller, "read", model=self.options.target.name)

    async def body(self, request: Request) -> bytes:
        """The request body; ``PayloadTooLargeError`` (413) past ``max_body`` bytes."""
        limit = self.options.max_body
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise PayloadTooLargeError(
                f"The body has {int(length)} bytes; this server takes at most {limit}"
            )
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"The body is over {limit} bytes, this server's limit")
            chunks.append(chunk)
        return b"".join(chunks)

    async def answer(self, request: Request, endpoint: str, decode: Decoder) -> Outcome:
        """Decode, route, predict (or shed), count, log and mirror one request; never raises."""
        started = time.perf_counter()
        arrived = datetime.now(UTC)
        routes = self.router.current
        model, served = routes.stable.current
        outcome = Outcome(request_id="", served=served, started=started)
        data: Any = None
        rows = 0
        self.inflight += 1
        try:
            await self.authenticate(request)
            body = await self.body(request)
            data, outcome.protocol_id = decode(body, request, self.shaper(model))
            rows = check_rows(data, self.options.max_rows)
            outcome.request_id = self.request_id(request, outcome.protocol_id)
            if routes.deployment is not None:
                outcome.variant = self.router.choose(routes, request.headers, data)
            slot = routes.slots[outcome.variant]
            model, served = slot.current
            outcome.served = served
            features = _without(data, routes, self.shaper(model))
            if self.options.batching is not None:
                remaining = self.timeout - (time.perf_counter() - started)
                batcher = self.batcher(slot, outcome.variant)
                outcome.output, outcome.served = await batcher.submit(features, rows, remaining)
            else:
                if self.inflight > self.options.max_queue:
                    raise OverloadedError(
                        f"The server is overloaded: {self.inflight} requests in flight; retry"
                    )
                outcome.output = predict_one(model, features)
                self.metrics.batch_rows(served.version, rows, str(outcome.variant))
        except DriftlineError as exc:
            outcome.error = exc
            if isinstance(exc, ModelFailure):
                log.warning("model %s failed on a request: %s", served.ref, exc)
        except Exception as exc:  # a bug of ours: answer 500, keep serving
            log.exception("serving %s failed", served.ref)
            outcome.error = ModelFailure(exc)
        finally:
            self.inflight -= 1
        if not outcome.request_id:
            outcome.request_id = self.request_id(request, outcome.protocol_id)
        seconds = time.perf_counter() - started
        status = outcome.status
        variant = str(outcome.variant)
        self.metrics.observe(endpoint, outcome.served.version, status, seconds, variant)
        if self.log is not None and (
            self.options.log_sample >= 1.0 or random.random() < self.options.log_sample
        ):
            self.log.append(
                (
                    outcome.request_id, outcome.served.name, outcome.served.version,
                    variant, arrived, endpoint,
                    data if status != 413 else None, outcome.output, rows, seconds * 1000.0,
                    status, None if outcome.error is None else _describe(outcome.error),
                )
            )  # fmt: skip
        if self.shadow is not None and rows and status < 500 and status != 413:
            self.shadow.offer(outcome.request_id, arrived, endpoint, data, rows)
        return outcome

    def status(self) -> dict[str, Any]:
        """JSON for ``/status``: the model, its swaps, the queue and the prediction log."""
        return {
            "deployment": self.options.deployment,
            "variant": str(self.options.variant),
            **self.slot.status(),
            **({"routing": self.router.status()} if self.options.follow_deployment else {}),
            "shadow": None if self.shadow is None else self.shadow.stats(),
            "batching": None
            if self.options.batching is None
            else {
                "max_batch_size": self.options.batching.max_batch_size,
                "max_latency_ms": self.options.batching.max_latency_ms,
                "queue_depth": sum(b.depth for b in self._batchers.values()),
                "predicting_rows": sum(b.predicting for b in self._batchers.values()),
            },
            "prediction_log": None if self.log is None else self.log.stats(),
        }


def _without(data: Any, routes: Routes, shaper: InputShaper) -> Any:
    """The model's input: the request without its routing field when the model's
    signature does not take it (it stays in the prediction log's inputs)."""
    record = routes.deployment
    column = None if record is None else record.spec.routing_key
    if column is None or column in shaper.names or not hasattr(data, "columns"):
        return data
    return data.drop(columns=[column]) if column in data.columns else data


def _describe(error: DriftlineError) -> str:
    name = error.error_class if isinstance(error, ModelFailure) else type(error).__name__
    return f"{name}: {error}"


def invalid_json(exc: Exception) -> InvalidArgumentError:
    """The 400 for a body that is not JSON."""
    return InvalidArgumentError(f"The body is not valid JSON: {exc}")


Handler = Callable[["Request"], Awaitable[Any]]
