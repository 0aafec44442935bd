"""The pipeline-run store on top of tracking (see :mod:`driftline.pipelines.store`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from driftline.core.artifacts import ContentStore
from driftline.core.clock import utcnow
from driftline.errors import NotFoundError
from driftline.pipelines.models import OutputRef, PipelineRun, from_json, to_json
from driftline.tracking import ArtifactEntry, Run, RunStatus, TrackingService

__all__ = ["TAG_PIPELINE", "TrackingPipelineStore"]

TAG_PIPELINE = "driftline.pipeline"
TAG_MODULE = "driftline.pipeline.module"
TAG_RECORD = "driftline.pipeline.record"  # digest of the run's document
TAG_STEP = "driftline.pipeline.step"
TAG_PARENT = "driftline.pipeline.run"
TAG_KEY = "driftline.pipeline.cache_key"
RECORD_PATH = "pipeline/run.json"


class TrackingPipelineStore:
    """Pipeline runs as tracking runs; documents and outputs in the content store."""

    def __init__(self, tracking: TrackingService, content: ContentStore) -> None:
        self.tracking = tracking
        self.content = content
        self._experiments: dict[str, str] = {}  # pipeline run id -> its experiment's id

    def start_run(
        self,
        *,
        pipeline: str,
        module: str,
        experiment: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
    ) -> str:
        from driftline.tracking import current_run

        parent = current_run()
        run = self.tracking.create_run(
            experiment,
            name=pipeline,
            tags={TAG_PIPELINE: pipeline, TAG_MODULE: module, **tags},
            parent_id=parent.id if parent else None,
        )
        if params:
            self.tracking.log_batch(run.id, params={k: _text(v) for k, v in params.items()})
        self._experiments[run.id] = run.experiment_id
        return run.id

    def start_step(
        self,
        run_id: str,
        *,
        experiment: str,
        step: str,
        params: Mapping[str, str],
        key: str,
        run_name: str | None = None,
    ) -> Run:
        # One transaction per step start and one per end (see ``ChildRuns``): the
        # experiment and the parent were resolved when the pipeline run started.
        experiment_id = self._experiments.get(run_id)
        if experiment_id is None:
            experiment_id = self.tracking.get_run(run_id).experiment_id
            self._experiments[run_id] = experiment_id
        return self.tracking.start_child_run(
            experiment_id,
            parent_id=run_id,
            name=run_name or step,
            tags={TAG_STEP: step, TAG_PARENT: run_id, TAG_KEY: key},
            params=params,
        )

    def end_step(
        self,
        step_run_id: str,
        *,
        ok: bool,
        outputs: Mapping[str, OutputRef],
        traceback: str | None,
    ) -> None:
        now = utcnow()
        # Outputs are artifacts of the step's run: lineage, and gc keeps them.
        entries = [
            ArtifactEntry(
                path=f"outputs/{name}.{ref.serializer.partition('/')[0]}",
                digest=ref.digest,
                size=ref.size,
                created_at=now,
            )
            for name, ref in outputs.items()
        ]
        if traceback is not None:
            entries.append(self._entry(traceback.encode(), "traceback.txt"))
        status = RunStatus.FINISHED if ok else RunStatus.FAILED
        self.tracking.finish_child_run(step_run_id, status, entries)

    def _entry(self, data: bytes, path: str) -> ArtifactEntry:
        blob = self.content.put_bytes(data)
        return ArtifactEntry(path=path, digest=blob.digest, size=blob.size, created_at=utcnow())

    def save(self, run: PipelineRun, *, final: bool) -> None:
        data = json.dumps(to_json(run), sort_keys=True).encode()
        entry = self._entry(data, RECORD_PATH)
        self.tracking.artifacts.add_artifacts(run.id, [entry])
        self.tracking.log_batch(run.id, tags={TAG_RECORD: entry.digest})
        if final:
            status = RunStatus.FINISHED if run.status == "FINISHED" else RunStatus.FAILED
            self.tracking.end_run(run.id, status)
            self._experiments.pop(run.id, None)

    def get(self, run_id: str) -> PipelineRun:
        self.tracking.flush()
        run = self.tracking.get_run(run_id)
        digest = run.tags.get(TAG_RECORD)
        if TAG_PIPELINE not in run.tags:
            raise NotFoundError(f"Run {run_id} is not a pipeline run")
        if digest is None:
            raise NotFoundError(
                f"Pipeline run {run_id} has no record: its process stopped before writing "
                "it. Start the pipeline again; steps that finished are still in the cache "
                "only if a recorded run produced them"
            )
        return self._load(digest)

    def _load(self, digest: str) -> PipelineRun:
        return from_json(json.loads(self.content.read_bytes(digest, name="pipeline record")))

    def recent(self, pipeline: str, limit: int) -> list[PipelineRun]:
        self.tracking.flush()
        quoted = pipeline.replace("'", "''")
        page = self.tracking.search_runs(
            filter=f"tags.`{TAG_PIPELINE}` = '{quoted}'",
            order_by=["attributes.start_time desc"],
            max_results=limit,
        )
        found = []
        for run in page.items:
            digest = run.tags.get(TAG_RECORD)
            if digest is None:
                continue
            try:
                found.append(self._load(digest))
            except Exception:  # an unreadable old record only costs cache hits
                continue
        return found


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=repr)
