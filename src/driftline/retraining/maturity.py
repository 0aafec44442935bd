"""MLOps maturity: the level each registered model has reached, from what is recorded.

The scale is the common five-level MLOps maturity model (levels 0 to 4), as several
cloud vendors' guides describe it: at the bottom, models are trained and shipped by
hand and nobody can say how one was made; each level automates and records one more
part of the lifecycle (experiments and data, then training, then deployment); at the
top, production monitoring starts retraining by itself and new models reach
production only through gates, approvals and gradual rollouts, every step audited.

:data:`LEVELS` writes the scale down once, each level as the capabilities it adds;
:data:`CAPABILITIES` says what each capability means and what enables it. A model is
at the highest level whose capabilities, and those of every level below it, are all
present. Capabilities are detected from the records the workspace holds (never from
configuration that might not be used): see :func:`detect` for each one's evidence.

Some records do not exist yet in this release: deployments' canary records (the
prediction log's ``variant`` column stands in for rollouts). A capability without
records is absent, and its step says what will enable it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CAPABILITIES",
    "LEVELS",
    "Capability",
    "CapabilityCheck",
    "Level",
    "ModelMaturity",
    "assess",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability:
    """One practice a level needs: what it means, and the step that gets it."""

    name: str
    meaning: str
    how: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Level:
    """One level of the scale and the capabilities it adds to the level below."""

    number: int
    name: str
    summary: str
    adds: tuple[str, ...]


CAPABILITIES: Mapping[str, Capability] = {
    c.name: c
    for c in (
        Capability(
            name="tracked_runs",
            meaning="the newest version was registered from a tracked run",
            how="train inside dl.start_run() and register with "
            "dl.register_model('runs:/<run id>/model', NAME)",
        ),
        Capability(
            name="data_versions",
            meaning="that run recorded the dataset versions it read",
            how="commit the training data (driftline data commit) and call "
            "dl.log_input('<dataset>@<version>') in the training run",
        ),
        Capability(
            name="code_versions",
            meaning="that run recorded a git commit with no uncommitted changes",
            how="train from a clean git checkout (commit first) with capture_environment on",
        ),
        Capability(
            name="pipeline",
            meaning="the newest version was produced by a pipeline run",
            how="turn the training script into steps of a @dl.pipeline and register the "
            "model from its training step (driftline pipelines run NAME)",
        ),
        Capability(
            name="registry_gates",
            meaning="a version was promoted through the registry's quality gates",
            how="promote with gates: driftline models promote NAME VERSION --alias "
            "champion --gates gates.yaml",
        ),
        Capability(
            name="served",
            meaning="the model's predictions are in the prediction log",
            how="serve it with driftline serve NAME@champion (predictions are logged)",
        ),
        Capability(
            name="progressive_rollout",
            meaning="a canary or shadow variant of the model answered traffic",
            how="roll new versions out as a canary or in shadow through a serving "
            "deployment (the prediction log records which variant answered)",
        ),
        Capability(
            name="approvals",
            meaning="promotions of the model need (or have had) sign-off by people",
            how="require sign-off: driftline models policy ALIAS --required 1, then "
            "driftline models approve NAME VERSION --alias ALIAS",
        ),
        Capability(
            name="audit",
            meaning="the audit log holds the model's changes and its chain verifies",
            how="make changes through driftline (the registry audits each one) and keep "
            "the log intact: driftline audit verify",
        ),
        Capability(
            name="monitoring",
            meaning="the model is served and a drift reference is stored to watch it with",
            how="fit a drift reference on the training data: "
            "dl.monitoring.fit_reference('<dataset>@<version>', name=NAME)",
        ),
        Capability(
            name="retraining_policy",
            meaning="a retraining policy turns drift, decay or new data into a new version",
            how="write a retrain.yaml (triggers, pipeline, evaluation, rollout) and apply it: "
            "driftline retrain apply retrain.yaml",
        ),
    )
}

LEVELS: tuple[Level, ...] = (
    Level(
        number=0,
        name="manual",
        summary="trained and shipped by hand; nothing records how a model was made",
        adds=(),
    ),
    Level(
        number=1,
        name="tracked",
        summary="experiments are tracked with their code and data versions, so a model "
        "can be traced and rebuilt",
        adds=("tracked_runs", "data_versions", "code_versions"),
    ),
    Level(
        number=2,
        name="automated training",
        summary="a pipeline trains the model and the registry gates what it promotes",
        adds=("pipeline", "registry_gates"),
    ),
    Level(
        number=3,
        name="automated deployment",
        summary="releases are served, rolled out gradually, approved and audited",
        adds=("served", "progressive_rollout", "approvals", "audit"),
    ),
    Level(
        number=4,
        name="full MLOps",
        summary="production is monitored and retraining starts by itself: the loop is closed",
        adds=("monitoring", "retraining_policy"),
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CapabilityCheck:
    """Whether a model has a capability, and the record that shows it (or why not)."""

    name: str
    present: bool
    evidence: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelMaturity:
    """A model's level, every capability checked, and the steps to the next level."""

    model: str
    level: int
    level_name: str
    checks: tuple[CapabilityCheck, ...]
    next_level: int | None
    next_steps: tuple[str, ...]


def assess(model: str, checks: Mapping[str, CapabilityCheck]) -> ModelMaturity:
    """The level ``checks`` reach (every capability of :data:`CAPABILITIES` must be checked)."""
    missing = sorted(set(CAPABILITIES) - set(checks))
    if missing:  # pragma: no cover - a wiring error, not a user error
        raise ValueError(f"Unchecked capabilities: {', '.join(missing)}")
    reached = LEVELS[0]
    for level in LEVELS[1:]:
        if not all(checks[name].present for name in level.adds):
            break
        reached = level
    following = LEVELS[reached.number + 1] if reached.number + 1 < len(LEVELS) else None
    steps: tuple[str, ...] = ()
    if following is not None:
        steps = tuple(CAPABILITIES[name].how for name in following.adds if not checks[name].present)
    return ModelMaturity(
        model=model,
        level=reached.number,
        level_name=reached.name,
        checks=tuple(checks[name] for name in CAPABILITIES),
        next_level=None if following is None else following.number,
        next_steps=steps,
    )
