"""The monitoring rules: fit references once and reuse them, compare data with them.

A fitted reference is a JSON object in the content-addressed store, with a record in the
metadata database naming it and the data it was fitted on (a dataset version id or a file
digest, and the fitting settings). Asking again for the same data with the same settings
reuses the stored object instead of refitting; two names may share one object.

On a deployment's traffic: labels are stored by request id (:mod:`.labels`), the
prediction log is read one row per predicted row (:mod:`._traffic`), performance is
scored per window (:mod:`.scoring`, :mod:`.metrics`) and :meth:`MonitoringService.check`
runs drift, prediction drift, data quality (:mod:`.quality`) and performance per window.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from driftline.errors import InvalidArgumentError, NotFoundError
from driftline.monitoring._frames import Source, open_source
from driftline.monitoring.drift import compare
from driftline.monitoring.models import (
    CheckResult,
    DriftReport,
    DriftThresholds,
    PerformanceReport,
    PerformanceWindow,
    Reference,
    StoredReference,
    WindowCheck,
)
from driftline.monitoring.options import CHECKS
from driftline.monitoring.reference import fit, settings_key

if TYPE_CHECKING:
    from pathlib import Path

    from driftline.core.artifacts import ContentStore
    from driftline.core.notify import DeliveryPolicy
    from driftline.monitoring._http import HttpMonitorService, HttpTrafficService
    from driftline.monitoring.labels import LabelIngest
    from driftline.monitoring.monitor_store import MonitorStore
    from driftline.monitoring.monitors import MonitorService
    from driftline.monitoring.options import CheckOptions, PerformanceOptions
    from driftline.monitoring.quality import QualityThresholds
    from driftline.monitoring.store import LabelStore, ReferenceStore

__all__ = ["CHECKS", "MonitoringService"]


class MonitoringService:
    """Drift references and reports on one workspace's stores.

    ``store`` and ``content`` may be None (no workspace): references are then fitted in
    memory and nothing is stored.

    Example:
        >>> svc = MonitoringService(store, content)                     # doctest: +SKIP
        >>> record, ref = svc.fit_reference("customers@7", name="churn")  # doctest: +SKIP
        >>> svc.drift(ref, batch_df).drifted                            # doctest: +SKIP
    """

    def __init__(
        self,
        store: ReferenceStore | None,
        content: ContentStore | None,
        *,
        labels: LabelStore | None = None,
        log_root: str | None = None,
        cache: Path | None = None,
        monitor_store: MonitorStore | None = None,
        registry: Any = None,
        remote_monitors: HttpMonitorService | None = None,
        remote_traffic: HttpTrafficService | None = None,
        delivery: DeliveryPolicy | None = None,
    ) -> None:
        self.store = store
        self.content = content
        self.labels = labels
        self.log_root = log_root  # the prediction log serving writes
        self.cache = cache  # flattened prediction-log files (see ._traffic)
        self.registry = registry  # the registry stage's service: model lineage
        # A remote workspace: labels, performance and checks are the server's.
        self.remote_traffic = remote_traffic
        self._monitors: MonitorService | HttpMonitorService | None = remote_monitors
        if monitor_store is not None and log_root is not None:
            from driftline.monitoring.monitors import MonitorService

            self._monitors = MonitorService(self, monitor_store, log_root, delivery)

    @property
    def monitors(self) -> MonitorService | HttpMonitorService:
        """The workspace's monitors and alerts (see :mod:`driftline.monitoring.monitors`)."""
        if self._monitors is None:
            raise InvalidArgumentError(
                "Monitors need a workspace (a metadata database or a driftline server); "
                "open one with dl.configure(...)"
            )
        return self._monitors

    def training_data(self, model: str, version: int) -> str | None:
        """The dataset version a registered model version was trained on (lineage: the
        first version its run read), or None when none was recorded."""
        if self.registry is None:
            return None
        found = self.registry.get_version(f"{model}/{version}")
        if not found.run_id:
            return None
        inputs = self.registry.data.store.run_inputs(found.run_id)
        return str(inputs[0].ref) if inputs else None

    def signature_inputs(self, model: str, version: int) -> list[str] | None:
        """The input columns of a registered model version's signature (its package's), or
        None when they are unknown: no registry, an unregistered version, no signature or
        a tensor signature."""
        from driftline.errors import DriftlineError
        from driftline.models import Signature

        if self.registry is None:
            return None
        try:
            found = self.registry.get_version(f"{model}/{version}")
        except DriftlineError:
            return None
        if not found.signature:
            return None
        try:
            signature = Signature.from_dict(found.signature)
        except (DriftlineError, KeyError, TypeError, ValueError):
            return None
        return None if signature.is_tensor else signature.input_names

    def model_inputs(
        self, deployment: str, since: datetime, until: datetime, traffic: list[str]
    ) -> list[str]:
        """The model's input columns for ``deployment``'s traffic in ``[since, until)``: the
        signature inputs of the version that served its newest request when known, else
        ``traffic`` (the input columns the traffic has). Checks compare only these: a
        reference fitted on training data also holds the target, which serving never sees.
        """
        from driftline.monitoring._traffic import newest_model

        if self.log_root is not None and self.registry is not None:
            found = newest_model(self.log_root, deployment, since, until)
            if found is not None:
                names = self.signature_inputs(*found)
                if names:
                    return names
        return list(traffic)

    # -- references -------------------------------------------------------------------

    def fit_reference(
        self, source: Any, *, name: str | None = None, refit: bool = False
    ) -> tuple[StoredReference, Reference]:
        """Fit (or find) the reference of ``source`` and store it under ``name``.

        ``name`` defaults to the dataset version (``customers@7``) or file path.
        """
        store, content = self._stores()
        src = open_source(source)
        if name is None:
            if src.key is None:
                raise InvalidArgumentError(
                    "Name the reference of an in-memory table: fit_reference(df, name='churn')"
                )
            name = src.label
        _check_name(name)
        settings = settings_key()
        if src.key is not None and not refit:
            found = store.find_reference(name)
            if found is not None and (found.source_key, found.settings_key) == (
                src.key,
                settings,
            ):
                return found, self.load(found)
            same = store.find_by_source(src.key, settings)
            if same is not None:
                return self._record(name, same.digest, src, same.rows), self.load(same)
        reference = fit(src)
        data = json.dumps(reference.to_dict(), sort_keys=True, allow_nan=False).encode()
        blob = content.put_bytes(data)
        return self._record(name, blob.digest, src, reference.rows), reference

    def get_reference(self, name: str) -> Reference:
        """The newest reference stored under ``name``.

        Raises:
            NotFoundError: No reference has that name; the message says how to fit one.
        """
        store, _ = self._stores()
        record = store.find_reference(name)
        if record is None:
            raise NotFoundError(
                f"No drift reference named {name!r}; fit one with "
                f"dl.monitoring.fit_reference('customers@7', name={name!r}) (from a dataset "
                f"version) or dl.monitoring.fit_traffic_reference('{name}', since='7d') "
                "(from a period of a deployment's traffic)"
            )
        return self.load(record)

    def list_references(self) -> list[StoredReference]:
        """Every stored reference record, newest first."""
        store, _ = self._stores()
        return store.list_references()

    def load(self, record: StoredReference) -> Reference:
        """Read a stored reference's JSON (verified against its digest)."""
        _, content = self._stores()
        raw = content.read_bytes(record.digest, name=f"drift reference {record.name}")
        return Reference.from_dict(json.loads(raw))

    def referenced_digests(self) -> set[str]:
        """Every stored object the reference records point to (gc roots)."""
        return set() if self.store is None else self.store.referenced_digests()

    # -- drift ------------------------------------------------------------------------

    def drift(
        self,
        reference: Any,
        current: Any,
        *,
        columns: list[str] | None = None,
        thresholds: DriftThresholds | None = None,
    ) -> DriftReport:
        """Compare ``current`` with ``reference`` (see :func:`driftline.monitoring.drift`)."""
        if isinstance(reference, Reference):
            ref, label = reference, reference.source
        else:
            src = open_source(reference)
            if src.key is not None and self.store is not None and _is_version(reference):
                record, ref = self.fit_reference(reference)
                label = record.source
            else:
                ref, label = fit(src, columns=columns), src.label
        cur = open_source(current, columns=columns or list(ref.columns))
        return compare(ref, cur, columns=columns, thresholds=thresholds, reference_label=label)

    # -- labels -----------------------------------------------------------------------

    def log_labels(self, deployment: str, data: Any) -> LabelIngest:
        """Store labels of ``deployment``'s requests (see :func:`driftline.monitoring.log_labels`).

        Raises:
            InvalidArgumentError: A column is missing or of the wrong type (named).
            NotFoundError: The deployment has logged no predictions at all.
        """
        if self.remote_traffic is not None:
            return self.remote_traffic.log_labels(deployment, data)
        import pyarrow as pa
        import pyarrow.compute as pc

        from driftline.core.clock import now_ms
        from driftline.monitoring._traffic import log_files, request_ids
        from driftline.monitoring.labels import LabelIngest, read_label_table

        labels, root = self._labels()
        _check_name(deployment, "deployment")
        now = now_ms()
        batch = read_label_table(data, now_ms=now)
        if not log_files(root, deployment):
            raise NotFoundError(
                f"Deployment {deployment!r} has logged no predictions; labels join the "
                f"prediction log by request id (serve it with `driftline serve`)"
            )
        known = request_ids(root, deployment)
        ids = pa.array(batch.request_id, pa.string())
        unknown_mask = pc.invert(pc.is_in(ids, value_set=known))
        unknown = ids.filter(unknown_mask)
        inserted, replaced = labels.upsert_labels(deployment, batch, now) if len(batch) else (0, 0)
        return LabelIngest(
            deployment=deployment,
            received=len(batch) + batch.duplicates,
            inserted=inserted,
            replaced=replaced + batch.duplicates,
            unknown=len(unknown),
            unknown_examples=tuple(unknown.slice(0, 10).to_pylist()),
        )

    # -- traffic ----------------------------------------------------------------------

    def traffic(
        self, deployment: str, since: datetime, until: datetime, *, shadow: bool = False
    ) -> Any:
        """Flattened prediction-log rows of ``deployment`` in ``[since, until)`` (Arrow).

        Shadow rows (variant ``shadow``: a mirrored copy of a request another variant
        answered, logged under the same request id) are left out unless ``shadow``: they
        would count each request twice and join its label twice.
        """
        import pyarrow.compute as pc

        from driftline.monitoring._traffic import traffic

        if self.log_root is None:
            raise InvalidArgumentError("Reading the prediction log needs a local workspace")
        _check_name(deployment, "deployment")
        rows = traffic(self.log_root, self.cache, deployment, since, until)
        if not shadow and rows.num_rows:
            mirrored = pc.equal(rows["variant"], "shadow")
            if pc.any(mirrored).as_py():
                rows = rows.filter(pc.invert(pc.fill_null(mirrored, False)))
        return rows

    def labelled_rows(
        self,
        deployment: str,
        *,
        since: datetime,
        until: datetime | None = None,
        join_window: str | timedelta = "14d",
        target: str = "label",
    ) -> Any:
        """``deployment``'s served rows in ``[since, until)`` that have a label, as a
        pandas DataFrame: the model's input columns plus ``target`` (the label).

        The rows and labels are joined as :meth:`performance` joins them (a label counts
        when it came within ``join_window`` after its prediction); shadow rows are left
        out, and so are the predictions, so the frame can be scored again by any model
        (a challenger and its champion on the same rows).

        Raises:
            InvalidArgumentError: Not a local workspace, or ``target`` is an input column.
        """
        import numpy as np
        import pyarrow as pa

        from driftline.monitoring._traffic import META, is_prediction
        from driftline.monitoring.scoring import join_labels
        from driftline.monitoring.windows import parse_duration

        labels, _ = self._labels()
        end = datetime.now(UTC) if until is None else until
        rows = self.traffic(deployment, since, end)
        inputs = [n for n in rows.column_names if n not in META and not is_prediction(n)]
        if target in inputs:
            raise InvalidArgumentError(
                f"The label column {target!r} is also an input of {deployment!r}; pick "
                "another target name"
            )
        joining = _ms(parse_duration(join_window, "join window"))
        if rows.num_rows == 0:
            import pandas as pd

            return pd.DataFrame({**{n: [] for n in inputs}, target: []})
        stored = labels.read_labels(
            deployment,
            since_ms=_ms(since - timedelta(days=1)),  # a day of clock skew, as performance
            until_ms=_ms(end) + joining + 1,
        )
        joined = join_labels(rows, stored, joining)
        keep = np.flatnonzero(joined.labelled)
        frame = rows.select(inputs).take(pa.array(keep)).to_pandas()
        values = joined.label[keep]
        if values.dtype.kind == "f" and len(values) and np.all(values == np.round(values)):
            values = values.astype(np.int64)  # classes are stored as numbers: 0/1, not 0.0/1.0
        frame[target] = values
        return frame

    def performance(
        self, deployment: str, options: PerformanceOptions | None = None, **keywords: Any
    ) -> PerformanceReport:
        """Realized and estimated performance per window (see
        :func:`driftline.monitoring.performance`); ``options``, or its fields as
        keywords."""
        from driftline.monitoring.options import PerformanceOptions
        from driftline.monitoring.options import options as build

        opts: PerformanceOptions = build(PerformanceOptions, options, keywords)
        if self.remote_traffic is not None:
            return self.remote_traffic.performance(deployment, opts)
        now = datetime.now(UTC)
        bounds = opts.bounds(now)
        rows = self.traffic(deployment, bounds[0][0], bounds[-1][1])
        return self._performance(deployment, rows, bounds, now, opts)

    def _performance(
        self,
        deployment: str,
        rows: Any,
        bounds: list[tuple[datetime, datetime]],
        now: datetime,
        opts: PerformanceOptions,
        stored: Any = None,
    ) -> PerformanceReport:
        """Performance of already-read traffic ``rows`` over ``bounds``, joined with the
        ``stored`` labels (read now when not given: :meth:`_stored_labels`)."""
        from driftline.monitoring.scoring import evaluate, join_labels
        from driftline.monitoring.windows import parse_duration

        if stored is None:
            stored = self._stored_labels(deployment, bounds, opts)
        delay, joining = opts.label_delay_td, opts.join_window_td
        joined = join_labels(rows, stored, _ms(joining))
        task, windows, calibrated = evaluate(
            joined,
            bounds,
            now_ms=_ms(now),
            task=opts.task,
            threshold=opts.threshold,
            label_delay_ms=_ms(delay),
            min_rows=opts.min_rows,
            segment=opts.segment,
            estimate=opts.estimate,
        )
        return PerformanceReport(
            deployment=deployment,
            task=task,
            window_ms=_ms(parse_duration(opts.window, "window")),
            label_delay_ms=_ms(delay),
            join_window_ms=_ms(joining),
            windows=tuple(windows),
            calibration_rows=calibrated,
        )

    def _stored_labels(
        self, deployment: str, bounds: list[tuple[datetime, datetime]], opts: PerformanceOptions
    ) -> Any:
        """The labels that can join traffic in ``bounds`` (an Arrow table)."""
        labels, _ = self._labels()
        # Labels come after their predictions (a day of clock skew allowed) and within
        # the join window: only those can join.
        return labels.read_labels(
            deployment,
            since_ms=_ms(bounds[0][0] - timedelta(days=1)),
            until_ms=_ms(bounds[-1][1] + opts.join_window_td) + 1,
        )

    def window_performance(
        self,
        deployment: str,
        rows: Any,
        start: datetime,
        end: datetime,
        *,
        min_labels: int = 100,
        join_window: str | timedelta = "14d",
        labels: Any = None,
    ) -> tuple[PerformanceWindow, PerformanceWindow | None]:
        """``(realized, estimated)`` performance of one window's already-read traffic
        ``rows`` (``estimated`` is None unless the model is a binary or multiclass
        classifier); ``labels`` as :meth:`window_labels` read them (read now when None).

        Without enough labels in the window, the CBPE estimate is calibrated on the
        labelled traffic of the join window before it (read only then).
        """
        import pyarrow as pa

        from driftline.monitoring.windows import parse_duration

        now = max(datetime.now(UTC), end)
        realized, estimated = self._last_window(
            deployment, rows, [(start, end)], now,
            min_labels=min_labels, join_window=join_window, labels=labels,
        )  # fmt: skip
        if realized.status == "ok" or estimated is None or estimated.status == "ok":
            return realized, estimated
        before = start - parse_duration(join_window, "join window")
        history = self.traffic(deployment, before, start)
        if history.num_rows == 0:
            return realized, estimated
        both = pa.concat_tables([history, rows], promote_options="permissive")
        bounds = [(before, start), (start, end)]
        _, wider = self._last_window(
            deployment, both, bounds, now, min_labels=min_labels, join_window=join_window
        )
        return realized, estimated if wider is None else wider

    def window_labels(
        self, deployment: str, start: datetime, end: datetime, join_window: str | timedelta = "14d"
    ) -> Any:
        """The stored labels that can join the window ``[start, end)`` (an Arrow table),
        for :meth:`window_performance`: a caller that reads the window's traffic as well
        reads these beside it."""
        return self._stored_labels(deployment, [(start, end)], _one_window(start, end, join_window))

    def realized_performance(
        self,
        deployment: str,
        rows: Any,
        start: datetime,
        end: datetime,
        *,
        min_labels: int = 100,
        join_window: str | timedelta = "14d",
    ) -> PerformanceWindow:
        """Performance of one window's already-read traffic ``rows`` measured on their
        labels only (no estimate): status ``insufficient_data`` below ``min_labels``
        labelled rows."""
        now = max(datetime.now(UTC), end)
        realized, _ = self._last_window(
            deployment, rows, [(start, end)], now,
            min_labels=min_labels, join_window=join_window, estimate=False,
        )  # fmt: skip
        return realized

    def _last_window(
        self,
        deployment: str,
        rows: Any,
        bounds: list[tuple[datetime, datetime]],
        now: datetime,
        *,
        min_labels: int,
        join_window: str | timedelta,
        estimate: bool = True,
        labels: Any = None,
    ) -> tuple[PerformanceWindow, PerformanceWindow | None]:
        """``(realized, estimated)`` of the last of ``bounds`` for the one-window calls
        above; the windows before it only lend their labelled rows to the calibration."""
        start, end = bounds[-1]
        opts = _one_window(start, end, join_window, min_rows=min_labels, estimate=estimate)
        report = self._performance(deployment, rows, bounds, now, opts, labels)
        last = [w for w in report.windows if w.start == _ms(start)]
        realized = next(w for w in last if w.kind == "realized")
        return realized, next((w for w in last if w.kind == "estimated"), None)

    def fit_traffic_reference(
        self,
        deployment: str,
        *,
        since: str | timedelta | datetime,
        until: datetime | None = None,
        name: str | None = None,
    ) -> tuple[StoredReference, Reference]:
        """Fit and store a reference on a period of ``deployment``'s traffic: its inputs and
        its predictions (so that prediction drift has a reference), under ``name``
        (default: the deployment's name)."""
        from driftline.monitoring._frames import Source
        from driftline.monitoring._traffic import META
        from driftline.monitoring.windows import parse_since

        now = datetime.now(UTC)
        start, end = parse_since(since, now), now if until is None else parse_since(until, now)
        rows = self.traffic(deployment, start, end)
        if rows.num_rows == 0:
            raise InvalidArgumentError(
                f"Deployment {deployment!r} logged no predictions from {start.isoformat()} "
                f"to {end.isoformat()}: pick a period with traffic"
            )
        table = rows.drop_columns([c for c in META if c in rows.column_names])
        label = f"{deployment} traffic {start:%Y-%m-%dT%H:%M}..{end:%Y-%m-%dT%H:%M}"
        source = Source(label, None, table=table)
        reference = fit(source)
        _, content = self._stores()
        data = json.dumps(reference.to_dict(), sort_keys=True, allow_nan=False).encode()
        blob = content.put_bytes(data)
        name = name or deployment
        _check_name(name)
        return self._record(name, blob.digest, source, reference.rows), reference

    def check(
        self, deployment: str, options: CheckOptions | None = None, **keywords: Any
    ) -> CheckResult:
        """Drift, prediction drift, data quality and performance per window (see
        :func:`driftline.monitoring.check`); ``options``, or its fields as keywords."""
        from driftline.monitoring.options import CheckOptions
        from driftline.monitoring.options import options as build
        from driftline.monitoring.windows import parse_duration

        opts: CheckOptions = build(CheckOptions, options, keywords)
        if self.remote_traffic is not None:
            return self.remote_traffic.check(deployment, opts)
        checks = opts.checks
        thresholds = opts.thresholds or DriftThresholds()
        reference = opts.reference
        ref = (
            reference
            if isinstance(reference, Reference)
            else self.get_reference(reference or deployment)
        )
        now = datetime.now(UTC)
        bounds = opts.bounds(now)
        pool = labels_read = scoring = None
        if "performance" in checks:
            from concurrent.futures import ThreadPoolExecutor

            # Labels are read and scored in a thread while this one reads the window and
            # computes drift (SQLite, numpy and Arrow release the GIL): the label read
            # needs no traffic, so it overlaps the window's read, and scoring the drift.
            pool = ThreadPoolExecutor(1, thread_name_prefix="driftline-scoring")
            labels_read = pool.submit(self._stored_labels, deployment, bounds, opts.performance)
        try:
            rows = self.traffic(deployment, bounds[0][0], bounds[-1][1])
            if pool is not None and labels_read is not None and rows.num_rows:
                read = labels_read
                scoring = pool.submit(
                    lambda: self._performance(
                        deployment, rows, bounds, now, opts.performance, read.result()
                    )
                )
            parts = self._window_checks(
                deployment, ref, rows, bounds, checks, thresholds, opts.quality
            )
            perf = None if scoring is None else scoring.result()
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        performance: list[PerformanceWindow] = [] if perf is None else list(perf.windows)
        results = [
            dataclasses.replace(w, performance=tuple(p for p in performance if p.start == w.start))
            for w in parts
        ]
        return CheckResult(
            deployment=deployment,
            reference=ref.source,
            window_ms=_ms(parse_duration(opts.window, "window")),
            windows=tuple(results),
            task=None if perf is None else perf.task,
        )

    def _window_checks(
        self,
        deployment: str,
        ref: Reference,
        rows: Any,
        bounds: list[tuple[datetime, datetime]],
        checks: tuple[str, ...],
        thresholds: DriftThresholds,
        quality: QualityThresholds | None,
    ) -> list[WindowCheck]:
        """Drift, prediction drift and quality of each window (performance comes apart)."""
        import numpy as np

        from driftline.monitoring._frames import Source
        from driftline.monitoring._traffic import META, is_prediction
        from driftline.monitoring.quality import assess

        traffic = [c for c in rows.column_names if not is_prediction(c) and c not in META]
        model = set(self.model_inputs(deployment, bounds[0][0], bounds[-1][1], traffic))
        inputs = [c for c in ref.columns if c in model and not is_prediction(c)]
        outputs = [c for c in ref.columns if is_prediction(c)]
        starts = np.array([_ms(s) for s, _ in bounds], dtype=np.int64)
        which = _window_index(rows, starts)
        ordered = bool(np.all(which[1:] >= which[:-1]))  # the log is written in time order
        cuts = np.searchsorted(which, np.arange(len(bounds) + 1)) if ordered else None
        results = []
        for i, (s, e) in enumerate(bounds):
            if cuts is not None:
                part = rows.slice(int(cuts[i]), int(cuts[i + 1] - cuts[i]))  # no copy
            else:
                part = rows.take(np.flatnonzero(which == i))
            n = part.num_rows
            base = {"start": _ms(s), "end": _ms(e), "rows": n}
            if n < thresholds.min_rows:
                results.append(WindowCheck(**base, status="insufficient_data"))
                continue
            label = f"{deployment} {s:%Y-%m-%dT%H:%M}..{e:%Y-%m-%dT%H:%M}"
            src = Source(label, None, table=part)
            drift = pred = qual = None
            if "drift" in checks and inputs:
                drift = compare(ref, src, columns=inputs, thresholds=thresholds)
            if "prediction_drift" in checks and outputs:
                pred = compare(ref, src, columns=outputs, thresholds=thresholds)
            if "quality" in checks:
                qual = assess(ref, part, columns=inputs + outputs, thresholds=quality)
            results.append(
                WindowCheck(**base, status="ok", drift=drift, prediction_drift=pred, quality=qual)
            )
        return results

    def _labels(self) -> tuple[LabelStore, str]:
        if self.labels is None or self.log_root is None:
            raise InvalidArgumentError(
                "Labels need a local workspace (a metadata database and a prediction log)"
            )
        return self.labels, self.log_root

    # -- internals --------------------------------------------------------------------

    def _stores(self) -> tuple[ReferenceStore, ContentStore]:
        if self.store is None or self.content is None:
            raise InvalidArgumentError(
                "Stored drift references need a local workspace (a metadata database); "
                "pass the reference data itself to drift() instead"
            )
        return self.store, self.content

    def _record(self, name: str, digest: str, src: Source, rows: int) -> StoredReference:
        from driftline.core.clock import now_ms
        from driftline.core.ids import new_id

        store, _ = self._stores()
        record = StoredReference(
            id=new_id(),
            name=name,
            digest=digest,
            source=src.label,
            source_key=src.key,
            settings_key=settings_key(),
            rows=rows,
            created_at=now_ms(),
        )
        return store.add_reference(record)


def _one_window(
    start: datetime, end: datetime, join_window: str | timedelta, **fields: Any
) -> PerformanceOptions:
    """The options of the one-window calls (:meth:`MonitoringService.window_performance`)."""
    from driftline.monitoring.options import PerformanceOptions

    return PerformanceOptions(
        window=end - start, since=start, until=end, join_window=join_window, **fields
    )


def _check_name(name: str, what: str = "reference") -> None:
    if not isinstance(name, str) or not name or len(name) > 256 or not name.isprintable():
        raise InvalidArgumentError(
            f"A {what} name must be 1-256 printable characters, got {name!r}"
        )


def _window_index(rows: Any, starts: Any) -> Any:
    """The window (index into ``starts``) of each row; rows are all inside the range."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ms = pc.cast(pc.cast(rows["time"], pa.timestamp("ms", tz="UTC"), safe=False), pa.int64())
    t = np.asarray(ms.to_numpy(), dtype=np.int64) if rows.num_rows else np.zeros(0, np.int64)
    return np.searchsorted(starts, t, side="right") - 1


def _ms(value: datetime | timedelta) -> int:
    if isinstance(value, timedelta):
        return int(value.total_seconds() * 1000)
    return int(value.timestamp() * 1000)


def _is_version(data: Any) -> bool:
    from pathlib import Path

    return isinstance(data, str) and not Path(data).exists()
