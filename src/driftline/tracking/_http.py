"""The remote backend of tracking: the store protocols over a driftline server's REST API.

:class:`HttpTrackingStore` implements :class:`~driftline.tracking.store.TrackingStore`
and :class:`~driftline.tracking.store.RunArtifactStore` with the routes of
``driftline.server.routes.tracking``. Records travel through
:mod:`driftline.api.codec`; errors come back as the same :mod:`driftline.errors` class.

Logging: the background writer hands over a batch; :meth:`HttpTrackingStore.write_batch`
sends it as ONE ``POST /batches`` with a columnar body and an idempotency key. The key
is stored on the batch before the first attempt, so every retry of that batch (by the
HTTP client after a lost answer, or by the writer after the server was down) carries
the same key and the server writes its points once.

Search: the service has already parsed the user's filter into a tree; it goes to the
server as filter text again (:func:`filter_text`), which the server parses with the
same parser, so the REST API takes the language users write.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from driftline.api.codec import decode, decode_float, encode
from driftline.core.clock import from_ms
from driftline.core.ids import new_id
from driftline.errors import NotFoundError
from driftline.tracking.models import (
    ArtifactEntry,
    Experiment,
    LifecycleStage,
    MetricPoint,
    Run,
    RunStatus,
)
from driftline.tracking.search import And, Comparison, Node, Not, Or, OrderBy
from driftline.tracking.store import LogBatch, RunQuery, TrackingCapabilities

if TYPE_CHECKING:
    from driftline.api.client import ApiClient

__all__ = ["HttpTrackingStore", "filter_text", "order_text"]

_JSON = {"Content-Type": "application/json"}
# A batch body above this is sent in parts (the server refuses bodies over 32 MiB):
# only batches of very long params or tags get there.
_MAX_BODY = 16 * 1024 * 1024


def _segment(value: str) -> str:
    """A path segment: ids come from users too, so nothing in them may reshape the URL."""
    # "." and ".." would be folded away as dot segments on the way.
    return quote(value, safe="").replace(".", "%2E")


class HttpTrackingStore:
    """Tracking records kept by a driftline server.

    Args:
        client: The shared client of the server (``Workspace`` opens it).
    """

    # What the server's SQL store supports: search, batched writes, one transaction
    # per batch (a test pins that this matches SqlTrackingStore).
    # latest_points and child_runs are one-transaction shortcuts of SQL stores, which
    # only code next to the database uses (the service falls back to the general calls).
    capabilities = TrackingCapabilities()

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"HttpTrackingStore({self.client.base_url!r})"

    # -- experiments --------------------------------------------------------------

    def create_experiment(
        self, *, name: str, description: str | None, tags: dict[str, str]
    ) -> Experiment:
        data = self.client.post_json(
            "experiments", {"name": name, "description": description, "tags": tags}
        )
        return decode(Experiment, data)

    def find_experiment(
        self, *, id: str | None = None, name: str | None = None
    ) -> Experiment | None:
        try:
            if id:
                data = self.client.get_json(f"experiments/{_segment(id)}")
            elif name is not None:
                data = self.client.get_json("experiments/by-name", params={"name": name})
            else:
                return None
        except NotFoundError:
            return None
        return decode(Experiment, data)

    def list_experiments(
        self, *, include_deleted: bool, max_results: int, offset: int
    ) -> list[Experiment]:
        data = self.client.get_json(
            "experiments",
            params={
                "include_deleted": "true" if include_deleted else "false",
                "max_results": max_results,
                "offset": offset,
            },
        )
        return [decode(Experiment, item) for item in data["experiments"]]

    def set_experiment_lifecycle(self, experiment_id: str, stage: LifecycleStage) -> Experiment:
        data = self.client.put_json(
            f"experiments/{_segment(experiment_id)}/lifecycle", {"stage": stage.value}
        )
        return decode(Experiment, data)

    # -- runs ---------------------------------------------------------------------

    def create_run(
        self,
        *,
        experiment_id: str,
        name: str,
        user: str,
        start_time: int,
        parent_id: str | None,
        tags: dict[str, str],
    ) -> Run:
        data = self.client.post_json(
            "runs",
            {
                "experiment_id": experiment_id,
                "name": name,
                "user": user,
                "start_time": start_time,
                "parent_id": parent_id,
                "tags": tags,
            },
        )
        return decode(Run, data)

    def find_run(self, run_id: str) -> Run | None:
        try:
            return decode(Run, self.client.get_json(f"runs/{_segment(run_id)}"))
        except NotFoundError:
            return None

    def update_run_status(
        self, run_id: str, *, status: RunStatus, end_time: int | None, expected: RunStatus
    ) -> Run:
        data = self.client.post_json(
            f"runs/{_segment(run_id)}/status",
            {"status": status.value, "end_time": end_time, "expected": expected.value},
        )
        return decode(Run, data)

    def set_run_lifecycle(self, run_id: str, stage: LifecycleStage) -> Run:
        data = self.client.put_json(f"runs/{_segment(run_id)}/lifecycle", {"stage": stage.value})
        return decode(Run, data)

    # -- logging ------------------------------------------------------------------

    def write_batch(self, batch: LogBatch) -> list[str]:
        """Send a batch in one request; the server answers its param conflicts."""
        from driftline.api.tracking import encode_log_batch

        if not batch.key:
            batch.key = new_id()  # kept on the batch: a retry of it sends the same key
        body = encode_log_batch(
            batch.key, batch.metrics, batch.params, batch.tags, batch.heartbeats
        )
        if len(body) > _MAX_BODY and len(batch) > 1:
            return self._write_in_parts(batch)
        response = self.client.request(
            "POST", "batches", content=body, headers=_JSON, idempotent=True
        )
        import orjson

        return list(orjson.loads(response.content)["conflicts"])

    def _write_in_parts(self, batch: LogBatch) -> list[str]:
        # Halve the rows of each kind; each half gets a key derived from the batch's, so
        # a retry of the whole batch re-sends the same parts under the same keys.
        halves = []
        for index in range(2):
            part = LogBatch(key=_derived_key(batch.key, str(index)))
            for kind in ("metrics", "params", "tags"):
                rows = getattr(batch, kind)
                middle = len(rows) // 2
                setattr(part, kind, rows[:middle] if index == 0 else rows[middle:])
            halves.append(part)
        halves[0].heartbeats = batch.heartbeats
        return self.write_batch(halves[0]) + self.write_batch(halves[1])

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        data = self.client.get_json(f"runs/{_segment(run_id)}/metric-history", params={"key": key})
        return [
            MetricPoint(
                key=key,
                value=value if type(value) is float else decode_float(value),
                step=step,
                timestamp=from_ms(stamp),
            )
            for value, step, stamp in zip(
                data["value"], data["step"], data["timestamp"], strict=True
            )
        ]

    # -- search -------------------------------------------------------------------

    def search_runs(self, query: RunQuery) -> list[Run]:
        body: dict[str, Any] = {
            "experiment_ids": None if query.experiment_ids is None else list(query.experiment_ids),
            "filter": None if query.filter is None else filter_text(query.filter),
            "order_by": [order_text(term) for term in query.order_by],
            "max_results": query.max_results,
            "offset": query.offset,
            "lifecycle": None if query.lifecycle is None else query.lifecycle.value,
        }
        # A search only reads: safe to retry.
        data = self.client.post_json("runs/search", body, idempotent=True)
        return [decode(Run, item) for item in data["runs"]]

    # -- artifacts ----------------------------------------------------------------

    def add_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry]) -> None:
        if not entries:
            return
        # Recording the same entries twice changes nothing: safe to retry.
        self.client.request(
            "POST",
            f"runs/{_segment(run_id)}/artifacts",
            json={"artifacts": [encode(entry) for entry in entries]},
            idempotent=True,
        )

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        params = {"prefix": prefix} if prefix else None
        data = self.client.get_json(f"runs/{_segment(run_id)}/artifacts", params=params)
        return [decode(ArtifactEntry, item) for item in data["artifacts"]]

    def artifact_digests(self) -> set[str]:
        return set(self.client.get_json("run-artifacts/digests")["digests"])


def _derived_key(key: str, part: str) -> str:
    import hashlib

    return hashlib.blake2b(f"{key}/{part}".encode(), digest_size=16).hexdigest()


# -- the search tree as text again ---------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_\-./:]+")


def filter_text(node: Node) -> str:
    """Filter text that parses back to ``node`` (the inverse of ``parse_filter``).

    Parentheses appear only where the tree needs them, and a negated ``in``, ``like``,
    ``ilike`` or ``is null`` is written with its own ``not``, so the text nests no deeper
    than the filter it came from and stays within the language's depth limit.
    """
    if isinstance(node, And | Or):
        word = " and " if isinstance(node, And) else " or "
        # ``and`` binds tighter than ``or``: only an Or in an And, or a group of the same
        # kind (kept as its own node), needs parentheses.
        grouped = (And, Or) if isinstance(node, And) else (Or,)
        return word.join(
            f"({filter_text(item)})" if isinstance(item, grouped) else filter_text(item)
            for item in node.items
        )
    if isinstance(node, Not):
        item = node.item
        if isinstance(item, Comparison) and item.op in ("in", "like", "ilike", "is null"):
            return _comparison_text(item, negated=True)
        if isinstance(item, And | Or):
            return f"not ({filter_text(item)})"
        return f"not {filter_text(item)}"
    return _comparison_text(node)


def order_text(term: OrderBy) -> str:
    """An ordering term as text, e.g. ``metrics.auc desc``."""
    return f"{_field_text(term.field.kind, term.field.key)} {'desc' if term.descending else 'asc'}"


def _comparison_text(node: Comparison, *, negated: bool = False) -> str:
    field = _field_text(node.field.kind, node.field.key)
    if node.op == "is null":
        return f"{field} is not null" if negated else f"{field} is null"
    if isinstance(node.value, tuple):
        value = "(" + ", ".join(_value_text(v) for v in node.value) + ")"
    else:
        value = _value_text(node.value)
    return f"{field} {'not ' if negated else ''}{node.op} {value}"


def _field_text(kind: str, key: str) -> str:
    if _BARE_KEY.fullmatch(key):
        return f"{kind}s.{key}"
    quote_char = "`" if "`" not in key else '"'
    return f"{kind}s.{quote_char}{key}{quote_char}"


def _value_text(value: str | float | int | None) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, float):
        if value in (float("inf"), float("-inf")):
            return "1e999" if value > 0 else "-1e999"  # parses back to the infinity
        return repr(value)
    return str(value)
