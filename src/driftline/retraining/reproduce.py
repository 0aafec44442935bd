"""Reproducing a model version: re-run what produced it, compare what comes out.

What "re-run" means follows from what tracking recorded about the version's run:

- the run is a **pipeline** run, or a step of one (the pipelines stage tags both): the
  pipeline is run again through its command, ``driftline pipelines run NAME --module
  MODULE -p key=value ... --force``, with the parameters the pipeline run recorded;
  ``--force`` because a cache hit would hand back the old outputs rather than rebuild
  them. The re-run's counterpart of the run is the step of the same name;
- otherwise the run's recorded **command line** (``driftline.source.command``) is run
  again, with the current interpreter standing in for a recorded ``python``; its
  counterpart is the newest run of the same experiment started after it with the same
  name, or, when run names are drawn at random, with a model logged at the same path.

The code is the recorded commit, checked out in a temporary ``git worktree`` of the
repository the command is started from (removed afterwards, whatever happens), and
the recorded diff applied on top when the run had uncommitted changes. The child
process records into the same workspace (its settings are passed in ``DRIFTLINE_*``
variables). The child runs in the worktree's folder matching the folder the
reproduction was started from inside the repository, which is where training is
normally started from.

The re-run does everything its command does: a script that registers its model
registers a new version of it, which is what the original is compared with.

The comparison: every metric of the original run against the re-run's, within an
absolute tolerance (per metric, or a default); the dataset versions the re-run read
against the recorded ones (a script reading ``customers@latest`` reads a newer
version now, and that is reported, not hidden); and the model package's files byte
for byte against the files the re-run logged at the same artifact path, except the
package's metadata file (it records when and where the package was written). Where a
flavor's files are not byte-stable (:data:`NOT_BYTE_STABLE`: skops names its arrays by
Python object ids), differing bytes prove nothing and are reported as not comparable.
Both models also predict the version's input example, when it has one: the same
predictions are what a rebuilt model must give whatever its bytes.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.core.clock import utcnow
from driftline.errors import InvalidArgumentError, NotFoundError, UserCodeError
from driftline.retraining.checkout import checkout
from driftline.retraining.lineage import DIFF_ARTIFACT, run_lineage_of
from driftline.retraining.models import (
    MetricComparison,
    MissingLineageError,
    ReproduceReport,
    RunLineage,
    VersionLineage,
)

if TYPE_CHECKING:
    from driftline.core.artifacts import ContentStore
    from driftline.data import DataService
    from driftline.registry import ModelVersion, RegistryService
    from driftline.settings import Settings
    from driftline.tracking import TrackingService

__all__ = ["CODE_CHOICES", "DEFAULT_TOLERANCE", "Reproducer"]

#: The model package's metadata file (written with the package's time and origin).
PACKAGE_METADATA = "driftline-model.json"
DEFAULT_TOLERANCE = 1e-6
#: Flavors whose files differ between two saves of the same model, and why.
NOT_BYTE_STABLE = {
    "sklearn": "skops names the arrays it stores after Python object ids",
}
#: ``recorded``: the commit the run recorded (the default); ``current``: the checkout
#: the reproduction is started from, for runs that recorded no commit.
CODE_CHOICES = ("recorded", "current")


class Reproducer:
    """Re-runs a version's run and compares (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: Settings,
        content: ContentStore,
        tracking: TrackingService,
        data: DataService,
        registry: RegistryService,
    ) -> None:
        self.settings = settings
        self.content = content
        self.tracking = tracking
        self.data = data
        self.registry = registry

    def reproduce(
        self,
        version: ModelVersion,
        lineage: VersionLineage,
        *,
        repo: Path | None = None,
        code: str = "recorded",
        apply_diff: bool = True,
        tolerances: Mapping[str, float] | None = None,
        default_tolerance: float = DEFAULT_TOLERANCE,
        timeout: float | None = None,
    ) -> ReproduceReport:
        """Re-run the run behind ``version`` and compare (see ``RetrainingService.reproduce``)."""
        if code not in CODE_CHOICES:
            raise InvalidArgumentError(f"code must be one of {', '.join(CODE_CHOICES)}")
        if default_tolerance < 0 or any(t < 0 for t in (tolerances or {}).values()):
            raise InvalidArgumentError("Tolerances are absolute differences: use values >= 0")
        run = lineage.run
        if run is None and version.run_id is not None:
            raise MissingLineageError(
                f"The run behind {version.ref} ({version.run_id}) no longer exists (deleted "
                "and purged): there is nothing recorded to re-run",
                link="run",
            )
        if run is None:
            raise MissingLineageError(
                f"{version.ref} was registered from files ({version.source}), not from a run: "
                "there is nothing recorded to re-run. Register versions from runs "
                "(dl.register_model('runs:/<run id>/model', ...)) to make them reproducible",
                link="run",
            )
        argv, entry_point = self._entry_point(version, run)
        self._check_inputs(version, run)
        diff = self._diff(run) if run.code.dirty else None
        started = utcnow()
        with checkout(version, run, repo or Path.cwd(), code, diff, apply_diff) as where:
            output = self._run(argv, where.folder, timeout)
        new_run = self._counterpart(version, run, entry_point, output, started)
        reproduced = run_lineage_of(new_run, tracking=self.tracking, data=self.data)
        match, differing = self._compare_files(version, reproduced.id)
        predictions = self._compare_predictions(version, reproduced.id)
        recorded_inputs = tuple(i.ref for i in run.inputs)
        new_inputs = tuple(i.ref for i in reproduced.inputs)
        notes = [
            *where.notes,
            *_notes(version, recorded_inputs, new_inputs, match, differing, predictions),
        ]
        return ReproduceReport(
            model=version.ref,
            original_run=run.id,
            reproduced_run=reproduced.id,
            entry_point=entry_point,
            command=shlex.join(argv),
            code=where.code,
            commit=run.code.commit if code == "recorded" else None,
            dirty=bool(run.code.dirty),
            diff=diff.decode("utf-8", "replace") if diff is not None else None,
            inputs_recorded=recorded_inputs,
            inputs_reproduced=new_inputs,
            metrics=_compare_metrics(
                run.metrics, reproduced.metrics, tolerances or {}, default_tolerance
            ),
            model_files_match=match,
            differing_files=differing,
            predictions_match=predictions,
            param_differences={
                key: (run.params.get(key), reproduced.params.get(key))
                for key in sorted(set(run.params) | set(reproduced.params))
                if run.params.get(key) != reproduced.params.get(key)
            },
            notes=tuple(notes),
        )

    # -- what to run ----------------------------------------------------------------

    def _entry_point(self, version: ModelVersion, run: RunLineage) -> tuple[list[str], str]:
        link = run.pipeline
        if link is not None:
            if not link.module:
                raise MissingLineageError(
                    f"{version.ref} was made by pipeline {link.pipeline!r} (run {link.run_id}), "
                    "which recorded no module to import it from",
                    link="entry point",
                )
            argv = [
                sys.executable, "-m", "driftline.cli", "pipelines", "run", link.pipeline,
                "--module", link.module, "--force", "--json",
            ]  # fmt: skip
            for key, value in sorted(link.params.items()):
                argv += ["-p", f"{key}={value}"]
            return argv, "pipeline"
        command = run.code.command
        if not command:
            raise MissingLineageError(
                f"Run {run.id} behind {version.ref} recorded no command line and is not a "
                "pipeline run: there is no entry point to re-run (runs record their command "
                "when the workspace's capture_environment setting is on)",
                link="entry point",
            )
        argv = shlex.split(command)
        if argv and Path(argv[0]).name.startswith("python"):
            # The interpreter of this environment: the recorded path may not exist here.
            argv[0] = sys.executable
        return argv, "command"

    def _check_inputs(self, version: ModelVersion, run: RunLineage) -> None:
        for item in run.inputs:
            try:
                self.data.get(item.ref)
            except NotFoundError:
                raise MissingLineageError(
                    f"{version.ref} was trained on {item.ref}, which this workspace no longer "
                    "holds: pull it from a data remote (driftline data pull) to reproduce",
                    link="data version",
                ) from None

    def _diff(self, run: RunLineage) -> bytes | None:
        source = run.code.from_run
        if source is None or run.code.diff_path is None:
            return None
        for entry in self.tracking.list_artifacts(source, prefix="_driftline"):
            if entry.path == DIFF_ARTIFACT:
                return self.content.read_bytes(entry.digest, name=f"{DIFF_ARTIFACT} of {source}")
        return None

    # -- where to run it --------------------------------------------------------------

    def _run(self, argv: list[str], folder: Path, timeout: float | None) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
        s = self.settings
        env |= {
            "DRIFTLINE_HOME": str(s.home),
            "DRIFTLINE_URI": s.uri,
            "DRIFTLINE_ARTIFACT_ROOT": s.artifact_root,
            "DRIFTLINE_HASH_ALGORITHM": s.hash_algorithm,
        }
        if s.token:
            env["DRIFTLINE_TOKEN"] = s.token
        if not folder.is_dir():
            raise NotFoundError(
                f"The recorded commit has no folder {folder.name!r} to run in: start "
                "reproduce from the folder the model was trained in"
            )
        try:
            done = subprocess.run(
                argv, cwd=folder, env=env, capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise UserCodeError(f"The re-run did not finish within {timeout} s") from None
        except OSError as exc:
            raise UserCodeError(f"Could not start the re-run {shlex.join(argv)}: {exc}") from exc
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).decode("utf-8", "replace")[-2000:]
            raise UserCodeError(
                f"The re-run {shlex.join(argv)} exited with {done.returncode}:\n{tail}"
            )
        return done.stdout.decode("utf-8", "replace")

    # -- what it made -----------------------------------------------------------------

    def _counterpart(
        self,
        version: ModelVersion,
        run: RunLineage,
        entry_point: str,
        output: str,
        started: datetime,
    ) -> str:
        if entry_point == "pipeline":
            assert run.pipeline is not None
            try:
                record = json.loads(output)
            except ValueError:
                raise UserCodeError(
                    f"The pipeline re-run printed no run record: {output[-500:]}"
                ) from None
            if run.pipeline.step is None:
                return str(record["id"])
            for step in record.get("steps", []):
                if step.get("name") == run.pipeline.step and step.get("run_id"):
                    return str(step["run_id"])
            raise NotFoundError(
                f"The re-run of pipeline {run.pipeline.pipeline!r} (run {record.get('id')}) "
                f"has no executed step {run.pipeline.step!r}: the pipeline changed since"
            )
        self.tracking.flush()
        page = self.tracking.search_runs(
            experiments=run.experiment_id,
            order_by=["attributes.start_time desc"],
            max_results=100,
        )
        started_since = [
            c for c in page.items if c.id != run.id and c.start_time >= started
        ]  # newest first
        # The same name when the script names its run; else (names drawn at random)
        # the run that logged a model where the original did.
        named = [c for c in started_since if c.name == run.name]
        if named:
            return named[0].id
        path = _artifact_path(version)
        logged = [c for c in started_since if path and self.tracking.list_artifacts(c.id, path)]
        if logged:
            return logged[0].id
        raise NotFoundError(
            f"The re-run finished but recorded no run in the experiment of the original "
            f"that is named {run.name!r} or logged a model at {path or version.source}: "
            "does the command still start a run and log its model there?"
        )

    def _compare_files(
        self, version: ModelVersion, run_id: str
    ) -> tuple[bool | None, tuple[str, ...]]:
        path = _artifact_path(version)
        if path is None:
            return None, ()
        logged = {
            a.path[len(path) + 1 :]: a.digest
            for a in self.tracking.list_artifacts(run_id, path)
            if a.path.startswith(path + "/")
        }
        if not logged:
            return None, ()
        pinned = {e.path: e.digest for e in self.registry.package_files(version)}
        names = (set(logged) | set(pinned)) - {PACKAGE_METADATA}
        differing = tuple(sorted(n for n in names if logged.get(n) != pinned.get(n)))
        if differing and version.flavor in NOT_BYTE_STABLE:
            return None, differing
        return not differing, differing

    def _compare_predictions(self, version: ModelVersion, run_id: str) -> bool | None:
        """Whether both models predict the same on the version's input example (``None``
        when it has none, or the re-run logged no model there)."""
        import numpy as np

        from driftline.models import load

        path = _artifact_path(version)
        if path is None or not self.tracking.list_artifacts(run_id, path):
            return None
        # Both packages are fetched from this workspace's stores, whatever the default
        # workspace of the process is.
        with tempfile.TemporaryDirectory(prefix="driftline-reproduce-models-") as tmp:
            original = load(self.registry.materialize(version, Path(tmp) / "original"))
            example = original.input_example
            if example is None:
                return None
            self.tracking.download_artifacts(run_id, path, Path(tmp) / "rebuilt")
            rebuilt = load(Path(tmp) / "rebuilt")
            before = np.asarray(original.predict(example))
            after = np.asarray(rebuilt.predict(example))
        if before.shape != after.shape:
            return False
        if before.dtype.kind in "fiuc" and after.dtype.kind in "fiuc":
            return bool(np.allclose(before, after, rtol=1e-9, atol=1e-12, equal_nan=True))
        return bool((before == after).all())


def _notes(
    version: ModelVersion,
    recorded_inputs: tuple[str, ...],
    new_inputs: tuple[str, ...],
    match: bool | None,
    differing: tuple[str, ...],
    predictions: bool | None,
) -> list[str]:
    """What a reader of the report must know about the data and model comparisons."""
    notes: list[str] = []
    if not recorded_inputs:
        notes.append(
            "The original run recorded no dataset versions (dl.log_input): whether the "
            "re-run read the same data cannot be checked"
        )
    elif set(recorded_inputs) != set(new_inputs):
        notes.append(
            f"The re-run read {', '.join(new_inputs) or 'no recorded dataset version'}, "
            f"the original {', '.join(recorded_inputs)}: pin the versions in the "
            "parameters (customers@3, not customers@latest) to read the same data"
        )
    if match is None and differing:
        notes.append(
            f"Model bytes are not comparable for the {version.flavor} flavor "
            f"({NOT_BYTE_STABLE[version.flavor]}): the predictions on the input example "
            "are compared instead"
        )
    elif match is None:
        notes.append(
            f"The re-run logged no model at {_artifact_path(version) or version.source}: "
            "model bytes were not compared"
        )
    if predictions is None and match is not None:
        notes.append("The version has no input example: predictions were not compared")
    return notes


def _artifact_path(version: ModelVersion) -> str | None:
    if not version.source.startswith("runs:/"):
        return None
    return version.source.removeprefix("runs:/").partition("/")[2].strip("/") or None


def _compare_metrics(
    original: Mapping[str, float],
    reproduced: Mapping[str, float],
    tolerances: Mapping[str, float],
    default: float,
) -> tuple[MetricComparison, ...]:
    import math

    found = []
    for key in sorted(original):
        before, after = original[key], reproduced.get(key)
        tolerance = tolerances.get(key, default)
        if after is None:
            within = False
        elif math.isnan(before) or math.isnan(after):
            within = math.isnan(before) and math.isnan(after)
        elif math.isinf(before) or math.isinf(after):
            within = before == after
        else:
            within = abs(after - before) <= tolerance
        found.append(
            MetricComparison(
                key=key, original=before, reproduced=after, tolerance=tolerance, within=within
            )
        )
    return tuple(found)
