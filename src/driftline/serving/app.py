"""The serving ASGI app (Starlette): three protocols over one model, plus health and metrics.

Routes::

    POST /predict                         {"inputs": [records] | {columns}}
    POST /invocations                     MLflow's scoring protocol (JSON forms, text/csv)
    GET  /ping  /health  /version         MLflow's scoring-server probes
    GET  /v2  /v2/health/live  /v2/health/ready                    Open Inference Protocol v2
    GET  /v2/models/{name}[/versions/{v}][/ready]
    POST /v2/models/{name}[/versions/{v}]/infer
    GET  /status                          the served version, its swaps, queue, prediction log
    GET  /metrics                         Prometheus text format (with what later stages
                                          contribute, see :mod:`driftline.serving.metrics`)

Every predict answer carries the request id in its body and in ``X-Request-ID``. Errors
follow each protocol: ``/predict`` answers driftline's envelope
``{"error": {"code", "message", "status"}, "request_id"}``; ``/invocations`` answers
MLflow's ``{"error_code", "message"}``; OIP answers ``{"error": "..."}``. A 503 carries
``Retry-After``. With ``--auth`` every route but the probes (``/ping``, ``/health``,
``/version``, ``/v2/health/*``) and ``/metrics`` needs a bearer token of a user who may
read the model.

Starlette rather than FastAPI: the routes take raw bodies in three formats, so request
models would only add per-request validation cost.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from driftline.errors import DriftlineError, InvalidArgumentError, NotFoundError, OverloadedError
from driftline.serving import oip
from driftline.serving.batching import ModelFailure
from driftline.serving.metrics import ContributedMetrics, render_metrics
from driftline.serving.models import ServingOptions
from driftline.serving.payloads import decode_csv, decode_invocations, decode_predict, jsonable
from driftline.serving.runtime import Outcome, ServingRuntime, invalid_json

if TYPE_CHECKING:
    from starlette.requests import Request

    from driftline.serving.payloads import InputShaper
    from driftline.settings import Settings

__all__ = ["OPTIONS_ENV", "create_app", "create_app_from_env"]

OPTIONS_ENV = "DRIFTLINE_SERVING_OPTIONS"
#: Seconds a thread of a serving worker may hold the GIL before it is asked to hand it
#: over (see :func:`create_app_from_env`).
WORKER_SWITCH_INTERVAL = 0.0005
_JSON = "application/json"
_NUMPY = orjson.OPT_SERIALIZE_NUMPY

# Set by the parent process when it serves with one worker: the model it loaded to check
# the target is the one the app then serves (no second load).
preloaded: Any = None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body, option=_NUMPY), status, headers, _JSON)


def _headers(outcome: Outcome) -> dict[str, str]:
    headers = {"X-Request-ID": outcome.request_id}
    if isinstance(outcome.error, OverloadedError):
        headers["Retry-After"] = str(outcome.error.retry_after)
    return headers


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_json(exc) from None


def _error_fields(error: DriftlineError) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "code": error.code,
        "message": str(error),
        "status": error.http_status,
    }
    if isinstance(error, ModelFailure):
        fields["type"] = error.error_class
    return fields


class _Routes:
    """The handlers, bound to one runtime."""

    def __init__(self, runtime: ServingRuntime) -> None:
        self.rt = runtime
        # What later stages add to /metrics (the monitors' alert gauges), read cached.
        self.contributed = ContributedMetrics(
            runtime.workspace.contributions, runtime.options.deployment
        )

    # -- /predict -------------------------------------------------------------------

    async def predict(self, request: Request) -> Response:
        def decode(body: bytes, _req: Request, shaper: InputShaper) -> tuple[Any, None]:
            return decode_predict(_parse(body), shaper), None

        outcome = await self.rt.answer(request, "predict", decode)
        if outcome.error is not None:
            body = {
                "error": _error_fields(outcome.error),
                "request_id": outcome.request_id,
                "variant": str(outcome.variant),
            }
            return _json(body, outcome.status, _headers(outcome))
        return _json(
            {
                "predictions": jsonable(outcome.output),
                "request_id": outcome.request_id,
                "model": outcome.served.ref,
                "variant": str(outcome.variant),
            },
            headers=_headers(outcome),
        )

    # -- MLflow scoring protocol ----------------------------------------------------

    async def invocations(self, request: Request) -> Response:
        kind = request.headers.get("content-type", _JSON).split(";")[0].strip().lower()
        if kind not in (_JSON, "text/csv"):
            return _json(
                {
                    "error_code": "BAD_REQUEST",
                    "message": "This predictor only supports the following content types: "
                    f"['text/csv', 'application/json']; got {kind!r}",
                },
                415,
            )

        def decode(body: bytes, _req: Request, shaper: InputShaper) -> tuple[Any, None]:
            if kind == "text/csv":
                return decode_csv(body), None
            data, _params = decode_invocations(_parse(body), shaper)
            return data, None  # params: the model flavors take none yet

        outcome = await self.rt.answer(request, "invocations", decode)
        if outcome.error is not None:
            error = outcome.error
            body = {
                "error_code": "BAD_REQUEST" if error.http_status == 400 else error.code,
                "message": str(error),
                "request_id": outcome.request_id,
            }
            if isinstance(error, ModelFailure):
                body["error_class"] = error.error_class
            return _json(body, outcome.status, _headers(outcome))
        return _json({"predictions": jsonable(outcome.output)}, headers=_headers(outcome))

    async def ping(self, _request: Request) -> Response:
        return Response("\n", 200, media_type=_JSON)

    async def version(self, _request: Request) -> Response:
        from driftline import __version__

        return PlainTextResponse(__version__)

    # -- Open Inference Protocol v2 --------------------------------------------------

    def _check_model(self, request: Request) -> Any:
        model, served = self.rt.slot.current
        name = request.path_params["name"]
        version = request.path_params.get("version")
        if name != served.name:
            raise NotFoundError(
                f"Model {name!r} is not served here (this server serves {served.name!r})"
            )
        if version is not None and version != str(served.version):
            raise NotFoundError(
                f"Model {name} version {version} is not served here (version {served.version} is)"
            )
        return model, served

    async def server_metadata(self, _request: Request) -> Response:
        from driftline import __version__

        return _json({"name": "driftline", "version": __version__, "extensions": []})

    async def live(self, _request: Request) -> Response:
        return _json({"live": True})

    async def ready(self, _request: Request) -> Response:
        return _json({"ready": True})

    async def model_metadata(self, request: Request) -> Response:
        try:
            await self.rt.authenticate(request)
            model, served = self._check_model(request)
        except DriftlineError as exc:
            return _json({"error": str(exc)}, exc.http_status)
        body = oip.model_metadata(served.name, served.version, served.flavor, model.signature)
        body["parameters"] = {"driftline": self.rt.slot.status()}
        return _json(body)

    async def model_ready(self, request: Request) -> Response:
        try:
            await self.rt.authenticate(request)
            _model, served = self._check_model(request)
        except DriftlineError as exc:
            return _json({"error": str(exc)}, exc.http_status)
        return _json({"name": served.name, "ready": True})

    async def infer(self, request: Request) -> Response:
        try:
            await self.rt.authenticate(request)
            self._check_model(request)
        except DriftlineError as exc:
            return _json({"error": str(exc)}, exc.http_status)

        def decode(body: bytes, _req: Request, shaper: InputShaper) -> tuple[Any, str | None]:
            return oip.decode_infer(_parse(body), shaper.signature)

        outcome = await self.rt.answer(request, "v2", decode)
        if outcome.error is not None:
            error = outcome.error
            name = error.error_class if isinstance(error, ModelFailure) else type(error).__name__
            body = {"error": f"{name}: {error}", "request_id": outcome.request_id}
            return _json(body, outcome.status, _headers(outcome))
        served = outcome.served
        model = self.rt.slot.current[0]
        reply: dict[str, Any] = {
            "model_name": served.name,
            "model_version": str(served.version),
            "outputs": oip.encode_outputs(outcome.output, model.signature),
        }
        reply["id"] = outcome.protocol_id or outcome.request_id
        return _json(reply, headers=_headers(outcome))

    # -- operations -----------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        try:
            await self.rt.authenticate(request)
        except DriftlineError as exc:
            return _json({"error": _error_fields(exc)}, exc.http_status)
        return _json(self.rt.status())

    async def metrics(self, _request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        def render() -> tuple[bytes, str]:
            return render_metrics(self.rt.metrics, self.contributed.collectors())

        # In a thread: a contributed collector may read a database now and then, and the
        # event loop keeps answering predictions meanwhile.
        body, content_type = await run_in_threadpool(render)
        return Response(body, 200, media_type=content_type)


def create_app(settings: Settings, options: ServingOptions, *, preload: Any = None) -> Starlette:
    """The serving app for one model; the model loads when the app starts (its lifespan).

    Example:
        >>> app = create_app(Settings.load(), ServingOptions(
        ...     target=ModelTarget.parse("churn@champion")))              # doctest: +SKIP
        >>> uvicorn.run(app, port=8080)                                     # doctest: +SKIP
    """
    holder: dict[str, _Routes] = {}

    async def call(name: str, request: Request) -> Response:
        return await getattr(holder["routes"], name)(request)  # type: ignore[no-any-return]

    def route(path: str, name: str, methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await call(name, request)

        return Route(path, endpoint, methods=methods)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        runtime = ServingRuntime(settings, options, preloaded=preload)
        runtime.start()
        holder["routes"] = _Routes(runtime)
        try:
            yield
        finally:
            await runtime.close()

    model = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    routes = [
        route("/predict", "predict", ["POST"]),
        route("/invocations", "invocations", ["POST"]),
        route("/ping", "ping", ["GET"]),
        route("/health", "ping", ["GET"]),
        route("/version", "version", ["GET"]),
        route("/v2", "server_metadata", ["GET"]),
        route("/v2/health/live", "live", ["GET"]),
        route("/v2/health/ready", "ready", ["GET"]),
        route(model, "model_metadata", ["GET"]),
        route(versioned, "model_metadata", ["GET"]),
        route(f"{model}/ready", "model_ready", ["GET"]),
        route(f"{versioned}/ready", "model_ready", ["GET"]),
        route(f"{model}/infer", "infer", ["POST"]),
        route(f"{versioned}/infer", "infer", ["POST"]),
        route("/status", "status", ["GET"]),
        route("/metrics", "metrics", ["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def create_app_from_env() -> Starlette:
    """The app a uvicorn worker builds: settings from ``DRIFTLINE_*``, options from
    :data:`OPTIONS_ENV` (both set by :func:`driftline.serving.runner.serve`)."""
    from driftline.settings import Settings

    # The worker's own threads (the prediction-log writer, the shadow mirror, the rollout
    # controller) run Python code that holds the GIL for up to the switch interval (5 ms
    # by default) before the event loop gets it back: under load every such slice is
    # latency added to requests in flight. A 0.5 ms slice took the one-row p99 at 16
    # connections from 24.5 to 9.2 ms and the logging cost from 12 % to 3 % (bench/
    # serving.py, same machine and load). This process is ours: the setting stays here.
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL)
    text = os.environ.get(OPTIONS_ENV)
    if not text:
        raise InvalidArgumentError(f"{OPTIONS_ENV} is not set: start with `driftline serve`")
    return create_app(Settings.load(), ServingOptions.from_json(text), preload=preloaded)
