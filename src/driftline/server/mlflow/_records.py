"""MLflow facts driftline has no table for, kept as small JSON artifacts of their run.

MLflow records a run's dataset inputs (name, digest, source, schema of a dataset it
never stores), its model outputs, and "logged models" (MLflow 3: a model with its own
id, status, tags and params). driftline's data versions are content it stores, so an
MLflow dataset description is not one; and driftline has no logged-model table. Rather
than a new table (which needs a migration), each such fact is a JSON file among the
run's artifacts, under ``.mlflow/<kind>/<name>.json``:

- ``.mlflow/inputs/<hash>.json``: one MLflow ``DatasetInput`` (the hash of its dataset
  and tags makes logging the same input twice idempotent);
- ``.mlflow/outputs/<model id>.json``: one ``ModelOutput`` (model id and step);
- ``.mlflow/models/<model id>.json``: one logged model (see ``logged_models``).

They are ordinary run artifacts (``driftline artifacts list`` shows them, garbage
collection keeps them), written through the tracking service's run-artifact index. A
tag ``driftline.mlflow.<kind> = 1`` marks runs that have records of a kind, so a run
without any costs no extra read and logged models can be found by a run search.

An update (:meth:`RunRecords.update`) rewrites the whole file, as a compare-and-set on
the run's artifact index: when two clients change the same logged model at the same
instant, the second sees the first's change and applies its own on top, so neither is
lost. These records cannot be deleted (run artifacts cannot be); a
``mlflow_logged_models`` table would allow it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from driftline.core.clock import utcnow
from driftline.core.jsonvalues import check_json_value
from driftline.errors import ConflictError
from driftline.server.mlflow._views import INTERNAL_TAG_PREFIX
from driftline.tracking.models import ArtifactEntry, Run
from driftline.tracking.search import parse_filter
from driftline.tracking.store import ConditionalArtifacts, RunQuery

if TYPE_CHECKING:
    from driftline.workspace import Workspace

__all__ = ["RECORDS_FOLDER", "RunRecords"]

RECORDS_FOLDER = ".mlflow"
_SEARCH_PAGE = 1000
# Tries of an update that keeps losing compare-and-set races to other updates.
_UPDATE_ATTEMPTS = 20


def marker_tag(kind: str) -> str:
    """The run tag that says a run has records of ``kind``."""
    return f"{INTERNAL_TAG_PREFIX}{kind}"


class RunRecords:
    """Read and write the JSON records of runs in one workspace."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def put(self, run: Run, kind: str, name: str, data: dict[str, Any]) -> Run:
        """Write (or replace) the record ``name`` of ``kind`` for ``run``; return the run
        as it is now (with the marker tag)."""
        self.ws.tracking.artifacts.add_artifacts(run.id, [self._stored(kind, name, data)])
        return self._marked(run, kind)

    def update(
        self,
        run: Run,
        kind: str,
        name: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any]],
    ) -> dict[str, Any]:
        """Replace the record ``name`` with ``change(its current value or None)``, as a
        compare-and-set: if another update lands in between, ``change`` runs again on
        its result. Returns the record written."""
        artifacts = self.ws.tracking.artifacts
        for _attempt in range(_UPDATE_ATTEMPTS):
            current = self._entry(run, kind, name)
            data = change(None if current is None else self._read(current))
            entry = self._stored(kind, name, data)
            if not isinstance(artifacts, ConditionalArtifacts):
                # Only a remote client's store lacks it, and records live on the server.
                artifacts.add_artifacts(run.id, [entry])
            elif not artifacts.replace_artifact(
                run.id, entry, expected=None if current is None else current.digest
            ):
                continue
            self._marked(run, kind)
            return data
        raise ConflictError(
            f"The record {name} of run {run.id} kept changing under this update; try again"
        )

    def get(self, run: Run, kind: str, name: str) -> dict[str, Any] | None:
        """The record ``name`` of ``kind``, or ``None``."""
        entry = self._entry(run, kind, name)
        return None if entry is None else self._read(entry)

    def _entry(self, run: Run, kind: str, name: str) -> ArtifactEntry | None:
        path = f"{RECORDS_FOLDER}/{kind}/{name}.json"
        if run.tags.get(marker_tag(kind)) == "1":
            for entry in self.ws.tracking.artifacts.list_artifacts(run.id, path):
                if entry.path == path:
                    return entry
        return None

    def _stored(self, kind: str, name: str, data: dict[str, Any]) -> ArtifactEntry:
        # A record carries what clients sent (params, tags, metric points): bounded like
        # every stored JSON value, so a listing can always read it back.
        data = check_json_value(data, f"The MLflow {kind} record {name!r}")
        raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        blob = self.ws.content.put_bytes(raw)
        return ArtifactEntry(
            path=f"{RECORDS_FOLDER}/{kind}/{name}.json",
            digest=blob.digest,
            size=blob.size,
            created_at=utcnow(),
        )

    def _marked(self, run: Run, kind: str) -> Run:
        """``run`` with the marker tag of ``kind`` (logged if it was missing)."""
        tag = marker_tag(kind)
        if run.tags.get(tag) == "1":
            return run
        self.ws.tracking.log_batch(run.id, tags={tag: "1"})
        return dataclasses.replace(run, tags={**run.tags, tag: "1"})

    def list(self, run: Run, kind: str) -> list[dict[str, Any]]:
        """Every record of ``kind`` of ``run``, by name."""
        if run.tags.get(marker_tag(kind)) != "1":
            return []
        entries = self.ws.tracking.artifacts.list_artifacts(run.id, f"{RECORDS_FOLDER}/{kind}")
        return [self._read(entry) for entry in entries if entry.path.endswith(".json")]

    def _read(self, entry: ArtifactEntry) -> dict[str, Any]:
        data = json.loads(self.ws.content.read_bytes(entry.digest, name=entry.path))
        return data if isinstance(data, dict) else {}

    def runs_with(self, kind: str, experiment_ids: Sequence[str] | None) -> Iterable[Run]:
        """Runs (deleted ones too) of these experiments that have records of ``kind``."""
        node = parse_filter(f"tags.`{marker_tag(kind)}` = '1'")
        offset = 0
        while True:
            page = self.ws.tracking.query_runs(
                RunQuery(
                    experiment_ids=experiment_ids,
                    filter=node,
                    max_results=_SEARCH_PAGE,
                    offset=offset,
                    lifecycle=None,
                )
            )
            yield from page
            if len(page) < _SEARCH_PAGE:
                return
            offset += _SEARCH_PAGE
