"""Evaluation, comparison and gated promotion of registered versions.

Promotion order matters: approvals are checked first (no work for an unauthorized
caller), then every gate runs and is reported; only if all pass does the alias move,
compare-and-set against the holder seen when the gates ran, so a concurrent move
between evaluation and promotion is a conflict rather than a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.core.clock import utcnow
from driftline.core.ids import new_id
from driftline.errors import ConflictError, InvalidArgumentError, NotFoundError
from driftline.registry.evaluation import (
    Comparison,
    compare_predictions,
    compute_metrics,
    format_measured,
    infer_task,
    predict,
    slice_metrics,
)
from driftline.registry.gates import Gate, GateSpec, parse_gates
from driftline.registry.models import Evaluation, GateResult, ModelVersion, PromotionReport
from driftline.registry.service import RegistryService, check_alias

if TYPE_CHECKING:
    import pandas as pd

    from driftline.models import ModelCache

__all__ = [
    "GateFailedError",
    "cached_package",
    "check_gates",
    "compare_models",
    "evaluate",
    "load_version",
    "promote",
    "promote_version",
]


class GateFailedError(ConflictError):
    """Promotion refused: at least one quality gate failed. ``report`` has every gate."""

    def __init__(self, report: PromotionReport) -> None:
        lines = [
            f"{g.gate}: measured {format_measured(g.measured)}, "
            f"threshold {g.threshold} - {g.message}"
            for g in report.failed
        ]
        super().__init__(
            f"Promotion of {report.name}/{report.version} to {report.alias!r} refused; "
            f"{len(report.failed)} of {len(report.gates)} gate(s) failed: " + "; ".join(lines)
        )
        self.report = report


def cached_package(service: RegistryService, version: ModelVersion, cache: ModelCache) -> Path:
    """A local folder holding a version's pinned package (materialized once, then reused;
    the models stage verifies every file against the manifest on each load)."""
    return cache.fetch(
        version.package_digest.replace(":", "-"),
        lambda folder: service.materialize(version, folder),
    )


def load_version(service: RegistryService, version: ModelVersion, cache: ModelCache) -> Any:
    """Load a registered version (its pinned files, verified) through the models stage."""
    from driftline.models import load_model_folder

    return load_model_folder(cached_package(service, version, cache))


def _frame(service: RegistryService, data: Any) -> tuple[pd.DataFrame, str | None]:
    """A DataFrame from a dataset reference, a Parquet/CSV path, or a DataFrame."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data, None
    if isinstance(data, str) and not Path(data).exists():
        from driftline.data import Version

        record = service.data.get(data)
        return Version(service.data, record).to_pandas(), record.ref
    path = Path(data)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path), None
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path), None
    raise InvalidArgumentError(
        f"Cannot read evaluation data {data!r}: give a dataset reference, "
        "a Parquet/CSV file or a DataFrame"
    )


def _split(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, Any]:
    if target not in frame.columns:
        raise InvalidArgumentError(
            f"Target column {target!r} is not in the data; columns: {', '.join(frame.columns)}"
        )
    return frame.drop(columns=[target]), frame[target].to_numpy()


def evaluate(
    service: RegistryService,
    ref: str,
    *,
    data: Any,
    target: str,
    slices: Sequence[str] = (),
    cache: ModelCache,
) -> Evaluation:
    """Evaluate a version on data and record the evaluation on the version."""
    version = service.get_version(ref)
    frame, dataset = _frame(service, data)
    features, y = _split(frame, target)
    for column in slices:
        if column not in frame.columns:
            raise InvalidArgumentError(f"Slice column {column!r} is not in the data")
    task = infer_task(y)
    model = load_version(service, version, cache)
    out = predict(model, features, task)
    metrics = compute_metrics(task, y, out)
    per_slice = {col: slice_metrics(task, y, out, frame[col].to_numpy()) for col in slices}
    evaluation = Evaluation(
        id=new_id(),
        name=version.name,
        version=version.version,
        dataset=dataset,
        target=target,
        task=task,
        rows=len(frame),
        metrics=metrics,
        slices=per_slice,
        created_at=utcnow(),
    )
    return service.record_evaluation(evaluation)


def compare_models(
    service: RegistryService,
    refs: Sequence[str],
    *,
    data: Any,
    target: str,
    cache: ModelCache,
    rounds: int = 500,
    confidence: float = 0.95,
) -> Comparison:
    """Evaluate models on identical rows with paired-bootstrap CIs of their differences."""
    if len(refs) < 2:
        raise InvalidArgumentError("compare_models needs at least two models")
    versions = [service.get_version(ref) for ref in refs]
    frame, _ = _frame(service, data)
    features, y = _split(frame, target)
    task = infer_task(y)
    outputs = [predict(load_version(service, v, cache), features, task) for v in versions]
    return compare_predictions(
        [v.ref for v in versions], task, y, outputs, rounds=rounds, confidence=confidence
    )


def promote(
    service: RegistryService,
    name: str,
    version: int,
    alias: str,
    *,
    gates: str | Path | Mapping[str, Any] | None,
    cache: ModelCache,
) -> PromotionReport:
    """Check approvals, run every gate, then move the alias (or raise GateFailedError)."""
    check_alias(alias)
    service.get_version(f"{name}/{version}")
    service.check_approvals(name, version, alias)
    report = check_gates(service, name, version, alias, gates=gates, cache=cache)
    results, holder_number = list(report.gates), report.previous_version
    if holder_number == version:
        return PromotionReport(
            name=name,
            version=version,
            alias=alias,
            promoted=True,
            gates=tuple(results),
            previous_version=holder_number,
        )
    service.move_alias(
        name,
        alias,
        version,
        expected=holder_number,
        reason="promote",
        details={
            "gates": [
                {
                    "gate": g.gate,
                    "passed": g.passed,
                    "measured": g.measured,
                    "threshold": g.threshold,
                    "detail": g.message,  # how it was measured, for the model card
                }
                for g in results
            ]
        },
    )
    return PromotionReport(
        name=name,
        version=version,
        alias=alias,
        promoted=True,
        gates=tuple(results),
        previous_version=holder_number,
    )


def check_gates(
    service: RegistryService,
    name: str,
    version: int,
    alias: str,
    *,
    gates: str | Path | Mapping[str, Any] | None,
    cache: ModelCache,
    data: Any = None,
    target: str | None = None,
) -> PromotionReport:
    """Run every gate on ``name/version`` against the holder of ``alias``; move nothing.

    ``data`` and ``target`` (a dataset ref, a file or a DataFrame, and its label
    column) are the rows metric gates measure on when the gates name no ``evaluation``
    (default: the version's latest evaluation).

    Raises:
        GateFailedError: a gate failed (``error.report`` lists every gate).
    """
    candidate = service.get_version(f"{name}/{version}")
    holder_number = service.get_model(name).aliases.get(alias)
    holder = None if holder_number is None else service.get_version(f"{name}/{holder_number}")
    spec = parse_gates(gates) if gates is not None else GateSpec()
    if data is not None and not spec.data:
        if not target:
            raise InvalidArgumentError("check_gates: data needs its target column")
        evaluation: tuple[Any, str] | None = (data, target)
    else:
        evaluation = None
    results = _run_gates(service, spec, candidate, holder, cache, evaluation) if spec.gates else []
    report = PromotionReport(
        name=name,
        version=version,
        alias=alias,
        promoted=False,
        gates=tuple(results),
        previous_version=holder_number,
    )
    if report.failed:
        raise GateFailedError(report)
    return report


#: :func:`promote` under the name the registry package exports it by (its module-level
#: ``promote`` uses the default workspace; this one takes the service).
promote_version = promote


class _GateContext:
    """Lazily computed facts several gates share (one evaluation per model)."""

    def __init__(
        self,
        service: RegistryService,
        spec: GateSpec,
        candidate: ModelVersion,
        holder: ModelVersion | None,
        cache: ModelCache,
        evaluation: tuple[Any, str] | None = None,
    ) -> None:
        self.service, self.spec, self.cache = service, spec, cache
        self.evaluation = evaluation  # rows given by the caller (check_gates' data)
        self.candidate, self.holder = candidate, holder
        self._metrics: dict[int, dict[str, Any]] = {}
        self._models: dict[int, Any] = {}
        self._frame: tuple[pd.DataFrame, str | None] | None = None

    def model(self, version: ModelVersion) -> Any:
        """A version's loaded model, loaded once for every gate that needs it."""
        if version.version not in self._models:
            self._models[version.version] = load_version(self.service, version, self.cache)
        return self._models[version.version]

    def frame(self) -> tuple[pd.DataFrame, str | None]:
        if self._frame is None:
            data, _target = self.source()
            self._frame = _frame(self.service, data)
        return self._frame

    def source(self) -> tuple[Any, str]:
        if self.spec.data and self.spec.target:
            return self.spec.data, self.spec.target
        if self.evaluation is not None:
            return self.evaluation
        latest = self.service.store.list_evaluations(self.candidate.name, self.candidate.version)
        if latest and latest[0].dataset:
            return latest[0].dataset, latest[0].target
        raise NotFoundError(
            f"{self.candidate.ref} has no evaluation on a dataset: run `driftline models "
            "evaluate` first, or give `evaluation: {data: ..., target: ...}` in the gates"
        )

    def metrics(self, version: ModelVersion) -> dict[str, Any]:
        if version.version not in self._metrics:
            if not self.spec.data and self.evaluation is None and version is self.candidate:
                latest = self.service.store.list_evaluations(version.name, version.version)
                if latest:
                    self._metrics[version.version] = dict(latest[0].metrics)
                    return self._metrics[version.version]
            frame, _ = self.frame()
            _data, target = self.source()
            features, y = _split(frame, target)
            task = infer_task(y)
            model = self.model(version)
            self._metrics[version.version] = compute_metrics(
                task, y, predict(model, features, task)
            )
        return self._metrics[version.version]


def _run_gates(
    service: RegistryService,
    spec: GateSpec,
    candidate: ModelVersion,
    holder: ModelVersion | None,
    cache: ModelCache,
    evaluation: tuple[Any, str] | None = None,
) -> list[GateResult]:
    context = _GateContext(service, spec, candidate, holder, cache, evaluation)
    results = []
    for gate in spec.gates:
        try:
            results.append(_run_gate(gate, context))
        except (NotFoundError, InvalidArgumentError) as exc:
            results.append(
                GateResult(
                    gate=gate.describe(),
                    passed=False,
                    measured=None,
                    threshold=gate.threshold,
                    message=str(exc),
                )
            )
    return results


def _run_gate(gate: Gate, ctx: _GateContext) -> GateResult:
    name = gate.describe()
    if gate.kind in ("min", "max", "max_regression"):
        metric = gate.metric or ""
        measured = ctx.metrics(ctx.candidate).get(metric)
        if measured is None:
            return GateResult(
                gate=name,
                passed=False,
                measured=None,
                threshold=gate.threshold,
                message=f"{metric} was not measured for this task",
            )
        if gate.kind == "min":
            ok = measured >= (gate.threshold or 0)
            return GateResult(
                gate=name,
                passed=ok,
                measured=measured,
                threshold=gate.threshold,
                message="ok" if ok else f"{metric} is below the minimum",
            )
        if gate.kind == "max":
            ok = measured <= (gate.threshold or 0)
            return GateResult(
                gate=name,
                passed=ok,
                measured=measured,
                threshold=gate.threshold,
                message="ok" if ok else f"{metric} is above the maximum",
            )
        if ctx.holder is None:
            return GateResult(
                gate=name,
                passed=True,
                measured=None,
                threshold=gate.threshold,
                message="no current holder to compare with",
            )
        held = ctx.metrics(ctx.holder).get(metric)
        regression = (held - measured) if gate.higher_is_better else (measured - held)
        ok = regression <= (gate.threshold or 0)
        return GateResult(
            gate=name,
            passed=ok,
            measured=regression,
            threshold=gate.threshold,
            message=f"{metric} {measured:.4g} vs holder v{ctx.holder.version} "
            f"{held:.4g} on the same rows",
        )
    if gate.kind == "latency":
        return _latency_gate(gate, ctx)
    if gate.kind == "signature":
        return _signature_gate(name, ctx)
    return _validation_gate(name, ctx)


def _latency_gate(gate: Gate, ctx: _GateContext) -> GateResult:
    from driftline.registry.latency import measure_latency, single_row

    model = ctx.model(ctx.candidate)
    example = getattr(model, "input_example", None)
    if example is None:
        return GateResult(
            gate=gate.describe(),
            passed=False,
            measured=None,
            threshold=gate.threshold,
            message="the model has no input example; log it with input_example=",
        )
    measured = measure_latency(model.predict, single_row(example))
    ok = measured.p99_ms <= (gate.threshold or 0)
    return GateResult(
        gate=gate.describe(),
        passed=ok,
        measured=float(f"{measured.p99_ms:.3g}"),  # the noise is far above 3 digits
        threshold=gate.threshold,
        message=measured.describe(),
    )


def _inputs(signature: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Input column name -> type of a stored signature (``None`` for none or tensors)."""
    if not signature:
        return None
    from driftline.models import ColSpec, Signature

    parsed = Signature.from_dict(signature)
    columns = {s.name: s.type for s in parsed.inputs if isinstance(s, ColSpec) and s.name}
    return columns or None


# (holder's type, candidate's type) pairs a caller's values still fit: safe widenings.
_WIDENS = {
    ("integer", "long"),
    ("integer", "float"),
    ("integer", "double"),
    ("long", "double"),
    ("float", "double"),
    ("boolean", "integer"),
    ("boolean", "long"),
}


def _signature_gate(name: str, ctx: _GateContext) -> GateResult:
    if ctx.holder is None:
        return GateResult(
            gate=name,
            passed=True,
            measured=None,
            threshold="compatible",
            message="no current holder to compare with",
        )
    mine, theirs = _inputs(ctx.candidate.signature), _inputs(ctx.holder.signature)
    if mine is None or theirs is None:
        return GateResult(
            gate=name,
            passed=mine is None and theirs is None,
            measured=None,
            threshold="compatible",
            message="one of the versions has no column signature",
        )
    problems = []
    for column, kind in mine.items():
        if column not in theirs:
            problems.append(f"needs column {column!r} the holder's callers do not send")
        elif theirs[column] != kind and (theirs[column], kind) not in _WIDENS:
            problems.append(f"column {column!r} is {kind}, was {theirs[column]}")
    return GateResult(
        gate=name,
        passed=not problems,
        measured="; ".join(problems) or "same",
        threshold="compatible",
        message="ok" if not problems else "inputs changed incompatibly",
    )


def _validation_gate(name: str, ctx: _GateContext) -> GateResult:
    from driftline.data import Version, infer_schema, validate

    run_id = ctx.candidate.run_id
    inputs = [v for v in ctx.service.data.store.run_inputs(run_id) if v.tabular] if run_id else []
    if not inputs:
        return GateResult(
            gate=name,
            passed=False,
            measured=None,
            threshold="passed",
            message="the version's run recorded no tabular training data "
            "(dl.log_input) to validate against",
        )
    training = Version(ctx.service.data, inputs[0])
    frame, _ = ctx.frame()
    report = validate(frame, schema=infer_schema(training), reference=training)
    errors = [a for a in report.anomalies if a.severity == "error"]
    return GateResult(
        gate=name,
        passed=report.ok,
        measured=f"{len(errors)} error(s)",
        threshold="passed",
        message=f"evaluation data vs {training.ref}: "
        + ("ok" if report.ok else "; ".join(a.message for a in errors[:3])),
    )
