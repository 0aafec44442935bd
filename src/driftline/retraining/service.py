"""The retraining stage's service: trace, reproduce and maturity over the other stages.

Everything here reads the other stages' records through their services (tracking,
data, registry, monitoring) and the prediction log's files (serving's layout); it
keeps retraining policies and cycles (:mod:`.loop`); a version's lineage names the
cycle (and alert) that made it.

Remote workspaces: ``trace`` and ``maturity`` are answered by the team server, which
reads its own prediction log and sees every stage's records. Given ``log_root=`` (a
prediction log the client can read itself, such as a shared ``s3://`` store), they are
computed here instead, with the registry, tracking and data links read over the
server's API; monitoring's stored references are then not visible. Policies and cycles
(:attr:`RetrainingService.policies`) are the server's, over HTTP (see
:mod:`driftline.retraining._http`); the agent beside the server drives the cycles.
``reproduce`` runs the re-run locally, recording into the same server.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from driftline.errors import DriftlineError, InvalidArgumentError, NotFoundError
from driftline.retraining import MAX_TRACE_DAYS, TRACE_DAYS
from driftline.retraining.lineage import (
    LogSearch,
    find_predictions,
    log_search,
    version_lineage,
)
from driftline.retraining.maturity import CapabilityCheck, ModelMaturity, assess
from driftline.retraining.models import ReproduceReport, Trace, VersionLineage

if TYPE_CHECKING:
    from driftline.core.artifacts import ContentStore
    from driftline.data import DataService
    from driftline.monitoring import MonitoringService
    from driftline.registry import ModelVersion, RegistryService
    from driftline.retraining._http import HttpRetrainer
    from driftline.retraining.cycles import Cycle, TriggerOutcome
    from driftline.retraining.loop import Retrainer
    from driftline.retraining.policy import RetrainPolicy
    from driftline.settings import Settings
    from driftline.tracking import TrackingService

__all__ = ["RetrainingCycles", "RetrainingService"]

# A deployment's name, as serving accepts it (it names a folder of the log).
_DEPLOYMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")


def _check_request_id(request_id: object) -> str:
    from driftline.serving import is_request_id

    if not isinstance(request_id, str) or not request_id.strip():
        raise InvalidArgumentError("Give the request id a prediction was answered with")
    text = request_id.strip()
    if not is_request_id(text):
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise InvalidArgumentError(
            f"Invalid request id {shown!r}: serving logs request ids of 1 to 128 letters, "
            "digits, '.', '_', ':', '-' (it answers any other with one of its own)"
        )
    return text


def _check_days(days: object) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TRACE_DAYS:
        raise InvalidArgumentError(
            f"days must be a whole number from 1 to {MAX_TRACE_DAYS} (got {days!r}): a "
            "trace reads one folder of the prediction log per day and deployment"
        )


def _not_found(
    request_id: str, search: LogSearch, deployment: str | None, days: int, root: str
) -> str:
    where = f"deployment {deployment!r}" if deployment else "every deployment"
    text = (
        f"No prediction with request id {request_id!r} {search.describe()} in {where} of "
        f"the prediction log at {root}. "
    )
    if search.request_day is not None:
        # A generated id is logged the moment it is made: other days cannot hold it.
        return text + (
            "This id is a UUIDv7 (as serving generates them), which carries the day it "
            "was made: it is logged on that day, so no other day is searched. A "
            "sampled-out request (--log-sample) is not logged."
        )
    widen = (
        f"Look further back with --days N (days=N, ?days=N; at most {MAX_TRACE_DAYS})"
        if days < MAX_TRACE_DAYS
        else f"{MAX_TRACE_DAYS} days is the most a trace searches"
    )
    return text + (
        f"{widen}; name the deployment (--deployment) to search less. Request ids are in "
        "the X-Request-ID header of each answer; a sampled-out request (--log-sample) is "
        "not logged."
    )


class RetrainingCycles(Protocol):
    """Policies and cycles as users reach them: on the workspace's database
    (:class:`~driftline.retraining.loop.Retrainer`) or on a team server
    (:class:`~driftline.retraining._http.HttpRetrainer`)."""

    def apply(
        self, source: str | Path | Mapping[str, Any], *, check_pipeline: bool = True
    ) -> RetrainPolicy:
        """Check a policy (file, YAML text or mapping) and store it."""
        ...

    def policy(self, model: str) -> RetrainPolicy:
        """``model``'s applied policy."""
        ...

    def run(
        self, model: str, workspace: Any, *, payload: Mapping[str, Any] | None = None
    ) -> TriggerOutcome:
        """A manual trigger (driven here when the workspace has the database)."""
        ...

    def status(self, model: str) -> Cycle | None:
        """``model``'s newest cycle."""
        ...

    def history(self, model: str, *, limit: int | None = 100) -> list[Cycle]:
        """``model``'s cycles, newest first."""
        ...

    def cycle(self, cycle_id: str) -> Cycle:
        """One cycle by id."""
        ...


class RetrainingService:
    """Lineage, reproduction and maturity of the workspace's models."""

    def __init__(
        self,
        *,
        settings: Settings,
        content: ContentStore,
        tracking: TrackingService,
        data: DataService,
        registry: RegistryService,
        monitoring: MonitoringService,
        prediction_log: str,
        remote: bool = False,
        retrainer: Retrainer | None = None,
        server: HttpRetrainer | None = None,
    ) -> None:
        self.settings = settings
        self.content = content
        self.tracking = tracking
        self.data = data
        self.registry = registry
        self.monitoring = monitoring
        self.prediction_log = prediction_log
        self.remote = remote
        self._retrainer = retrainer
        self._server = server

    @property
    def cycles(self) -> Retrainer:
        """The engine of retraining cycles on the workspace's database (what drives them,
        see :mod:`driftline.retraining.loop`); users reach policies through
        :attr:`policies`, which works on a remote workspace too."""
        if self._retrainer is None:
            raise InvalidArgumentError(
                "Driving retraining cycles needs the metadata database: against a team "
                "server, run `driftline agent` beside the server (on its database)"
            )
        return self._retrainer

    @property
    def policies(self) -> RetrainingCycles:
        """Retraining policies and cycles: apply, run, status, history (on a team
        server's over HTTP for a remote workspace)."""
        if self._server is not None:
            return self._server
        return self.cycles

    # -- trace ------------------------------------------------------------------------

    def trace(
        self,
        request_id: str,
        *,
        deployment: str | None = None,
        days: int = TRACE_DAYS,
        log_root: str | None = None,
    ) -> Trace:
        """From a request id in the prediction log to everything behind its answer.

        The log is searched on a bounded number of days: a request id driftline made (a
        UUIDv7, which carries its day) on its own day and the days beside it; any other
        (a client's ``X-Request-ID``) in the last ``days`` days.

        Args:
            request_id: The ``X-Request-ID`` a prediction was answered with.
            deployment: Look only in this deployment's log (faster on a large log).
            days: How many days back to look for an id that carries no day (1 to
                :data:`~driftline.retraining.MAX_TRACE_DAYS`, default
                :data:`~driftline.retraining.TRACE_DAYS`).
            log_root: The prediction log's folder or URL, when it is not this
                workspace's (a remote client reading a shared log itself; without it a
                remote workspace asks the server, which reads its own log).

        Raises:
            InvalidArgumentError: The request id is not one serving accepts, the
                deployment name is invalid, or ``days`` is out of range.
            NotFoundError: No prediction with this request id on the days searched
                (the message names them and how to look further back).

        Example:
            >>> t = service.trace("0190f2a4c3e27b1d8f0e4a5b6c7d8e9f")      # doctest: +SKIP
            >>> t = service.trace("order-42", deployment="churn", days=30)  # doctest: +SKIP
            >>> t.versions[0].run.code.commit                              # doctest: +SKIP
        """
        request_id = _check_request_id(request_id)
        if deployment is not None and not _DEPLOYMENT.match(deployment):
            raise InvalidArgumentError(
                f"Invalid deployment name {deployment!r}: use letters, digits, '_', '.', '-'"
            )
        _check_days(days)
        if self._server is not None and log_root is None:
            try:
                return self._server.trace(request_id, deployment=deployment, days=days)
            except NotFoundError as exc:
                raise NotFoundError(
                    f"{exc} This is a remote workspace: the server looked in its own "
                    "prediction log; to read one a serving process wrote elsewhere, pass "
                    "log_root (--log-root)."
                ) from None
        root = log_root or self.prediction_log
        search = log_search(request_id, days=days)
        rows = find_predictions(root, request_id, search, deployment=deployment)
        if not rows:
            raise NotFoundError(_not_found(request_id, search, deployment, days, root))
        seen: dict[tuple[str, int], VersionLineage] = {}
        for row in rows:
            key = (row.model, row.model_version)
            if key not in seen:
                seen[key] = self.lineage(f"{row.model}/{row.model_version}")
        return Trace(request_id=request_id, predictions=tuple(rows), versions=tuple(seen.values()))

    def lineage(self, ref: str) -> VersionLineage:
        """Everything recorded behind a model version (``churn/4``, ``churn@champion``)."""
        version = self.registry.get_version(ref)
        lineage = version_lineage(version, tracking=self.tracking, data=self.data)
        if self._retrainer is None:
            return lineage
        cycle = self._retrainer.store.cycle_of_version(version.name, version.version)
        if cycle is None:
            return lineage
        link = {
            "id": cycle.id,
            "state": cycle.state.value,
            "trigger": cycle.cause.kind,
            "trigger_ref": cycle.cause.ref,
            "run_id": cycle.run_id or "",
        }
        if cycle.cause.kind == "alert":
            link["alert"] = cycle.cause.ref
        return dataclasses.replace(lineage, retraining_cycle=link)

    # -- reproduce ----------------------------------------------------------------------

    def reproduce(
        self,
        ref: str,
        *,
        repo: str | Path | None = None,
        code: str = "recorded",
        apply_diff: bool = True,
        tolerances: Mapping[str, float] | None = None,
        default_tolerance: float | None = None,
        timeout: float | None = None,
    ) -> ReproduceReport:
        """Re-run what produced a version and compare (see :mod:`~.reproduce`).

        The re-run does everything its pipeline or command does, against this workspace:
        a script that registers its model registers a new version of it.

        Args:
            ref: The version, ``churn/4`` (or an alias, ``churn@champion``).
            repo: A folder inside the git repository the model was trained from
                (default: the working directory); the re-run starts in the same folder
                of a temporary worktree at the recorded commit.
            code: ``recorded`` (the run's commit) or ``current`` (this checkout, for
                runs that recorded no commit).
            apply_diff: Apply the recorded uncommitted changes of a dirty run.
            tolerances: Largest absolute difference accepted, per metric.
            default_tolerance: For metrics not in ``tolerances`` (default ``1e-6``).
            timeout: Seconds the re-run may take.

        Raises:
            MissingLineageError: A link the re-run needs is not recorded (``link`` names
                it: run, entry point, code commit, repository, data version).
            UserCodeError: The re-run failed (its output's tail is in the message).

        Example:
            >>> report = dl.reproduce("churn/4", tolerances={"auc": 0.005})  # doctest: +SKIP
            >>> report.reproduced, report.model_files_match                   # doctest: +SKIP
        """
        from driftline.retraining.reproduce import DEFAULT_TOLERANCE, Reproducer

        version = self.registry.get_version(ref)
        lineage = version_lineage(version, tracking=self.tracking, data=self.data)
        reproducer = Reproducer(
            settings=self.settings,
            content=self.content,
            tracking=self.tracking,
            data=self.data,
            registry=self.registry,
        )
        return reproducer.reproduce(
            version,
            lineage,
            repo=Path(repo) if repo is not None else None,
            code=code,
            apply_diff=apply_diff,
            tolerances=tolerances,
            default_tolerance=DEFAULT_TOLERANCE if default_tolerance is None else default_tolerance,
            timeout=timeout,
        )

    # -- maturity -----------------------------------------------------------------------

    def maturity(
        self, model: str | None = None, *, log_root: str | None = None
    ) -> list[ModelMaturity]:
        """Each registered model's MLOps maturity level (see :mod:`~.maturity`), by name.

        A model is assessed on its newest version's lineage and on everything its history
        records (gated promotions, approvals, served variants, audit entries).

        Args:
            model: One model (default: every registered model).
            log_root: The prediction log's folder or URL, when it is not this
                workspace's (as for :meth:`trace`).

        Example:
            >>> [(m.model, m.level) for m in dl.maturity()]               # doctest: +SKIP
        """
        if self._server is not None and log_root is None:
            return self._server.maturity(model)
        names = [model] if model is not None else [m.name for m in self.registry.list_models()]
        if model is not None:
            self.registry.get_model(model)
        served = self._served_variants(log_root or self.prediction_log)
        references = self._references()
        audit_ok = self._audit_ok()
        return [
            assess(name, self._checks(name, served.get(name, set()), references, audit_ok))
            for name in names
        ]

    def _checks(
        self, name: str, variants: set[str], references: int | None, audit_ok: bool | None
    ) -> dict[str, CapabilityCheck]:
        versions = self.registry.list_versions(name)
        newest = max(versions, key=lambda v: v.version) if versions else None
        lineage = (
            None
            if newest is None
            else version_lineage(newest, tracking=self.tracking, data=self.data)
        )
        run = None if lineage is None else lineage.run
        checks: dict[str, CapabilityCheck] = {}

        def check(key: str, present: bool, evidence: str) -> None:
            checks[key] = CapabilityCheck(name=key, present=present, evidence=evidence)

        ref = newest.ref if newest else name
        check(
            "tracked_runs",
            run is not None,
            f"{ref} comes from run {run.id}" if run else f"{ref} has no run (or no versions)",
        )
        check(
            "data_versions",
            bool(run and run.inputs),
            "no run"
            if run is None
            else f"its run read {', '.join(i.ref for i in run.inputs)}"
            if run.inputs
            else "its run recorded no dataset versions",
        )
        code = run.code if run else None
        check(
            "code_versions",
            bool(code and code.commit and code.dirty is False),
            "no commit recorded"
            if not code or not code.commit
            else f"commit {code.commit[:12]}" + (" with uncommitted changes" if code.dirty else ""),
        )
        pipeline = run.pipeline if run else None
        check(
            "pipeline",
            pipeline is not None,
            f"made by pipeline {pipeline.pipeline} (run {pipeline.run_id})"
            if pipeline
            else "not made by a pipeline",
        )
        audit = self._audit(name)
        gated = [e for e in audit if e.action == "alias_promote" and (e.after or {}).get("gates")]
        check(
            "registry_gates",
            bool(gated),
            f"{len(gated)} gated promotion(s), latest to {gated[0].entity}"
            if gated
            else "no promotion through gates",
        )
        check(
            "served",
            bool(variants),
            f"answered as {', '.join(sorted(variants))}" if variants else "no logged predictions",
        )
        rollout = variants & {"canary", "shadow"}
        check(
            "progressive_rollout",
            bool(rollout),
            f"{', '.join(sorted(rollout))} traffic logged" if rollout else "no canary or shadow",
        )
        approvals = self._approvals(name, versions)
        check("approvals", approvals is not None, approvals or "no approval policy or sign-off")
        check(
            "audit",
            bool(audit) and audit_ok is True,
            (f"{len(audit)} audited change(s)" if audit else "no audited change")
            + ("" if audit_ok is not False else "; the audit chain does not verify"),
        )
        check(
            "monitoring",
            bool(variants) and bool(references),
            f"served, {references} drift reference(s) stored"
            if variants and references
            else (
                "monitoring references are not visible from a remote workspace"
                if references is None
                else "no drift reference stored"
                if variants
                else "not served, so not monitored"
            ),
        )
        has_policy = self._has_policy(name)
        check(
            "retraining_policy",
            has_policy,
            "a retraining policy is applied" if has_policy else "no retraining policy",
        )
        return checks

    def _has_policy(self, name: str) -> bool:
        try:
            self.policies.policy(name)
        except NotFoundError:
            return False
        return True

    def _audit(self, name: str) -> list[Any]:
        return self.registry.audit_log(model=name, limit=None)

    def _audit_ok(self) -> bool | None:
        try:
            return bool(self.registry.verify_audit().ok)
        except DriftlineError:
            return None

    def _approvals(self, name: str, versions: list[ModelVersion]) -> str | None:
        store = self.registry.store
        aliases = sorted({a for v in versions for a in v.aliases})
        policies = {a: store.policy(a) for a in aliases}
        required = {a: n for a, n in policies.items() if n}
        if required:
            return ", ".join(f"{a} needs {n} approval(s)" for a, n in required.items())
        signed = sum(len(store.list_approvals(name, v.version)) for v in versions)
        return f"{signed} approval(s) recorded" if signed else None

    def _references(self) -> int | None:
        if self.remote:
            return None
        return len(self.monitoring.list_references())

    def _served_variants(self, root: str) -> dict[str, set[str]]:
        """Model name -> the variants it answered as, from the whole prediction log."""
        from fsspec.core import url_to_fs

        fs, base = url_to_fs(root.rstrip("/"))
        if not fs.exists(base):
            return {}
        files = [
            f
            for f in fs.glob(f"{str(base).rstrip('/')}/deployment=*/date=*/*.parquet")
            if not str(f).rsplit("/", 1)[-1].startswith(".")
        ]
        if not files:
            return {}
        import pyarrow.dataset as ds

        table = ds.dataset(files, format="parquet", filesystem=fs).to_table(
            columns=["model", "variant"]
        )
        pairs = table.group_by(["model", "variant"]).aggregate([]).to_pylist()
        found: dict[str, set[str]] = {}
        for pair in pairs:
            found.setdefault(pair["model"], set()).add(pair["variant"])
        return found

    def referenced_digests(self) -> set[str]:
        """Nothing yet: this stage stores no objects (its gc roots)."""
        return set()
