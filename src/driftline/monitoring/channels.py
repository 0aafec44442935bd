"""Alert channels: a webhook (an HTTP POST retried with exponential backoff) and the log.

A channel is text on the monitor (``log``, ``webhook:<url>``, see
:func:`~driftline.monitoring.monitor_models.parse_channel`). :func:`deliver` makes one
delivery (with its retries) and returns the new :class:`Delivery` state; it never
raises for a channel that is down: the failure is recorded on the alert, and the
monitor retries undelivered alerts on its next run, so no alert is lost.

The webhook body is the alert as JSON (``Alert.to_dict()`` under ``"alert"``), with the
alert id as ``Idempotency-Key`` header so a receiver can drop a retried duplicate.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, replace

from driftline.core.clock import utcnow
from driftline.monitoring.monitor_models import Alert, Delivery

__all__ = ["DeliveryPolicy", "deliver"]

log = logging.getLogger("driftline.monitoring")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryPolicy:
    """How hard a webhook is tried in one run: ``attempts`` POSTs, waiting
    ``backoff * 2**i`` seconds after the i-th failure, each with ``timeout`` seconds."""

    attempts: int = 4
    backoff: float = 0.5
    timeout: float = 10.0


def deliver(alert: Alert, delivery: Delivery, policy: DeliveryPolicy) -> Delivery:
    """Deliver ``alert`` to ``delivery.channel``; the delivery's new state."""
    if delivery.channel == "log":
        _to_log(alert)
        return replace(
            delivery, state="delivered", attempts=delivery.attempts + 1, updated_at=utcnow()
        )
    url = delivery.channel.removeprefix("webhook:")
    attempts, error = _post(url, alert, policy)
    return replace(
        delivery,
        state="delivered" if error is None else "failed",
        attempts=delivery.attempts + attempts,
        last_error=error,
        updated_at=utcnow(),
    )


def _to_log(alert: Alert) -> None:
    line = (
        f"driftline alert [{alert.severity}] monitor {alert.monitor} "
        f"(deployment {alert.deployment}) check {alert.check}: {alert.message}"
    )
    if log.hasHandlers():  # else logging's last resort would print the same line twice
        log.warning("%s (alert %s)", line, alert.id)
    print(line, file=sys.stderr, flush=True)


def _post(url: str, alert: Alert, policy: DeliveryPolicy) -> tuple[int, str | None]:
    """POST until a 2xx answer or ``policy.attempts`` tries; (tries, last error or None)."""
    import httpx

    body = {"alert": alert.to_dict()}
    headers = {"Idempotency-Key": alert.id, "User-Agent": "driftline-monitor"}
    error: str | None = None
    with httpx.Client(timeout=policy.timeout, follow_redirects=False) as client:
        for attempt in range(policy.attempts):
            try:
                response = client.post(url, json=body, headers=headers)
                if 200 <= response.status_code < 300:
                    return attempt + 1, None
                error = f"HTTP {response.status_code} from {url}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    return attempt + 1, error  # the receiver refuses it: retry next run
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc} ({url})"
            if attempt + 1 < policy.attempts:
                time.sleep(policy.backoff * 2**attempt)
    log.warning("alert %s not delivered to %s: %s", alert.id, url, error)
    return policy.attempts, error
