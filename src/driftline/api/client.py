"""The HTTP client every remote backend shares: one connection pool, retries, typed errors.

A server answers errors with one envelope::

    {"error": {"code": "NOT_FOUND", "message": "No run 'abc'", "status": 404}}

and :class:`ApiClient` raises the :mod:`driftline.errors` class of that code, so a
remote caller catches the same exceptions as an embedded one.

Retries: connection failures, timeouts and 502/503/504 answers are retried with
exponential backoff for requests that are safe to repeat: every GET/PUT/DELETE/HEAD, and
a POST only when the caller says it is idempotent (a logging batch carries an
idempotency key, so its retry cannot write twice).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from driftline.core.backoff import backoff
from driftline.errors import (
    BackendError,
    DriftlineError,
    UnauthenticatedError,
    error_class_for_code,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["API_PREFIX", "ApiClient", "raise_for_envelope"]

API_PREFIX = "/api/v1"

_RETRY_STATUSES = frozenset({502, 503, 504})
_SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})


def raise_for_envelope(status: int, body: bytes, what: str) -> None:
    """Raise the typed error an error response stands for (nothing for a 2xx status)."""
    if status < 400:
        return
    import orjson

    code, message = "", ""
    try:
        error = orjson.loads(body).get("error", {})
        code, message = str(error.get("code", "")), str(error.get("message", ""))
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        message = body[:500].decode("utf-8", "replace").strip()
    if not code:
        code = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}.get(
            status, "BACKEND_UNAVAILABLE" if status >= 500 else "INVALID_ARGUMENT"
        )
    cls = error_class_for_code(code)
    raise cls(message or f"{what} failed with HTTP {status}")


class ApiClient:
    """A thread-safe client of one driftline server.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:8080``.
        token: A bearer token (``driftline tokens create``); ``None`` without ``--auth``.
        timeout: Seconds to wait for a connection or a response.
        retries: Extra attempts after a transient failure (see the module docstring).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        retries: int = 5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._retries = retries
        self._client_: httpx.Client | None = None
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        # One pool for every thread (httpx.Client is thread-safe), large enough that a
        # background sender does not queue behind parallel uploads. A pool per thread
        # leaked one per short-lived worker thread (each data commit starts a few).
        client = self._client_
        if client is None:
            import httpx

            with self._lock:
                if self._client_ is None:
                    headers = {"User-Agent": "driftline-client"}
                    if self._token:
                        headers["Authorization"] = f"Bearer {self._token}"
                    self._client_ = httpx.Client(
                        base_url=self.base_url,
                        headers=headers,
                        timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 10.0)),
                        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
                        follow_redirects=False,
                    )
                client = self._client_
        return client

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | Iterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send one request (retrying transient failures) and raise typed errors.

        ``json`` is serialised with orjson (use :func:`driftline.api.codec.encode` for
        records). With ``stream=True`` the caller must close the returned response.
        """
        import httpx
        import orjson

        body = content
        all_headers = dict(headers or {})
        if json is not None:
            body = orjson.dumps(json)
            all_headers["Content-Type"] = "application/json"
        may_retry = method in _SAFE_METHODS if idempotent is None else idempotent
        # A generator body cannot be replayed: only a bytes body is retried.
        if body is not None and not isinstance(body, bytes):
            may_retry = False
        attempts = 1 + (self._retries if may_retry else 0)
        url = path if path.startswith("/") else f"{API_PREFIX}/{path}"
        what = f"{method} {url}"
        for attempt in range(attempts):
            try:
                request = self._client().build_request(
                    method, url, content=body, params=params, headers=all_headers
                )
                response = self._client().send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    backoff(attempt)
                    continue
                raise BackendError(
                    f"Cannot reach the driftline server at {self.base_url} ({what}): {exc}. "
                    "Is `driftline server` running there?"
                ) from exc
            if response.status_code in _RETRY_STATUSES and attempt + 1 < attempts:
                response.close()
                backoff(attempt)
                continue
            if response.status_code >= 400:
                data = response.read()
                response.close()
                if response.status_code == 401 and not self._token:
                    raise UnauthenticatedError(
                        f"The server at {self.base_url} requires a token: create one with "
                        "`driftline tokens create` and set DRIFTLINE_TOKEN"
                    )
                raise_for_envelope(response.status_code, data, what)
            return response
        raise DriftlineError(f"{what}: no attempt was made")  # pragma: no cover

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET and decode the JSON body."""
        return _json(self.request("GET", path, **kwargs))

    def post_json(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST a JSON body and decode the JSON answer."""
        return _json(self.request("POST", path, json=json, **kwargs))

    def put_json(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """PUT a JSON body and decode the JSON answer."""
        return _json(self.request("PUT", path, json=json, **kwargs))

    def patch_json(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """PATCH a JSON body and decode the JSON answer."""
        return _json(self.request("PATCH", path, json=json, **kwargs))

    def delete_json(self, path: str, **kwargs: Any) -> Any:
        """DELETE and decode the JSON answer."""
        return _json(self.request("DELETE", path, **kwargs))

    def close(self) -> None:
        """Close the connection pool (a later request opens a new one)."""
        with self._lock:
            client, self._client_ = self._client_, None
        if client is not None:
            client.close()


def _json(response: httpx.Response) -> Any:
    import orjson

    if not response.content:
        return None
    return orjson.loads(response.content)
