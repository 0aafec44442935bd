"""The quickstart: the driftline loop end to end on a dataset that ships with scikit-learn.

Today it shows experiment tracking: several classifiers for the Wisconsin breast-cancer
data, each a child run of one comparison run, with params, per-fold and per-epoch
metrics, held-out test metrics and a plot artifact; then a search ranks them. Later
stages (data versions, registry, serving, monitoring) extend this same script.

It uses only the public API (``import driftline as dl``), so it doubles as an example.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import driftline as dl
from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from driftline.tracking import Run

__all__ = ["METRICS", "QuickstartResult", "run_quickstart"]

# metric name -> whether larger is better
METRICS = {"auc": True, "accuracy": True, "f1": True, "log_loss": False}
_FOLDS = 5
_EPOCHS = 25

Progress = Callable[[str, int, int], None]
"""Called as ``progress(model name, models done, models in all)``."""


@dataclass(frozen=True, slots=True)
class QuickstartResult:
    """What the quickstart did: the comparison run and its child runs, best first."""

    experiment: str
    parent_run_id: str
    metric: str
    runs: list[Run]


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
            {"model": "random_forest", "n_estimators": 150, "max_depth": 6},
            lambda: RandomForestClassifier(n_estimators=150, max_depth=6, random_state=seed),
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
            lambda: make_pipeline(
                StandardScaler(),
                MLPClassifier(
                    hidden_layer_sizes=(32,), alpha=1e-3, max_iter=1000, random_state=seed
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

    scaler, mlp = pipeline[0], pipeline[-1]
    x_scaled = scaler.fit_transform(x)
    classes = np.unique(y)
    for epoch in range(_EPOCHS):
        mlp.partial_fit(x_scaled, y, classes=classes)
        scores = _scores(pipeline, x_val, y_val)
        dl.log_metrics({"train_loss": float(mlp.loss_), "val_auc": scores["auc"]}, step=epoch)


def _plot(model: Any, x: Any, y: Any, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    RocCurveDisplay.from_estimator(model, x, y, ax=left)
    left.set_title("ROC on the held-out test set")
    ConfusionMatrixDisplay.from_estimator(model, x, y, ax=right, colorbar=False)
    right.set_title("Confusion matrix")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def run_quickstart(
    *,
    metric: str = "auc",
    experiment: str = "quickstart",
    seed: int = 0,
    progress: Progress | None = None,
) -> QuickstartResult:
    """Train and track the candidate models; return their runs ranked by ``metric``.

    Example:
        >>> result = run_quickstart(metric="auc")  # doctest: +SKIP
        >>> result.runs[0].metrics["auc"]          # doctest: +SKIP
    """
    if metric not in METRICS:
        raise InvalidArgumentError(f"Unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    from sklearn.base import clone
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import StratifiedKFold, train_test_split

    report = progress or (lambda _name, _done, _total: None)
    candidates = _candidates(seed)
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.25, stratify=data.target, random_state=seed
    )
    folds = StratifiedKFold(n_splits=_FOLDS, shuffle=True, random_state=seed)
    with (
        warnings.catch_warnings(),
        tempfile.TemporaryDirectory(prefix="driftline-quickstart-") as scratch,
        dl.start_run(
            experiment=experiment,
            name="model-comparison",
            tags={"purpose": "quickstart", "dataset": "sklearn.breast_cancer"},
        ) as parent,
    ):
        # An under-trained MLP in early epochs is the point of the learning curve.
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*converge.*")
        dl.log_params(
            {
                "dataset": "breast_cancer",
                "test_size": 0.25,
                "folds": _FOLDS,
                "seed": seed,
                "rank_metric": metric,
            }
        )
        for done, (name, params, factory) in enumerate(candidates):
            report(name, done, len(candidates))
            with dl.start_run(experiment=experiment, name=name, tags={"family": params["model"]}):
                dl.log_params(params)
                for fold, (fit_idx, val_idx) in enumerate(folds.split(x_train, y_train)):
                    model = clone(factory()).fit(x_train[fit_idx], y_train[fit_idx])
                    scores = _scores(model, x_train[val_idx], y_train[val_idx])
                    dl.log_metrics({f"cv_{k}": v for k, v in scores.items()}, step=fold)
                model = factory()
                if params["model"] == "mlp":
                    _train_epochs(model, x_train, y_train, x_test, y_test)
                else:
                    model.fit(x_train, y_train)
                dl.log_metrics(_scores(model, x_test, y_test))
                plot = Path(scratch) / "evaluation.png"
                _plot(model, x_test, y_test, name, plot)
                dl.log_artifact(plot, artifact_path="plots")
        report("", len(candidates), len(candidates))
    direction = "desc" if METRICS[metric] else "asc"
    ranked = dl.search_runs(
        experiment=experiment,
        filter=f"attributes.parent_run_id = '{parent.id}'",
        order_by=[f"metrics.{metric} {direction}"],
    )
    return QuickstartResult(experiment, parent.id, metric, list(ranked))
