"""Stage 7 of the quickstart: the retraining loop closed, with no glue code.

The champion keeps serving through ``driftline serve --deployment`` while drift is
injected into its traffic, three times. Each time a monitor of the live traffic raises a
drift alert, the newly labelled data is committed as a new version of the quickstart's
datasets, and the retraining policy (``retrain.yaml``, written into the current folder
so it can be read) turns the alert into a cycle. The cycles are driven by
:func:`driftline.retraining.autopilot.drive`, which is what ``driftline agent`` does on
every look:

1. a new scanner measures sizes 1.4 times larger: the policy's pipeline retrains on the
   new data version, the challenger beats the champion (paired bootstrap on the newest
   labelled data), goes out as a canary on real traffic, and is promoted;
2. two more columns shift, and the new labels came through a broken join (shuffled): the
   challenger is worse, it is rejected and the champion stays;
3. the ``worst`` columns shift too, and retrain.yaml now asks for per-batch scaling (each
   request scaled by its own statistics): better offline, but a one-row request cannot
   be scaled by itself, so the canary fails live traffic and is rolled back (and
   retrain.yaml goes back to the scaling that works).

It ends with ``trace`` of a prediction the promoted challenger served.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import driftline as dl
from driftline.errors import BackendError, InvalidArgumentError
from driftline.pipelines import pipeline, step
from driftline.quickstart import DRIFTED, MODEL_NAME, TARGET, TEST_DATA, TRAIN_DATA, ServingProcess

if TYPE_CHECKING:
    from driftline.retraining import Cycle, Trace

__all__ = [
    "LOOP_MONITOR",
    "BatchStandardizer",
    "LoopCheck",
    "check_retraining",
    "quickstart_retraining",
    "retrain_policy",
    "train_challenger",
]

LOOP_MONITOR = f"{MODEL_NAME}-live"
#: Seconds within which the loop monitor counts the same drift as a repeat (the least
#: a monitor takes: each round of the loop must raise an alert of its own).
LOOP_COOLDOWN = 1.0
POLICY_FILE = "retrain.yaml"
#: The ``scaling`` values the retraining pipeline takes.
SCALINGS = ("fitted", "per_batch")


@dataclass(frozen=True, slots=True)
class _Drift:
    """One round of the loop: what shifts in the traffic and the new data, by how much,
    and how the new data or the policy went wrong."""

    story: str
    columns: tuple[str, ...]
    factor: float
    shuffled_labels: bool = False  # the new training labels came through a broken join
    scaling: str = "fitted"  # the policy's pipeline parameter for this round


_DRIFTS = (
    _Drift("a new scanner measures sizes 1.4x larger", DRIFTED, 1.4),
    _Drift(
        "mean fractal dimension and mean symmetry shift; the new labels came through a "
        "broken join (shuffled)",
        ("mean fractal dimension", "mean symmetry"), 1.6, shuffled_labels=True,
    ),
    _Drift(
        "the worst-case columns shift; retrain.yaml now scales each batch by its own "
        "statistics",
        ("worst radius", "worst texture", "worst perimeter", "worst area"), 1.5,
        scaling="per_batch",
    ),
)  # fmt: skip


class BatchStandardizer:
    """Scales each batch by its own mean and standard deviation (a training-serving skew:
    fine on an evaluation set, undefined for a one-row request)."""

    def fit(self, x: Any, y: Any = None) -> BatchStandardizer:
        """Nothing to learn: the statistics are the batch's own."""
        return self

    def transform(self, x: Any) -> Any:
        """``(x - mean) / std`` per column, over the rows of ``x`` (NaN for one row)."""
        import warnings

        import numpy as np

        values = np.asarray(x, dtype=float)
        # One row: no spread to divide by; the NaN it gives is the bug this scaler has.
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return (values - values.mean(axis=0)) / values.std(axis=0, ddof=1)

    def fit_transform(self, x: Any, y: Any = None) -> Any:
        """:meth:`transform` (nothing is fitted)."""
        return self.transform(x)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """No parameters (scikit-learn's estimator protocol)."""
        return {}


@step(run_name="retrain-{scaling}")
def train_challenger(train: str, test: str, scaling: str = "fitted") -> int:
    """Train a logistic regression on the ``train`` version, score it on ``test``, and
    register it as a new version of the quickstart's model (returned)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from driftline.quickstart import _scores

    if scaling not in SCALINGS:
        raise InvalidArgumentError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    train_v, test_v = dl.data.get(train), dl.data.get(test)
    dl.log_input(train_v)
    dl.log_input(test_v)
    dl.log_params({"model": "logreg", "C": 1.0})  # the step logs its own params
    train_df, test_df = train_v.to_pandas(), test_v.to_pandas()
    x, y = train_df.drop(columns=[TARGET]), train_df[TARGET].to_numpy()
    scaler = BatchStandardizer() if scaling == "per_batch" else StandardScaler()
    model = make_pipeline(scaler, LogisticRegression(max_iter=2000)).fit(x, y)
    dl.log_metrics(_scores(model, test_df.drop(columns=[TARGET]), test_df[TARGET].to_numpy()))
    dl.models.log_model(model, "model", input_example=x.head(5))
    run = dl.active_run()
    assert run is not None  # a step always runs inside its run
    version = dl.register_model(
        f"runs:/{run.id}/model", MODEL_NAME, description=f"retrained ({scaling} scaling)"
    )
    return int(version.version)


@pipeline
def quickstart_retraining(
    train: str = f"{TRAIN_DATA}@latest", test: str = f"{TEST_DATA}@latest", scaling: str = "fitted"
) -> int:
    """Retrain the quickstart's model on the newest data versions (the policy's pipeline)."""
    return train_challenger(train=train, test=test, scaling=scaling)


def retrain_policy(scaling: str = "fitted") -> str:
    """The quickstart's ``retrain.yaml``: drift alerts of the live monitor start a cycle;
    the challenger must beat the champion's log loss on the newest labelled test data."""
    return f"""\
# The retraining policy of {MODEL_NAME} (driftline retrain apply {POLICY_FILE}).
model: {MODEL_NAME}
deployment: {MODEL_NAME}
triggers:
  - drift: {{monitor: {LOOP_MONITOR}}}
pipeline:
  name: quickstart_retraining
  module: driftline.quickstart_loop
  params: {{train: {TRAIN_DATA}@latest, test: {TEST_DATA}@latest, scaling: {scaling}}}
evaluate: {{data: {TEST_DATA}@latest, target: {TARGET}, metric: log_loss}}
challenger_must_beat: {{metric: log_loss, by: 0.0, confidence: 0.95}}
rollout: canary        # the deployment's canary steps, checked by the serving process
cooldown: 0s           # a demo: each alert may start a cycle
max_cycles_per_day: 100   # a demo run by hand many times a day
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopCheck:
    """What the closed loop did (stage 7)."""

    policy_file: str
    cycles: list[Cycle]  # oldest first: promoted, rejected, rolled back
    champion: str  # the champion at the end: the first cycle's challenger
    timeline: list[tuple[float, str, str]]  # (seconds since the stage began, what, detail)
    trace: Trace  # of a prediction the promoted challenger served
    trace_cycle: Cycle | None  # the cycle that made the traced version
    sent: int  # requests sent to the serving process in this stage
    failed: int  # ... answered with an error (the last canary's)


@dataclass(slots=True)
class _Loop:
    """The state of one run of the stage: the clock, the timeline, the traffic."""

    client: Any
    rows: Any
    started: float = field(default_factory=time.monotonic)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    last_request: str = ""

    def say(self, what: str, detail: str) -> None:
        self.timeline.append((time.monotonic() - self.started, what, detail))

    def send(self, rows: Any, *, per_request: int) -> None:
        """Send ``rows`` to ``/predict``, ``per_request`` at a time, each request a routing
        key of its own (the canary takes its share), counting the failures."""
        records = rows.to_dict(orient="records")
        for first in range(0, len(records), per_request):
            r = self.client.post(
                "/predict",
                json={"inputs": records[first : first + per_request]},
                headers={"X-Routing-Key": str(self.sent)},
            )
            self.sent += 1
            if r.status_code == 200:
                body = r.json()
                if body.get("variant") == "stable":
                    self.last_request = str(body["request_id"])
            else:
                self.failed += 1


def _drifted(frame: Any, drifts: Sequence[_Drift]) -> Any:
    """``frame`` with every drift so far applied (they add up)."""
    out = frame.copy()
    for drift in drifts:
        out[list(drift.columns)] = out[list(drift.columns)] * drift.factor
    return out


def check_retraining(
    server: ServingProcess, folder: Path, data: tuple[str, str], *, timeout: float = 60.0
) -> LoopCheck:
    """Close the loop three times (see the module docstring) through ``server``, a
    ``driftline serve --deployment`` process started with ``deploy=False`` (the
    deployment keeps the canary steps stage 5 gave it); stopped before this returns.

    ``data`` are the training and test versions the champion came from; each round
    commits them, drifted, as the datasets' next versions.
    """
    import httpx

    from driftline.quickstart import _wait_for_serving

    train, test = (dl.data.get(ref).to_pandas() for ref in data)
    deployment = dl.serving.get_deployment(MODEL_NAME)
    if deployment.spec.canary is None:
        raise InvalidArgumentError(
            f"Deployment {MODEL_NAME} has no canary steps: run the serving stage first"
        )
    dl.monitoring.create_monitor(
        LOOP_MONITOR, deployment=MODEL_NAME, window="1m", cooldown=f"{LOOP_COOLDOWN:g}s",
        alerts=["log"],
        replace=True,
    )  # fmt: skip
    policy_file = folder / POLICY_FILE
    policy_file.write_text(retrain_policy(), encoding="utf-8")
    dl.retraining.apply(policy_file)
    features = test.drop(columns=[TARGET])
    try:
        _wait_for_serving(server, timeout)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            loop = _Loop(client, features)
            champion = dl.registry.get_version(f"{MODEL_NAME}@champion").ref
            loop.send(features.sample(100, random_state=3), per_request=20)
            loop.say("serve", f"{champion} (@champion) answers ordinary traffic")
            cycles = []
            for number, drift in enumerate(_DRIFTS, start=1):
                if drift.scaling != "fitted":
                    policy_file.write_text(retrain_policy(drift.scaling), encoding="utf-8")
                    dl.retraining.apply(policy_file)
                    loop.say("policy", f"{POLICY_FILE} applied again with scaling: {drift.scaling}")
                cycles.append(_cycle(loop, _DRIFTS[:number], train, test, timeout=timeout))
            # The folder's retrain.yaml, and the policy applied, end as the good one.
            policy_file.write_text(retrain_policy(), encoding="utf-8")
            dl.retraining.apply(policy_file)
            loop.say("policy", f"{POLICY_FILE} back to scaling: fitted, and applied")
    finally:
        server.stop()
    traced = dl.trace(loop.last_request)
    version = traced.predictions[0].model_version if traced.predictions else None
    behind = next((c for c in dl.retraining.history(MODEL_NAME) if c.version == version), None)
    return LoopCheck(
        policy_file=str(policy_file),
        cycles=cycles,
        champion=dl.registry.get_version(f"{MODEL_NAME}@champion").ref,
        timeline=loop.timeline,
        trace=traced,
        trace_cycle=behind,
        sent=loop.sent,
        failed=loop.failed,
    )


def _past_cooldown() -> None:
    """Wait until the loop monitor's last alert is older than its cooldown: inside it,
    the same condition is counted as a repeat and starts no cycle (a fast machine gets
    from one round's alert to the next round's run in under a second)."""
    from datetime import timedelta

    from driftline.core.clock import utcnow

    raised = dl.monitoring.alerts(monitor=LOOP_MONITOR)
    if raised:
        ready = raised[-1].created_at + timedelta(seconds=LOOP_COOLDOWN)
        wait = (ready - utcnow()).total_seconds()
        if wait > 0:
            time.sleep(wait + 0.01)


def _cycle(
    loop: _Loop, drifts: Sequence[_Drift], train: Any, test: Any, *, timeout: float
) -> Cycle:
    """The last of ``drifts`` in the traffic -> an alert -> a cycle, driven until it ends."""
    from driftline.core.clock import utcnow
    from driftline.retraining.autopilot import drive

    number, drift = len(drifts), drifts[-1]
    since = utcnow()
    features = _drifted(loop.rows.sample(400, replace=True, random_state=10 + number), drifts)
    sent_before = loop.sent
    loop.send(features, per_request=20)
    loop.say("drift", f"#{number}: {drift.story}; 400 rows of drifted traffic")
    _wait_logged(loop.sent - sent_before, since, timeout)
    new_train = _drifted(train, drifts)
    if drift.shuffled_labels:
        new_train[TARGET] = new_train[TARGET].sample(frac=1.0, random_state=7).to_numpy()
    train_v = dl.data.commit(TRAIN_DATA, new_train, message=f"drift #{number}: {drift.story}")
    test_v = dl.data.commit(TEST_DATA, _drifted(test, drifts), message=f"drift #{number}, labelled")
    loop.say("data", f"new labelled data committed: {train_v.ref}, {test_v.ref}")
    _past_cooldown()
    found = dl.monitoring.run_monitor(LOOP_MONITOR)
    if not found.raised:
        raise BackendError(
            f"The monitor {LOOP_MONITOR} raised no alert on drifted traffic "
            f"({found.evaluation.status}: "
            + "; ".join(c.message for c in found.evaluation.checks)
            + ")"
        )
    alert = found.raised[0]
    loop.say("alert", f"{alert.id} ({alert.severity}): {alert.message}")
    look = 0
    deadline = time.monotonic() + timeout
    cycle = None
    while True:
        look += 1
        # What the agent says is also in the audit log, read below with the times.
        drive(dl.get_workspace(), lambda _message: None)
        cycle = dl.retraining.status(MODEL_NAME)
        if cycle is not None and cycle.cause.ref == alert.id and cycle.ended:
            break
        if time.monotonic() > deadline:
            state = cycle.state.value if cycle is not None else "none"
            raise BackendError(
                f"Retraining cycle #{number} did not end within {timeout:g} s (it is {state})"
            )
        # The canary's share of one-row requests, until the serving process decides.
        loop.send(features.sample(20, random_state=look), per_request=1)
    for at, action, message in _audited(since, cycle):
        loop.timeline.append((at - loop.started, action, message))
    loop.timeline.sort(key=lambda event: event[0])
    return cycle


def _wait_logged(requests: int, since: Any, timeout: float) -> None:
    """Poll until the prediction log holds ``requests`` requests since ``since`` (the
    serving process writes it every tenth of a second)."""
    deadline = time.monotonic() + timeout
    while len(dl.serving.predictions(MODEL_NAME, since=since)) < requests:
        if time.monotonic() > deadline:
            raise BackendError(
                f"The prediction log of {MODEL_NAME} did not receive {requests} requests "
                f"within {timeout:g} s"
            )
        time.sleep(0.05)


def _audited(since: Any, cycle: Cycle) -> list[tuple[float, str, str]]:
    """The cycle's transitions and the deployment's rollout steps since ``since``, from
    the audit log, on the monotonic clock."""
    from driftline.core.clock import utcnow

    offset = time.monotonic() - utcnow().timestamp()
    audit = dl.get_workspace().audit
    events = [
        (e.at, e.action.removeprefix("retraining.cycle."), _transition(e.after or {}, cycle))
        for e in audit.entries(entity=cycle.id, limit=None)
    ]
    events += [
        (e.at, e.action.removeprefix("deploy_"),
         str((e.after or {}).get("message", "")))
        for e in dl.serving.history(MODEL_NAME, limit=None)
        if e.at >= since
    ]  # fmt: skip
    return [(at.timestamp() + offset, what, detail) for at, what, detail in events]


def _transition(after: dict[str, Any], cycle: Cycle) -> str:
    """What one audited transition of ``cycle`` says."""
    state = after.get("state", "")
    if state == "triggered":
        return f"cycle {cycle.id} started by {cycle.cause.kind} {cycle.cause.ref}"
    if state == "training":
        return "the policy's pipeline quickstart_retraining runs on the newest data versions"
    if state == "evaluating":
        return (
            f"pipeline run {after.get('run_id')} trained and registered "
            f"{MODEL_NAME}/{after.get('version')}; comparing it with the champion"
        )
    if state == "rolling_out":
        report = after.get("report") or cycle.report or {}
        low, high = report.get("ci") or (None, None)
        beaten = (
            f" ({report.get('metric')} {report.get('challenger_value'):.4f} vs the champion's "
            f"{report.get('champion_value'):.4f}, paired bootstrap CI of the difference "
            f"{low:+.4f} to {high:+.4f})"
            if low is not None and high is not None
            else ""
        )
        return (
            f"challenger {report.get('verdict', '')}{beaten}; canary of "
            f"{MODEL_NAME}/{cycle.version} applied"
        )
    return str(after.get("reason") or state)
