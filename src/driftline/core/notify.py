"""Notifications: one way for every stage to tell people that something happened.

A *channel* is text: ``log`` (a line on stderr and on the stage's logger) or
``webhook:<http(s) URL>`` (a JSON POST retried with exponential backoff);
:func:`parse_channel` checks one. An :class:`Event` is what is sent: its kind
(``monitoring.alert``, ``deployment.rolled_back``, ``retraining.cycle.promoted``...),
an idempotency key, a one-line summary for people and a JSON body.

The webhook body is ``{"event": kind, "id": key, **body}``, with the key also as the
``Idempotency-Key`` header, so a receiver can drop a retried duplicate.

:func:`deliver` never raises for a channel that is down: it returns a :class:`Sent`
saying what happened, and the caller records a failure where its users look (monitoring
on the alert's delivery, retried on the next run; serving in the deployment's history;
retraining in the cycle's audit trail). Nothing here knows any stage.

Where a webhook may go is the ``webhook_allow`` setting, carried by the
:class:`DeliveryPolicy` (see :mod:`driftline.core.destinations`): a service checks a
channel with ``policy.allow.check`` when it accepts it, and :func:`deliver` checks every
address the host resolves to before each delivery, then connects to a checked address
(the URL's host stays the ``Host`` header and the TLS server name, so certificates are
verified against it). When connecting to one fails, the next checked address is tried
(a dual-stack host whose first address is unreachable is still reached). A refused
destination is a failed :class:`Sent` with no attempt (nothing was posted), never an
exception. Redirects are not followed, and the response's body is never read (only its
status counts).

Through a proxy, nothing is pinned: when the environment names a proxy for the URL
(``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``, read as
:mod:`urllib.request` reads them), the request goes to the proxy with the URL's host,
since the proxy is the egress: it resolves the name itself (a tunnelled TLS connection
needs the name, not an address, for its certificate), and what it may reach is its own
policy. The addresses this machine resolves are still checked first. Otherwise the
environment's proxy settings are not consulted (``NO_PROXY`` would be matched against
the pinned address, not the name).

One delivery has a time budget (``DeliveryPolicy.deadline``): resolving the name, each
attempt and each wait between attempts start only while some of it is left, and no
wait starts when the attempt after it would start past the budget. Each network
operation of an attempt (connect, send, each read) may take ``timeout`` seconds, capped
by what is left of the budget when the attempt starts, so one attempt can outlast what
was left: a receiver that accepts and trickles its answer byte by byte holds the
delivering thread for a few operations' timeouts more.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from driftline.core.destinations import SERVER_DEFAULT, WebhookAllow, resolve
from driftline.errors import DriftlineError, InvalidArgumentError

if TYPE_CHECKING:
    import httpx

    from driftline.core.destinations import Address
    from driftline.core.yamlfile import Located
    from driftline.settings import Settings

__all__ = [
    "DeliveryPolicy",
    "Event",
    "Sent",
    "announce",
    "deliver",
    "notify",
    "parse_channel",
    "parse_channels",
    "undelivered",
]

#: The channel forms, as error messages name them.
CHANNEL_FORMS = "'log' or 'webhook:<http(s) URL>'"


def parse_channel(text: str) -> str:
    """Check an alert channel: ``log`` or ``webhook:<http(s) URL>``; returns it normalized.

    Raises:
        InvalidArgumentError: Naming the channel and the accepted forms.
    """
    value = text.strip() if isinstance(text, str) else ""
    if value == "log":
        return value
    kind, _, url = value.partition(":")
    if kind == "webhook":
        try:
            parts = urlsplit(url)  # a malformed host ("http://[::1") raises here
            parts.port  # noqa: B018 - a port out of range raises here, not at delivery
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgumentError(
                f"Invalid alert channel {text!r}: a webhook URL must be http:// or https:// "
                "with a host, e.g. webhook:https://hooks.example.com/driftline"
            )
        return f"webhook:{url}"
    raise InvalidArgumentError(f"Invalid alert channel {text!r}: use {CHANNEL_FORMS}")


def parse_channels(raw: Any, field: str, at: Located) -> tuple[str, ...]:
    """A list of channels in a spec file (``alerts:``, ``notify:``), each checked by
    :func:`parse_channel`, duplicates dropped; an error names the item and its line."""
    if not isinstance(raw, list):
        raise at.error(field, f"{field} must be a list (log, webhook:URL), got {raw!r}")
    channels = []
    for i, item in enumerate(raw):
        try:
            channels.append(parse_channel(item))
        except InvalidArgumentError as exc:
            raise at.error(f"{field}[{i}]", f"{field}[{i}]: {exc}") from None
    return tuple(dict.fromkeys(channels))


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryPolicy:
    """How hard a webhook is tried in one delivery, and where it may go.

    Attributes:
        attempts: POSTs at most; after the i-th failure it waits ``backoff * 2**i`` s.
        backoff: Seconds before the first retry.
        timeout: Seconds each network operation of an attempt may take.
        deadline: Seconds the whole delivery may take: no attempt starts after it, and
            each attempt's timeout is capped by what is left of it.
        allow: Where webhooks may go (the ``webhook_allow`` setting).
    """

    attempts: int = 4
    backoff: float = 0.5
    timeout: float = 10.0
    deadline: float = 15.0
    allow: WebhookAllow = field(default_factory=WebhookAllow)

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise InvalidArgumentError(f"attempts must be a whole number, got {self.attempts!r}")
        if self.attempts < 1 or self.backoff < 0 or self.timeout <= 0 or self.deadline <= 0:
            raise InvalidArgumentError(
                "A delivery policy needs attempts >= 1, backoff >= 0, timeout > 0 and "
                f"deadline > 0, got attempts={self.attempts}, backoff={self.backoff}, "
                f"timeout={self.timeout}, deadline={self.deadline}"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        """The default policy, with the ``webhook_allow`` of ``settings``.

        Unset, it is the team server's default (``public``) whenever the workspace's
        metadata is shared, not a local SQLite file (a PostgreSQL database, a server):
        channels there are written by a team, and every process that delivers them (the
        server, ``driftline agent``, a serving process, a scheduled ``monitor run``)
        must apply the same rule. This is the one place that rule lives.
        """
        allow = settings.webhook_allow
        if allow is None and not settings.uri.startswith("sqlite"):
            allow = SERVER_DEFAULT
        return cls(allow=WebhookAllow.parse(allow))


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something to tell people about.

    Attributes:
        kind: Dotted name of what happened, e.g. ``deployment.rolled_back``.
        key: Unique per event and stable across retries (the ``Idempotency-Key``).
        summary: One line for people (the ``log`` channel).
        body: JSON-ready details (the webhook's body, next to ``event`` and ``id``).
        source: The stage sending it: names the logger (``driftline.<source>``) and the
            webhook's ``User-Agent`` (``driftline-<source>``).
    """

    kind: str
    key: str
    summary: str
    body: dict[str, Any] = field(default_factory=dict)
    source: str = "notify"

    def document(self) -> dict[str, Any]:
        """The JSON a webhook receives."""
        return {"event": self.kind, "id": self.key, **self.body}


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent:
    """What one delivery of an event to one channel did (``error`` is the last one)."""

    channel: str
    delivered: bool
    attempts: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "channel": self.channel,
            "delivered": self.delivered,
            "attempts": self.attempts,
            "error": self.error,
        }


def deliver(channel: str, event: Event, policy: DeliveryPolicy) -> Sent:
    """Deliver ``event`` to one (parsed) channel, with the webhook's retries; never raises
    for a channel that is down or refuses it."""
    if channel == "log":
        _to_log(event)
        return Sent(channel=channel, delivered=True, attempts=1)
    url = channel.removeprefix("webhook:")
    try:
        attempts, error = _post(url, event, policy)
    except Exception as exc:  # e.g. a body the encoder refuses: a failed delivery, not a crash
        logging.getLogger(f"driftline.{event.source}").exception(
            "%s %s could not be sent to %s", event.kind, event.key, url
        )
        return Sent(channel=channel, delivered=False, attempts=1, error=type(exc).__name__)
    return Sent(channel=channel, delivered=error is None, attempts=attempts, error=error)


def notify(channels: Iterable[str], event: Event, policy: DeliveryPolicy) -> tuple[Sent, ...]:
    """Deliver ``event`` to each channel (each once, in order); what each delivery did."""
    return tuple(deliver(channel, event, policy) for channel in dict.fromkeys(channels))


def announce(
    channels: Iterable[str],
    event: Event,
    policy: DeliveryPolicy,
    record: Callable[[dict[str, Any]], None],
) -> None:
    """Deliver ``event`` to ``channels`` and, when some missed it, ``record`` what
    :func:`undelivered` says (where the stage's users look: a history entry, an audit
    entry). Never raises for a failed delivery; a record that cannot be written is
    logged, because telling people must not undo the change it tells of."""
    missed = undelivered(event, notify(channels, event, policy))
    if missed is None:
        return
    try:
        record(missed)
    except DriftlineError as exc:
        logging.getLogger(f"driftline.{event.source}").warning(
            "could not record that %s: %s", missed["message"], exc
        )


def undelivered(event: Event, sent: Iterable[Sent]) -> dict[str, Any] | None:
    """What to record when some channels missed ``event`` (the details of an audit
    entry: the event, its key, each failed delivery and one line for people), or None
    when every channel got it."""
    failed = [s for s in sent if not s.delivered]
    if not failed:
        return None
    return {
        "event": event.kind,
        "id": event.key,
        "failed": [s.to_dict() for s in failed],
        "message": "; ".join(
            f"{event.kind} not delivered to {s.channel}: {s.error}" for s in failed
        ),
    }


def _to_log(event: Event) -> None:
    log = logging.getLogger(f"driftline.{event.source}")
    if log.hasHandlers():  # else logging's last resort would print the same line twice
        log.warning("%s (%s %s)", event.summary, event.kind, event.key)
    print(event.summary, file=sys.stderr, flush=True)


def _post(url: str, event: Event, policy: DeliveryPolicy) -> tuple[int, str | None]:
    """POST until a 2xx answer, ``policy.attempts`` tries or the budget's end; (tries,
    last error or None). The host is resolved and checked once; without a proxy, every
    try goes to a checked address, the next one when connecting fails."""
    import httpx

    started = time.monotonic()
    log = logging.getLogger(f"driftline.{event.source}")
    target = httpx.URL(url)
    host = target.raw_host.decode("ascii")
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        addresses = resolve(host, port, timeout=min(policy.timeout, policy.deadline))
    except OSError as exc:
        refused = policy.allow.unresolved(host, exc)
        unsent = (
            f"refused: {refused} ({url})"
            if refused is not None
            else f"cannot resolve {host}: {exc} ({url})"
        )
        log.warning("%s %s not delivered to %s: %s", event.kind, event.key, url, unsent)
        return 0, unsent
    refused = policy.allow.refusal(host, addresses)
    if refused is not None:
        unsent = f"refused: {refused} ({url})"
        log.warning("%s %s not delivered to %s: %s", event.kind, event.key, url, unsent)
        return 0, unsent
    headers = {
        "Host": target.netloc.decode("ascii"),
        "Idempotency-Key": event.key,
        "User-Agent": f"driftline-{event.source}",
        "X-Driftline-Event": event.kind,
    }
    proxy = _proxy_for(target)
    routes = [(target, {})] if proxy is not None else [_pinned(target, a) for a in addresses]
    first = 0  # the route tried first: the one that last connected
    error: str | None = None
    stopped: str | None = None  # why fewer than policy.attempts tries were made
    tries = 0
    with _client(proxy) as client:
        for attempt in range(policy.attempts):
            if policy.deadline - (time.monotonic() - started) <= 0:
                stopped = f"the delivery's budget of {policy.deadline:g} s is spent"
                break
            tries += 1
            status: int | None = None
            for i in [*range(first, len(routes)), *range(first)]:
                left = policy.deadline - (time.monotonic() - started)
                if left <= 0:
                    break
                routed, extensions = routes[i]
                try:
                    with client.stream(
                        "POST", routed, json=event.document(), headers=headers,
                        extensions=extensions, timeout=min(policy.timeout, left),
                    ) as response:  # fmt: skip
                        status = response.status_code  # the body is never read
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    error = f"{type(exc).__name__}: {exc} ({url})"
                    continue  # nothing was sent there: the next checked address
                except (httpx.HTTPError, httpx.InvalidURL) as exc:
                    error = f"{type(exc).__name__}: {exc} ({url})"
                first = i
                break
            if status is not None:
                if 200 <= status < 300:
                    return tries, None
                error = f"HTTP {status} from {url}"
                if 400 <= status < 500 and status not in (408, 429):
                    return tries, error  # the receiver refuses it: retrying won't help
            if attempt + 1 == policy.attempts:
                break
            wait = policy.backoff * 2**attempt
            elapsed = time.monotonic() - started
            if elapsed >= policy.deadline:
                stopped = f"the delivery's budget of {policy.deadline:g} s is spent"
                break
            if elapsed + wait >= policy.deadline:
                stopped = (
                    f"the next attempt, after a wait of {wait:g} s, would start after the "
                    f"delivery's budget of {policy.deadline:g} s"
                )
                break
            time.sleep(wait)
    if stopped is not None:
        error = (
            f"{error or 'not tried'}; gave up after {tries} of {policy.attempts} attempts: "
            f"{stopped}"
        )
    log.warning("%s %s not delivered to %s: %s", event.kind, event.key, url, error)
    return tries, error


def _proxy_for(target: httpx.URL) -> str | None:
    """The proxy the environment names for ``target``, by :mod:`urllib.request`'s
    rules (``<scheme>_proxy`` or ``all_proxy``, unless ``no_proxy`` matches the host),
    or None."""
    import urllib.request

    proxies = urllib.request.getproxies()
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(target.netloc.decode("ascii")):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _client(proxy: str | None) -> httpx.Client:
    """A client through ``proxy``, or one that connects directly whatever the
    environment's proxy settings say (an explicit transport makes httpx skip them;
    the environment's certificate settings still apply)."""
    import httpx

    if proxy is not None:
        return httpx.Client(proxy=proxy, follow_redirects=False)
    return httpx.Client(transport=httpx.HTTPTransport(), follow_redirects=False)


def _pinned(target: httpx.URL, address: Address) -> tuple[httpx.URL, dict[str, Any]]:
    """``target`` sent to ``address``, with the URL's host as the TLS server name (so
    the certificate is checked against it)."""
    host = target.raw_host.decode("ascii")
    extensions = {"sni_hostname": host} if str(address) != host else {}
    return target.copy_with(host=str(address)), extensions
