"""The remote backend of schedules, triggers, firings and the lease: the
:class:`~driftline.pipelines.automation_store.AutomationStore` protocol over HTTP.

Each method is one request to ``/api/v1/pipelines/records/...``
(:mod:`driftline.server.routes.pipeline_records`); the server does each
compare-and-set in one transaction, and stamps the lease and a firing's start and end
with its own clock (the ``now`` arguments are not sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from driftline.api.codec import decode, encode
from driftline.pipelines.records import Firing, FiringStatus, Lease, Schedule, Trigger

if TYPE_CHECKING:
    from driftline.api.client import ApiClient

__all__ = ["HttpAutomationStore"]

_ROOT = "pipelines/records"


def _seg(text: str) -> str:
    return quote(text, safe="")


class HttpAutomationStore:
    """:class:`~driftline.pipelines.automation_store.AutomationStore` of a server."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    # -- schedules ------------------------------------------------------------------

    def add_schedule(self, schedule: Schedule) -> Schedule:
        return decode(Schedule, self.client.post_json(f"{_ROOT}/schedules", encode(schedule)))

    def find_schedule(self, name: str) -> Schedule | None:
        found = self._schedules({"name": name})
        return found[0] if found else None

    def list_schedules(self) -> list[Schedule]:
        return self._schedules({})

    def _schedules(self, params: dict[str, str]) -> list[Schedule]:
        answer = self.client.get_json(f"{_ROOT}/schedules", params=params)
        return [decode(Schedule, item) for item in answer["schedules"]]

    def update_schedule(self, schedule_id: str, values: Mapping[str, Any]) -> None:
        self.client.patch_json(f"{_ROOT}/schedules/{_seg(schedule_id)}", dict(values))

    def delete_schedule(self, schedule_id: str) -> None:
        self.client.delete_json(f"{_ROOT}/schedules/{_seg(schedule_id)}")

    def advance_schedule(
        self, schedule_id: str, *, expected_due: int, next_due: int, firings: list[Firing]
    ) -> bool:
        body = {"expected_due": expected_due, "next_due": next_due, "firings": encode(firings)}
        answer = self.client.post_json(f"{_ROOT}/schedules/{_seg(schedule_id)}/advance", body)
        return bool(answer["advanced"])

    # -- triggers -------------------------------------------------------------------

    def add_trigger(self, trigger: Trigger) -> Trigger:
        return decode(Trigger, self.client.post_json(f"{_ROOT}/triggers", encode(trigger)))

    def find_trigger(self, name: str) -> Trigger | None:
        found = self._triggers({"name": name})
        return found[0] if found else None

    def list_triggers(self, *, kind: str | None = None, source: str | None = None) -> list[Trigger]:
        params = {k: v for k, v in (("kind", kind), ("source", source)) if v is not None}
        return self._triggers(params)

    def _triggers(self, params: dict[str, str]) -> list[Trigger]:
        answer = self.client.get_json(f"{_ROOT}/triggers", params=params)
        return [decode(Trigger, item) for item in answer["triggers"]]

    def delete_trigger(self, trigger_id: str) -> None:
        self.client.delete_json(f"{_ROOT}/triggers/{_seg(trigger_id)}")

    def advance_trigger(
        self, trigger_id: str, *, expected: int | None, cursor: int, firing: Firing | None
    ) -> bool:
        body = {"expected": expected, "cursor": cursor, "firing": encode(firing)}
        answer = self.client.post_json(f"{_ROOT}/triggers/{_seg(trigger_id)}/advance", body)
        return bool(answer["advanced"])

    # -- firings --------------------------------------------------------------------

    def add_firing(self, firing: Firing) -> bool:
        return bool(self.client.post_json(f"{_ROOT}/firings", encode(firing))["added"])

    def get_firing(self, firing_id: str) -> Firing | None:
        answer = self.client.get_json(f"{_ROOT}/firings/{_seg(firing_id)}")
        return None if answer is None else decode(Firing, answer)

    def list_firings(
        self,
        *,
        status: FiringStatus | None = None,
        origin_name: str | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[Firing]:
        params: dict[str, Any] = {"limit": limit, "oldest_first": oldest_first}
        if status is not None:
            params["status"] = status.value
        if origin_name is not None:
            params["origin_name"] = origin_name
        answer = self.client.get_json(f"{_ROOT}/firings", params=params)
        return [decode(Firing, item) for item in answer["firings"]]

    def start_firing(self, firing_id: str, *, agent: str, now: int) -> bool:
        del now  # the server's clock
        answer = self.client.post_json(f"{_ROOT}/firings/{_seg(firing_id)}/start", {"agent": agent})
        return bool(answer["started"])

    def set_firing_run(
        self, firing_id: str, *, run_id: str, resolved_params: Mapping[str, Any]
    ) -> None:
        body = {"run_id": run_id, "resolved_params": encode(dict(resolved_params))}
        self.client.post_json(f"{_ROOT}/firings/{_seg(firing_id)}/run", body)

    def end_firing(
        self, firing_id: str, *, status: FiringStatus, error: str | None, now: int
    ) -> None:
        del now  # the server's clock
        body = {"status": status.value, "error": error}
        self.client.post_json(f"{_ROOT}/firings/{_seg(firing_id)}/end", body)

    # -- the agent lease ------------------------------------------------------------

    def acquire_lease(
        self, name: str, *, holder: str, host: str, pid: int, now: int, ttl_ms: int
    ) -> tuple[bool, Lease | None]:
        del now  # the server's clock decides who holds it
        body = {"holder": holder, "host": host[:256], "pid": pid, "ttl_ms": ttl_ms}
        answer = self.client.post_json(f"{_ROOT}/leases/{_seg(name)}", body)
        lease = answer["lease"]
        return bool(answer["ours"]), None if lease is None else decode(Lease, lease)

    def release_lease(self, name: str, *, holder: str) -> None:
        self.client.delete_json(f"{_ROOT}/leases/{_seg(name)}", params={"holder": holder})

    def get_lease(self, name: str) -> Lease | None:
        answer = self.client.get_json(f"{_ROOT}/leases/{_seg(name)}")
        return None if answer is None else decode(Lease, answer)
