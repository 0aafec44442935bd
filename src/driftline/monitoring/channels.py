"""Alert channels of monitors: an alert delivered through the kernel's notifications.

A channel is text on the monitor (``log``, ``webhook:<url>``, see
:func:`driftline.core.notify.parse_channel`). :func:`deliver` makes one delivery (with
its retries, :func:`driftline.core.notify.deliver`) and returns the new
:class:`Delivery` state; it never raises for a channel that is down: the failure is
recorded on the alert, and the monitor retries undelivered alerts on its next run, so
no alert is lost.

The webhook body carries the alert as JSON (``Alert.to_dict()`` under ``"alert"``), with
the alert id as ``Idempotency-Key`` header so a receiver can drop a retried duplicate.
"""

from __future__ import annotations

from dataclasses import replace

from driftline.core import notify
from driftline.core.clock import utcnow
from driftline.core.notify import DeliveryPolicy
from driftline.monitoring.monitor_models import Alert, Delivery

__all__ = ["alert_event", "deliver"]


def alert_event(alert: Alert) -> notify.Event:
    """The notification of ``alert`` (its id is the idempotency key)."""
    return notify.Event(
        kind="monitoring.alert",
        key=alert.id,
        summary=(
            f"driftline alert [{alert.severity}] monitor {alert.monitor} "
            f"(deployment {alert.deployment}) check {alert.check}: {alert.message}"
        ),
        body={"alert": alert.to_dict()},
        source="monitoring",
    )


def deliver(alert: Alert, delivery: Delivery, policy: DeliveryPolicy) -> Delivery:
    """Deliver ``alert`` to ``delivery.channel``; the delivery's new state."""
    sent = notify.deliver(delivery.channel, alert_event(alert), policy)
    return replace(
        delivery,
        state="delivered" if sent.delivered else "failed",
        attempts=delivery.attempts + sent.attempts,
        last_error=sent.error,
        updated_at=utcnow(),
    )
