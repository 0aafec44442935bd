"""The model registry: versions, aliases, evaluation, quality gates, approvals, audit.

Example:
    >>> mv = dl.register_model("runs:/<run id>/model", "churn")        # doctest: +SKIP
    >>> dl.registry.set_alias("churn", "challenger", mv.version)      # doctest: +SKIP
    >>> dl.registry.promote("churn", mv.version, alias="champion", gates="gates.yaml")
    ... # doctest: +SKIP
    >>> dl.registry.rollback("churn", alias="champion")               # doctest: +SKIP

The functions here use the default workspace; ``Workspace.registry`` is the same service
for an explicit one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.core.lazy import lazy_exports
from driftline.registry.store import ANY_HOLDER

if TYPE_CHECKING:
    from driftline.models import ModelCache
    from driftline.registry.gates import parse_gates
    from driftline.registry.models import (
        AliasMove,
        Approval,
        Evaluation,
        GateResult,
        ModelVersion,
        PromotionReport,
        RegisteredModel,
    )
    from driftline.registry.promotion import GateFailedError, check_gates, promote_version
    from driftline.registry.service import RegistryService, parse_model_ref

__all__ = [
    "AliasMove",
    "Approval",
    "Evaluation",
    "GateFailedError",
    "GateResult",
    "ModelVersion",
    "PromotionReport",
    "RegisteredModel",
    "RegistryService",
    "approve",
    "check_gates",
    "compare_models",
    "delete_alias",
    "evaluate",
    "get_model",
    "get_version",
    "list_models",
    "list_versions",
    "parse_gates",
    "parse_model_ref",
    "promote",
    "promote_version",
    "register_model",
    "resolve_models_uri",
    "rollback",
    "set_alias",
    "set_policy",
    "update_model",
]


# The service pulls in the artifact store and the models stage: imported on first use.
__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            ("AliasMove", "Approval", "Evaluation", "GateResult", "ModelVersion"),
            "driftline.registry.models",
        ),
        **dict.fromkeys(("PromotionReport", "RegisteredModel"), "driftline.registry.models"),
        **dict.fromkeys(("RegistryService", "parse_model_ref"), "driftline.registry.service"),
        **dict.fromkeys(
            ("GateFailedError", "check_gates", "promote_version"), "driftline.registry.promotion"
        ),
        "parse_gates": "driftline.registry.gates",
    },
)


def _service() -> RegistryService:
    from driftline.core.session import default_workspace
    from driftline.registry.service import RegistryService

    return default_workspace().service("registry", RegistryService)


def register_model(
    source: str | Path, name: str, *, description: str | None = None
) -> ModelVersion:
    """Register ``runs:/<run id>/<path>`` (or a saved model folder) as the next version."""
    return _service().register_model(source, name, description=description)


def update_model(
    name: str, *, description: str | None = None, tags: dict[str, Any] | None = None
) -> RegisteredModel:
    """Set a registered model's description and tags (audited)."""
    return _service().update_model(name, description=description, tags=tags)


def get_model(name: str) -> RegisteredModel:
    """A registered model with its aliases."""
    return _service().get_model(name)


def get_version(ref: str) -> ModelVersion:
    """``churn/3``, ``churn@champion`` or ``churn@latest``."""
    return _service().get_version(ref)


def list_models() -> list[RegisteredModel]:
    """Every registered model."""
    return _service().list_models()


def list_versions(name: str) -> list[ModelVersion]:
    """A model's versions, newest first."""
    return _service().list_versions(name)


def set_alias(name: str, alias: str, version: int, *, expected: Any = ANY_HOLDER) -> AliasMove:
    """Point an alias at a version. ``expected`` makes it a compare-and-set: the version
    you believe holds the alias now, or ``None`` for "only if the alias is unset"."""
    return _service().set_alias(name, alias, version, expected=expected)


def delete_alias(name: str, alias: str) -> AliasMove:
    """Remove an alias."""
    return _service().delete_alias(name, alias)


def rollback(name: str, alias: str) -> AliasMove:
    """Move an alias back to its previous holder."""
    return _service().rollback(name, alias)


def approve(name: str, version: int, alias: str, *, comment: str | None = None) -> Approval:
    """Approve a version for an alias as the current user."""
    return _service().approve(name, version, alias, comment=comment)


def set_policy(alias: str, required: int) -> None:
    """Require approvals before promotion to an alias."""
    _service().set_policy(alias, required)


def _cache() -> ModelCache:
    from driftline.core.session import default_workspace
    from driftline.models import ModelCache

    return ModelCache.of(default_workspace().settings)


def promote(name: str, version: int, *, alias: str, gates: Any = None) -> PromotionReport:
    """Move ``alias`` to ``version`` if approvals are in and every gate passes.

    Raises:
        PermissionDeniedError: the alias's approval policy is not met.
        GateFailedError: a gate failed; ``error.report`` lists every gate. Nothing moved.
    """
    from driftline.registry.promotion import promote as run

    return run(_service(), name, version, alias, gates=gates, cache=_cache())


def evaluate(model: str, *, data: Any, target: str, slices: Any = ()) -> Evaluation:
    """Evaluate ``models:/name/version`` (or ``name@alias``) on data; stored on the version."""
    from driftline.registry.promotion import evaluate as run

    return run(_service(), model, data=data, target=target, slices=tuple(slices), cache=_cache())


def compare_models(
    models: Any,
    *,
    data: Any,
    target: str,
    rounds: int = 500,
    confidence: float = 0.95,
    workspace: Any = None,
) -> Any:
    """Evaluate models on identical rows; each metric's difference to the first with a
    bootstrap confidence interval (in ``workspace``, default: the default workspace)."""
    from driftline.models import ModelCache
    from driftline.registry.promotion import compare_models as run
    from driftline.registry.service import RegistryService

    if workspace is None:
        service, cache = _service(), _cache()
    else:
        service = workspace.service("registry", RegistryService)
        cache = ModelCache.of(workspace.settings)
    return run(
        service, list(models), data=data, target=target, cache=cache, rounds=rounds,
        confidence=confidence,
    )  # fmt: skip


def resolve_models_uri(uri: str, scratch: Path) -> Path:
    """``models:/churn/3`` or ``models:/churn@champion`` -> the version's pinned package
    (in the default workspace's model cache; the stage declares this resolver)."""
    from driftline.registry.promotion import cached_package

    service = _service()
    return cached_package(service, service.get_version(uri), _cache())
