"""The quickstart: the driftline loop end to end on a dataset that ships with scikit-learn.

It shows the stages built so far on the Wisconsin breast-cancer data:

1. data versions: the training and test splits are committed, profiled, and the test
   split is validated against a schema inferred from the training split;
2. experiment tracking and pipelines: several classifiers trained by the pipeline
   ``quickstart_training``, each a step whose run (a child of the pipeline's run) has
   params, per-fold and per-epoch metrics, test metrics, a plot, the packaged
   model, and lineage to both data versions; a search ranks them;
3. the registry: the best model becomes a registered version, is evaluated on the test
   version, and is promoted to ``@champion`` through quality gates;
4. team mode: the same workspace is served by ``driftline server`` on a loopback port,
   and a remote client (``uri=http://...``) reads the champion and the ranking through
   it, logs a run over HTTP and loads the champion model from the server;
5. serving and rollouts: the champion is deployed (``dl.serving.deploy``) and
   ``driftline serve --deployment`` answers for it on a loopback port; a few hundred
   requests go through ``/predict`` and MLflow's ``/invocations``. Then a challenger
   (the best other run of the champion's family) is rolled out as a canary that the
   serving process checks against stable step by step and promotes (the champion alias
   moves), and a buggy challenger (it raises on one-row requests) is rolled back
   automatically. The timeline comes from the audit log, and the prediction log is
   read back (one row per request).

6. monitoring: a monitor of the deployment sees an ordinary hour of traffic, then an
   hour with drift injected, raises an alert, and writes an HTML report over time.
7. retraining: the loop closed by a policy (``retrain.yaml``): drift alerts start
   cycles that retrain, compare, canary and promote, reject, or roll back (see
   :mod:`driftline.quickstart_loop`).

It uses only the public API (``import driftline as dl``), so it doubles as an example.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import driftline as dl
from driftline.errors import InvalidArgumentError
from driftline.pipelines import pipeline, step  # dl.step and dl.pipeline, typed

if TYPE_CHECKING:
    from driftline.data.validation import ValidationReport
    from driftline.monitoring import Alert
    from driftline.registry import Evaluation, ModelVersion, PromotionReport
    from driftline.tracking import Run

__all__ = [
    "METRICS",
    "CachedRerun",
    "MonitoringCheck",
    "QuickstartResult",
    "ServerCheck",
    "ServingCheck",
    "ServingProcess",
    "WorkspaceServer",
    "check_monitoring",
    "check_serving",
    "check_through_server",
    "quickstart_gates",
    "quickstart_training",
    "run_quickstart",
    "train_candidate",
]

MODEL_NAME = "breast-cancer"
TRAIN_DATA = "breast-cancer-train"
TEST_DATA = "breast-cancer-test"
TARGET = "target"

# metric name -> whether larger is better
METRICS = {"auc": True, "accuracy": True, "f1": True, "log_loss": False}
_FOLDS = 5
_EPOCHS = 25

Progress = Callable[[str, int, int], None]
"""Called as ``progress(what it is doing now, steps done, steps in all)``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedRerun:
    """The training pipeline run a second time, right after the first."""

    run_id: str
    cached: int  # steps whose outputs came from the cache
    steps: int
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class QuickstartResult:
    """What the quickstart did, stage by stage."""

    experiment: str
    parent_run_id: str  # the training pipeline's run
    metric: str
    runs: list[Run]  # the candidates, best first
    rerun: CachedRerun  # the training pipeline run again: every step a cache hit
    data: tuple[str, str]  # training and test versions
    validation: ValidationReport  # the test split against the training split's schema
    model_version: ModelVersion
    evaluation: Evaluation
    promotion: PromotionReport


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerCheck:
    """What a remote client saw through ``driftline server`` (stage 4)."""

    url: str
    champion: str  # the version ``name@champion`` resolved to, through the server
    runs_seen: int  # the experiment's runs, listed through the server
    remote_run_id: str  # a run the client logged over HTTP
    remote_metric: float  # ... read back through the server
    predictions_match: bool  # the champion loaded through the server predicts like the local one


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingCheck:
    """What ``driftline serve --deployment`` answered, and how the rollouts went (stage 5)."""

    url: str
    model: str  # the version that answered first: ``breast-cancer/1``
    requests: int  # sent before any rollout, half through /predict, half /invocations
    ok: int  # of those, answered 200
    sent: int  # every request sent, rollouts included
    logged: int  # rows in the prediction log afterwards (one per request sent)
    p50_ms: float
    p99_ms: float
    log_root: str  # where the prediction log lives
    promoted: str  # what the first canary's rollout ended in: ``promoted``
    champion: str  # the champion after it: ``breast-cancer/2``
    rolled_back: str  # what the buggy canary's rollout ended in: ``rolled_back``
    canary_errors: int  # requests the buggy canary failed before it was rolled back
    timeline: list[tuple[float, str, str]]  # (seconds since the deployment, action, message)


def _candidates(seed: int) -> list[tuple[str, dict[str, Any], Callable[[], Any]]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def logreg(c: float) -> Callable[[], Any]:
        return lambda: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))

    return [
        ("logreg-C0.01", {"model": "logreg", "C": 0.01}, logreg(0.01)),
        ("logreg-C1", {"model": "logreg", "C": 1.0}, logreg(1.0)),
        ("logreg-C100", {"model": "logreg", "C": 100.0}, logreg(100.0)),
        (
            "random-forest",
            {"model": "random_forest", "n_estimators": 60, "max_depth": 6},
            lambda: RandomForestClassifier(n_estimators=60, max_depth=6, random_state=seed),
        ),
        (
            "gradient-boosting",
            {"model": "hist_gradient_boosting", "learning_rate": 0.1, "max_iter": 100},
            lambda: HistGradientBoostingClassifier(
                learning_rate=0.1, max_iter=100, random_state=seed
            ),
        ),
        (
            "mlp",
            {"model": "mlp", "hidden_layer_sizes": "32", "epochs": _EPOCHS, "alpha": 1e-3},
            # Cross-validated as it is trained (`_train_epochs`): _EPOCHS passes, not 300
            # (which cost a second per fold and scored a model nobody deploys).
            lambda: make_pipeline(
                StandardScaler(),
                MLPClassifier(
                    hidden_layer_sizes=(32,), alpha=1e-3, max_iter=_EPOCHS, random_state=seed
                ),
            ),
        ),
    ]


def _scores(model: Any, x: Any, y: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    proba = model.predict_proba(x)[:, 1]
    predicted = (proba >= 0.5).astype(int)
    return {
        "auc": float(roc_auc_score(y, proba)),
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted)),
        "log_loss": float(log_loss(y, proba)),
    }


def _train_epochs(pipeline: Any, x: Any, y: Any, x_val: Any, y_val: Any) -> None:
    """Train an MLP pipeline epoch by epoch, logging the learning curve."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    scaler, mlp = pipeline[0], pipeline[-1]
    x_scaled = scaler.fit_transform(x)
    classes = np.unique(y)
    for epoch in range(_EPOCHS):
        mlp.partial_fit(x_scaled, y, classes=classes)
        val_auc = float(roc_auc_score(y_val, pipeline.predict_proba(x_val)[:, 1]))
        dl.log_metrics({"train_loss": float(mlp.loss_), "val_auc": val_auc}, step=epoch)


def _plot(model: Any, x: Any, y: Any, title: str, path: Path, auc: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    RocCurveDisplay.from_estimator(model, x, y, ax=left)
    # The legend's AUC as the ranking table prints it (scikit-learn rounds to 2 places:
    # "AUC = 1.00" beside a table's 0.9952).
    left.legend([left.lines[0]], [f"AUC = {auc:.4f}"], loc="lower right")
    left.set_title("ROC on the held-out test set")
    ConfusionMatrixDisplay.from_estimator(model, x, y, ax=right, colorbar=False)
    right.set_title("Confusion matrix")
    figure.suptitle(title)
    # Fixed margins for this fixed layout: tight_layout measured every label first, a
    # fifth of the plot's cost.
    figure.subplots_adjust(left=0.09, right=0.97, bottom=0.13, top=0.84, wspace=0.35)
    figure.savefig(path, dpi=90)
    plt.close(figure)


_TRAINING: ContextVar[Callable[[str], None] | None] = ContextVar(
    "quickstart_training_progress", default=None
)
"""Told each candidate's name as its training starts (the progress of ``run_quickstart``)."""


@step(run_name="{name}")
def train_candidate(name: str, train: str, test: str, seed: int = 0) -> dict[str, float]:
    """Train the candidate ``name`` in its own run: cross-validated on the ``train``
    version, scored on the ``test`` version, packaged and plotted, with lineage to both.

    Returns its test scores (the step's output, which a cached re-run reuses).
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    found = {n: (params, factory) for n, params, factory in _candidates(seed)}
    if name not in found:
        raise InvalidArgumentError(
            f"No quickstart candidate {name!r}; candidates: {', '.join(found)}"
        )
    params, factory = found[name]
    announce = _TRAINING.get()
    if announce is not None:
        announce(name)
    train_df, test_df = dl.data.get(train).to_pandas(), dl.data.get(test).to_pandas()
    x_train, y_train = train_df.drop(columns=[TARGET]), train_df[TARGET].to_numpy()
    x_test, y_test = test_df.drop(columns=[TARGET]), test_df[TARGET].to_numpy()
    folds = StratifiedKFold(n_splits=_FOLDS, shuffle=True, random_state=seed)
    with (
        warnings.catch_warnings(),
        tempfile.TemporaryDirectory(prefix="driftline-quickstart-") as scratch,
    ):
        # An under-trained MLP in early epochs is the point of the learning curve.
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*converge.*")
        dl.set_tags({"family": params["model"]})
        dl.log_input(train)
        dl.log_input(test)
        dl.log_params(params)
        for fold, (fit_idx, val_idx) in enumerate(folds.split(x_train, y_train)):
            model = clone(factory()).fit(x_train.iloc[fit_idx], y_train[fit_idx])
            scores = _scores(model, x_train.iloc[val_idx], y_train[val_idx])
            dl.log_metrics({f"cv_{k}": v for k, v in scores.items()}, step=fold)
        model = factory()
        if params["model"] == "mlp":
            _train_epochs(model, x_train, y_train, x_test, y_test)
        else:
            model.fit(x_train, y_train)
        test_scores = _scores(model, x_test, y_test)
        dl.log_metrics(test_scores)
        dl.models.log_model(model, "model", input_example=x_train.head(5))
        plot = Path(scratch) / "evaluation.png"
        _plot(model, x_test, y_test, name, plot, test_scores["auc"])
        dl.log_artifact(plot, artifact_path="plots")
    return test_scores


@pipeline
def quickstart_training(train: str, test: str, seed: int = 0) -> dict[str, Any]:
    """Train every quickstart candidate on the ``train`` and ``test`` data versions."""
    return {
        name: train_candidate(name=name, train=train, test=test, seed=seed)
        for name, _params, _factory in _candidates(seed)
    }


def run_quickstart(
    *,
    metric: str = "auc",
    experiment: str = "quickstart",
    seed: int = 0,
    progress: Progress | None = None,
) -> QuickstartResult:
    """Version the data, train and track the candidates, register the best, promote it.

    Example:
        >>> result = run_quickstart(metric="auc")  # doctest: +SKIP
        >>> result.runs[0].metrics["auc"]          # doctest: +SKIP
    """
    if metric not in METRICS:
        raise InvalidArgumentError(f"Unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP and BLAS libraries to limit)
    from sklearn import config_context
    from threadpoolctl import threadpool_limits

    # One native thread per pool: on a small data set, OpenMP and BLAS threads spinning
    # for cores another process holds made one gradient-boosting fit take 17 s instead
    # of 0.2 s on a busy 2-core machine. threadpoolctl limits only the libraries already
    # loaded, hence the import above.
    #
    # The inputs are a finite, bundled data set and the estimators' parameters are fixed
    # here: checking them on each of the ~100 fit, predict and metric calls cost a tenth
    # of the training's CPU time.
    with (
        threadpool_limits(limits=1),
        config_context(assume_finite=True, skip_parameter_validation=True),
    ):
        return _run(metric, experiment, seed, progress)


def _run(metric: str, experiment: str, seed: int, progress: Progress | None) -> QuickstartResult:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    report = progress or (lambda _name, _done, _total: None)
    candidates = _candidates(seed)
    steps = len(candidates) + 3

    # 1. Data: versioned, profiled, and the test split validated against the training one.
    report("Versioning the data", 0, steps)
    frame = load_breast_cancer(as_frame=True).frame
    train, test = train_test_split(
        frame, test_size=0.25, stratify=frame["target"], random_state=seed
    )
    train_v = dl.data.commit(
        TRAIN_DATA, train.reset_index(drop=True), message="breast cancer, training split"
    )
    test_v = dl.data.commit(
        TEST_DATA, test.reset_index(drop=True), message="breast cancer, held-out split"
    )
    validation = dl.data.validate(test_v, schema=dl.data.infer_schema(train_v), reference=train_v)

    # 2. Experiments: the pipeline `quickstart_training`, a step per candidate whose
    #    run (a child of the pipeline's run) is named after the candidate. `force`: the
    #    quickstart trains afresh each time; the re-run right after is all cache hits.
    names = [name for name, _params, _factory in candidates]
    announce = _TRAINING.set(lambda name: report(f"Training {name}", 1 + names.index(name), steps))
    try:
        trained = quickstart_training.run(
            experiment=experiment, force=True, train=train_v.ref, test=test_v.ref, seed=seed
        )
    finally:
        _TRAINING.reset(announce)
    report("Re-running the training pipeline", len(candidates) + 1, steps)
    started = time.perf_counter()
    again = quickstart_training.run(
        experiment=experiment, train=train_v.ref, test=test_v.ref, seed=seed
    )
    rerun_seconds = time.perf_counter() - started
    cached = sum(s.status == "CACHED" for s in again.record.steps)
    runs = [dl.get_run(s.run_id) for s in trained.record.steps if s.run_id]
    ranked = sorted(runs, key=lambda r: r.metrics[metric], reverse=METRICS[metric])

    # 3. Registry: the best run's model becomes a version, is evaluated, and is promoted
    #    to @champion only if it passes the quality gates.
    report("Registering and promoting the best model", steps - 1, steps)
    version = dl.register_model(
        f"runs:/{ranked[0].id}/model", MODEL_NAME, description=f"best of the quickstart by {metric}"
    )
    evaluation = dl.evaluate(version.uri, data=test_v.ref, target=TARGET)
    promotion = dl.registry.promote(
        MODEL_NAME, version.version, alias="champion", gates=quickstart_gates(test_v.ref)
    )
    report("Done", steps, steps)
    return QuickstartResult(
        experiment=experiment,
        parent_run_id=trained.id,
        metric=metric,
        runs=ranked,
        rerun=CachedRerun(
            run_id=again.id,
            cached=cached,
            steps=len(again.record.steps),
            seconds=rerun_seconds,
        ),
        data=(train_v.ref, test_v.ref),
        validation=validation,
        model_version=version,
        evaluation=evaluation,
        promotion=promotion,
    )


class WorkspaceServer:
    """``driftline server`` for the default workspace, a child process on a free port.

    Started before the models train (see ``driftline quickstart``), it boots on the core
    training leaves free (native thread pools are limited to one thread) instead of
    after it; :func:`check_through_server` waits for it to answer.
    """

    def __init__(self) -> None:
        import subprocess
        import sys

        local = dl.get_workspace().settings
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "driftline.cli", "--home", str(local.home),
            "server", "--port", str(port), "--workers", "1", "--uri", local.uri,
            "--artifacts", local.artifact_root, "--log-level", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        """Stop the server (a second call does nothing)."""
        import subprocess

        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def check_through_server(
    result: QuickstartResult, *, timeout: float = 60.0, server: WorkspaceServer | None = None
) -> ServerCheck:
    """Serve the default workspace with ``driftline server``, then be its remote client.

    The server is ``server`` if given (started earlier), else one started here; it is a
    child process on a free loopback port. For the check, the default workspace is
    reconfigured to ``uri=http://...`` (the same ``dl.*`` calls, now over HTTP); the
    local one is restored, and the server stopped, before this returns.
    """
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    local = dl.get_workspace().settings
    x = load_breast_cancer(as_frame=True).frame.drop(columns=[TARGET]).head(20)
    expected = np.asarray(dl.models.load(result.model_version.uri).predict(x))
    started = server or WorkspaceServer()
    url = started.url
    try:
        _wait_for_server(url, started.process, timeout)
        dl.configure(uri=url, home=local.home, capture_environment=False)
        champion = dl.registry.get_version(f"{MODEL_NAME}@champion")
        seen = list(dl.search_runs(experiment=result.experiment, max_results=1000))
        with dl.start_run(experiment=result.experiment, name="logged-over-http") as run:
            dl.log_metric("ping", 1.0)
        metric = dl.get_workspace().tracking.get_run(run.id).metrics["ping"]
        served = np.asarray(dl.models.load(f"models:/{MODEL_NAME}@champion").predict(x))
    finally:
        dl.configure(settings=local)
        started.stop()
    return ServerCheck(
        url=url,
        champion=f"{champion.name}/{champion.version}",
        runs_seen=len(seen),
        remote_run_id=run.id,
        remote_metric=metric,
        predictions_match=bool(np.array_equal(served, expected)),
    )


class ServingProcess:
    """The champion deployed and ``driftline serve --deployment`` for it, a child process
    on a free loopback port.

    Started as soon as the champion exists (see ``driftline quickstart``), it boots while
    the workspace server is checked; :func:`check_serving` waits for it to answer.
    """

    def __init__(self, *, deploy: bool = True) -> None:
        """``deploy``: apply the champion's deployment first (else serve it as it is)."""
        import subprocess
        import sys

        settings = dl.get_workspace().settings
        if deploy:
            dl.serving.deploy({"name": MODEL_NAME, "model": MODEL_NAME, "stable": "champion"})
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "driftline.cli", "--home", str(settings.home), "--uri",
            settings.uri, "--artifact-root", settings.artifact_root,
            "serve", "--deployment", MODEL_NAME, "--port", str(port), "--poll-interval", "0.1",
        ]  # fmt: skip
        # A file, not a pipe: the server logs a warning per failed request, and a full
        # pipe nobody reads would block it mid-request (a failing canary fills one).
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.log)

    def errors(self) -> str:
        """The end of what the server wrote to stderr."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        """Stop with SIGTERM, which writes the prediction log's last rows (a second call
        does nothing)."""
        import signal
        import subprocess

        if self.process.poll() is not None:
            self.log.close()
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


def check_serving(
    result: QuickstartResult,
    requests: int = 300,
    *,
    timeout: float = 60.0,
    server: ServingProcess | None = None,
) -> ServingCheck:
    """Deploy the champion and serve it with ``driftline serve --deployment``, send
    requests, roll a challenger out as a canary (promoted) and a buggy one (rolled back),
    then read the timeline and the prediction log.

    The server is ``server`` if given (started earlier), else one started here; it is
    stopped (see :meth:`ServingProcess.stop`) before the log is read.
    """
    import time

    import httpx
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    rows = frame.drop(columns=[TARGET])
    records = rows.head(requests).to_dict(orient="records")
    serving = server or ServingProcess()
    url = serving.url
    latencies: list[float] = []
    ok = sent = canary_errors = 0
    model = ""
    outcomes: list[str] = []
    try:
        challenger, buggy = _challengers(result, frame)
        _wait_for_serving(serving, timeout)
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(requests):
                record = records[i % len(records)]
                started = time.perf_counter()
                if i % 2:
                    r = client.post("/invocations", json={"dataframe_records": [record]})
                else:
                    r = client.post("/predict", json={"inputs": [record]})
                    model = model or r.json().get("model", "")
                latencies.append((time.perf_counter() - started) * 1000)
                ok += r.status_code == 200
            sent = requests
            for version in (challenger, buggy):
                dl.serving.deploy(_canary_spec(version))
                deadline = time.monotonic() + timeout
                while dl.serving.get_deployment(MODEL_NAME).rollout.state == "progressing":
                    if time.monotonic() > deadline:
                        raise InvalidArgumentError(
                            f"The canary {MODEL_NAME}/{version} did not finish its rollout "
                            f"within {timeout:g} s"
                        )
                    # Sticky routing: each request a routing key of its own.
                    for _ in range(20):
                        record = records[sent % len(records)]
                        r = client.post("/predict", json={"inputs": [record]},
                                        headers={"X-Routing-Key": str(sent)})  # fmt: skip
                        sent += 1
                        canary_errors += r.status_code == 500
                outcomes.append(str(dl.serving.get_deployment(MODEL_NAME).rollout.state))
    finally:
        serving.stop()
    logged = len(dl.serving.predictions(MODEL_NAME))
    history = list(reversed(dl.serving.history(MODEL_NAME, limit=None)))
    start = history[0].at
    timeline = [
        ((e.at - start).total_seconds(), e.action.removeprefix("deploy_"),
         str((e.after or {}).get("message", "")))
        for e in history
    ]  # fmt: skip
    latencies.sort()
    return ServingCheck(
        url=url,
        model=model,
        requests=requests,
        ok=ok,
        sent=sent,
        logged=logged,
        p50_ms=latencies[len(latencies) // 2],
        p99_ms=latencies[int(len(latencies) * 0.99) - 1],
        log_root=dl.serving.prediction_log_root(),
        promoted=outcomes[0],
        champion=dl.registry.get_version(f"{MODEL_NAME}@champion").ref,
        rolled_back=outcomes[1],
        canary_errors=canary_errors,
        timeline=timeline,
    )


def _canary_spec(version: int) -> dict[str, Any]:
    """The deployment with ``version`` as a canary: short steps, so the quickstart is quick
    (a real rollout checks every minute or so, on hundreds of requests)."""
    return {
        "name": MODEL_NAME,
        "model": MODEL_NAME,
        "stable": "champion",
        "canary": {
            "version": version,
            "steps": [25, 50, 100],
            "interval": "0.2s",
            "min_requests": 20,
            "max_failed_checks": 2,
            # One-row latencies of a few milliseconds jitter on a busy machine.
            "checks": {"error_rate": 0.02, "p99_ms_ratio": 5, "score_psi": 0.5},
        },
    }


def _challengers(result: QuickstartResult, frame: Any) -> tuple[int, int]:
    """Register the canaries: the best other run of the champion's family, and a buggy
    logistic regression that raises on one-row requests (its five-row input example
    passes, so it deploys; live traffic makes it fail)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    champion = result.runs[0]
    family = champion.tags.get("family")
    others = [r for r in result.runs[1:] if r.tags.get("family") == family] or result.runs[1:]
    challenger = dl.register_model(
        f"runs:/{others[0].id}/model", MODEL_NAME, description="quickstart challenger"
    )
    rows = frame.drop(columns=[TARGET])
    inner = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    inner.fit(rows, frame[TARGET])

    class OneRowBug(dl.models.PythonModel):
        """A model with a bug: a reshape that breaks on a single row."""

        def __init__(self, model: Any) -> None:
            self.model = model

        def predict(self, context: Any, model_input: Any) -> Any:
            if len(model_input) == 1:
                raise ValueError("cannot reshape a single row (the bug this canary has)")
            return self.model.predict(model_input)

    with dl.start_run(experiment=result.experiment, name="buggy-challenger") as run:
        dl.models.log_model(OneRowBug(inner), "model", input_example=rows.head(5))
    buggy = dl.register_model(
        f"runs:/{run.id}/model", MODEL_NAME, description="quickstart: a buggy challenger"
    )
    return challenger.version, buggy.version


def _wait_for_serving(server: ServingProcess, timeout: float) -> None:
    import time

    import httpx

    from driftline.errors import BackendError

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{server.url}/ping", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.process.kill()
            server.process.wait(10)
            raise BackendError(f"driftline serve did not start: {server.errors()}")
        time.sleep(0.05)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_server(url: str, server: Any, timeout: float) -> None:
    import time

    from driftline.api.client import ApiClient
    from driftline.errors import BackendError

    probe = ApiClient(url, retries=0, timeout=2)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                probe.get_json("/health")
                return
            except BackendError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    detail = server.stderr.read().decode(errors="replace")
                    raise BackendError(
                        f"driftline server did not start: {detail[-2000:]}"
                    ) from None
                time.sleep(0.1)
    finally:
        probe.close()


def quickstart_gates(test_ref: str) -> dict[str, Any]:
    """The gates the quickstart's champion must pass (the same structure a gates.yaml has)."""
    return {
        "evaluation": {"data": test_ref, "target": TARGET},
        "gates": [
            {"metric": "auc", "min": 0.95},
            {"metric": "accuracy", "min": 0.9},
            {"latency_p99_ms": 100},
            {"signature": "compatible"},
            {"data_validation": "passed"},
        ],
    }


# -- 6. monitoring --------------------------------------------------------------------

MONITOR_NAME = f"{MODEL_NAME}-prod"
DRIFTED = ("mean radius", "mean texture", "mean perimeter", "mean area", "worst radius")


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitoringCheck:
    """What the quickstart's monitor found (stage 6)."""

    monitor: str
    healthy_before: bool  # the window of ordinary traffic
    alert: Alert | None  # raised on the window with drift injected
    drifted_columns: list[str]
    report: str  # the over-time HTML report's path


def check_monitoring(report: Path, *, rows: int = 400) -> MonitoringCheck:
    """Monitor the champion's deployment: an ordinary hour of traffic, then an hour with
    drift injected (five size features scaled by 1.4), a report of both.

    The traffic is written to the deployment's prediction log the way ``driftline serve``
    writes it (predictions from the champion itself), so the stage stays fast; the
    monitor's reference is the champion's training data, found through lineage.
    """
    from datetime import timedelta

    from sklearn.datasets import load_breast_cancer

    from driftline.core.clock import utcnow

    features = load_breast_cancer(as_frame=True).frame.drop(columns=[TARGET])
    now = utcnow().replace(microsecond=0)
    ordinary = features.sample(rows, replace=True, random_state=1)
    drifted = features.sample(rows, replace=True, random_state=2)
    drifted[list(DRIFTED)] = drifted[list(DRIFTED)] * 1.4
    champion = dl.registry.get_version(f"{MODEL_NAME}@champion")
    model = dl.models.load(f"models:/{MODEL_NAME}@champion")
    _log_traffic(model, champion.version, ordinary, now - timedelta(hours=1))
    _log_traffic(model, champion.version, drifted, now)
    dl.monitoring.create_monitor(
        MONITOR_NAME, deployment=MODEL_NAME, window="1h", alerts=["log"], replace=True
    )
    before = dl.monitoring.run_monitor(MONITOR_NAME, at=now - timedelta(hours=1, seconds=-1))
    after = dl.monitoring.run_monitor(MONITOR_NAME, at=now + timedelta(seconds=1))
    alert = (after.raised or after.repeated or (None,))[0]
    dl.monitoring.monitor_report(MONITOR_NAME, path=str(report))
    return MonitoringCheck(
        monitor=MONITOR_NAME,
        healthy_before=before.healthy,
        alert=alert,
        drifted_columns=list(alert.figures.get("drifted_columns", [])) if alert else [],
        report=str(report),
    )


def _log_traffic(model: Any, version: int, rows: Any, end: Any, per_request: int = 20) -> None:
    """Requests of ``per_request`` rows spread over the 50 minutes before ``end``."""
    from datetime import timedelta

    from driftline.serving.predlog import PredictionLog

    plog = PredictionLog(dl.serving.prediction_log_root(), MODEL_NAME, flush_seconds=60)
    # One prediction call for the hour: the same answers as one per request, at a
    # fraction of scikit-learn's per-call input checks.
    answers = model.predict(rows)
    starts = range(0, len(rows), per_request)
    chunks = [rows.iloc[i : i + per_request] for i in starts]
    for i, (chunk, first) in enumerate(zip(chunks, starts, strict=True)):
        when = end - timedelta(minutes=50) + timedelta(minutes=50) * i / len(chunks)
        predictions = answers[first : first + per_request]
        plog.append(
            (f"quickstart-{when.timestamp()}-{i}", MODEL_NAME, version, "stable", when,
             "predict", chunk, predictions, len(chunk), 1.0, 200, None)
        )  # fmt: skip
    plog.close()
