"""Registry rules: registration, references, aliases, approvals, promotion, rollback, audit.

References: ``churn/3``, ``churn@champion``, ``churn@latest`` (optionally prefixed by
``models:/``). Aliases move only through compare-and-set store operations, so two
promotions racing for one alias cannot both win; every move is in the alias history and
the audit log. Rollback moves an alias back to the version it held before its latest
move (and is itself a move, so a second rollback undoes the first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.core.artifacts import ContentStore, Destination
from driftline.core.clock import utcnow
from driftline.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from driftline.registry.models import (
    AliasMove,
    Approval,
    Evaluation,
    ModelVersion,
    RegisteredModel,
)
from driftline.registry.store import ANY_HOLDER, RegistryStore

if TYPE_CHECKING:
    from driftline.core.audit import AuditEntries, AuditEntry, AuditReport
    from driftline.core.auditlog import AuditLog
    from driftline.data import DataService
    from driftline.tracking import TrackingService

__all__ = ["MODEL_FILE", "RegistryService", "parse_model_ref"]

MODEL_FILE = "driftline-model.json"
# Tries of an unconditional alias move that keeps losing races to other moves.
UNCONDITIONAL_ATTEMPTS = 5
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,127}$")


def check_model_name(name: str) -> str:
    """Model names: letters, digits, ``_ . -``; no ``/`` or ``@`` (they separate refs)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgumentError(
            f"Invalid model name {name!r}: use letters, digits, '_', '.', '-'"
        )
    return name


def check_alias(alias: str) -> str:
    """Aliases start with a letter; ``latest`` is reserved (it always means the newest)."""
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias == "latest":
        raise InvalidArgumentError(
            f"Invalid alias {alias!r}: start with a letter, then letters, digits, '_', '-'; "
            "'latest' is reserved"
        )
    return alias


MODEL_ENTITIES = ("model", "model_version", "alias")
"""The audit log's entity types of a registered model, its versions and its aliases."""


def parse_model_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``churn/3`` -> (churn, 3, None); ``churn@champion`` -> (churn, None, champion)."""
    text = ref.removeprefix("models:/")
    if "@" in text:
        name, _, alias = text.partition("@")
        return check_model_name(name), None, alias or None
    name, sep, number = text.partition("/")
    if sep:
        if not number.isdigit():
            raise InvalidArgumentError(f"Bad model version {number!r} in {ref!r}: use a number")
        return check_model_name(name), int(number), None
    return check_model_name(name), None, "latest"


class RegistryService:
    """Registered models and their versions, aliases, approvals and audit trail."""

    def __init__(
        self,
        store: RegistryStore,
        *,
        audit: AuditLog,
        content: ContentStore,
        tracking: TrackingService,
        data: DataService,
        user: str,
    ) -> None:
        self.store = store
        self.audit = audit
        self.content = content
        self.tracking = tracking
        self.data = data
        self.user = user

    # -- registration -------------------------------------------------------------

    def register_model(
        self, source: str | Path, name: str, *, description: str | None = None
    ) -> ModelVersion:
        """Register a packaged model (``runs:/<run id>/<path>`` or a local folder) as the next
        version of ``name``. Its files are pinned: later changes to the run cannot alter it."""
        check_model_name(name)
        entries, run_id = self._package_files(source)
        info = json.loads(
            self.content.read_bytes(
                next(e.digest for e in entries if e.path == MODEL_FILE),
                name=f"{source} {MODEL_FILE}",
            )
        )
        package_digest = self.data.pin(entries)
        self.store.ensure_model(name, actor=self.user)
        return self.record_version(
            name,
            {
                "source": str(source),
                "run_id": run_id,
                "package_digest": package_digest,
                "flavor": str(info.get("flavor", "unknown")),
                "signature": info.get("signature"),
                "description": description,
            },
        )

    def record_version(
        self,
        name: str,
        fields: Mapping[str, Any],
        *,
        actor: str | None = None,
        model_package: bool = True,
    ) -> ModelVersion:
        """Record the next version of a registered model from a package already stored.

        The rules every entry point applies: the model exists, the package manifest
        (``package_digest``) is in the content store and is a safe model package
        (:meth:`check_package`), and the run (``run_id``), if any, exists. ``actor``:
        who registers (a server passes its caller); the service's user by default.
        ``model_package=False``: the files are registered as they are (an MLflow
        client's version), so only the manifest's paths are checked.
        """
        from driftline.core.hashing import parse_digest

        self.get_model(name)  # NotFoundError names near ones
        digest = fields["package_digest"]
        parse_digest(digest)  # InvalidArgumentError if malformed
        if not self.content.exists(digest):
            raise NotFoundError(
                f"The package manifest {digest} is not in the artifact store: upload the "
                "package's objects before registering it"
            )
        if model_package:
            self.check_package(digest)  # InvalidArgumentError if unsafe
        else:
            self.data.accept_pin(digest)  # InvalidArgumentError if a path is unsafe
        if fields.get("run_id") is not None:
            self.tracking.get_run(fields["run_id"])  # NotFoundError for an unknown run
        return self.store.add_version(name, dict(fields), actor=self._actor(actor))

    def _actor(self, actor: str | None) -> str:
        return self.user if actor is None else actor

    def _package_files(self, source: str | Path) -> tuple[list[Any], str | None]:
        from driftline.data import ManifestEntry

        text = str(source)
        if text.startswith("runs:/"):
            run_id, _, path = text.removeprefix("runs:/").partition("/")
            path = path.strip("/")
            if not run_id or not path:
                raise InvalidArgumentError(f"Bad source {text!r}: use runs:/<run id>/<path>")
            artifacts = self.tracking.list_artifacts(run_id, path)  # NotFoundError if no run
            entries = [
                ManifestEntry(path=a.path[len(path) + 1 :], digest=a.digest, size=a.size)
                for a in artifacts
                if a.path.startswith(path + "/")
            ]
            run: str | None = run_id
        else:
            folder = Path(text)
            if not folder.is_dir():
                raise NotFoundError(
                    f"No model at {text!r}: give runs:/<run id>/<path> or a "
                    "folder written by dl.models.save_model"
                )
            entries, run = self.data.store_folder(folder), None
        if not any(e.path == MODEL_FILE for e in entries):
            raise InvalidArgumentError(
                f"{text} is not a driftline model package (no {MODEL_FILE}); log one with "
                "dl.models.log_model(model, 'model')"
            )
        return entries, run

    # -- lookup -------------------------------------------------------------------

    def get_model(self, name: str) -> RegisteredModel:
        """A registered model; ``NotFoundError`` suggests near names."""
        for model in self.store.list_models():
            if model.name == name:
                return model
        raise NotFoundError(self._unknown_model(name))

    def _unknown_model(self, name: str) -> str:
        import difflib

        names = [m.name for m in self.store.list_models()]
        near = difflib.get_close_matches(name, names, n=3)
        return f"No registered model {name!r}" + (
            f"; did you mean {', '.join(map(repr, near))}?" if near else ""
        )

    def get_version(self, ref: str) -> ModelVersion:
        """Resolve ``churn/3``, ``churn@champion`` or ``churn@latest``."""
        name, number, alias = parse_model_ref(ref)
        found = self.store.find_version(
            name, number, alias=None if alias in (None, "latest") else alias
        )
        if found is None:
            model = self.get_model(name)  # NotFoundError for an unknown model
            if alias not in (None, "latest"):
                held = ", ".join(f"{a}->{v}" for a, v in model.aliases.items()) or "none"
                raise NotFoundError(f"Model {name} has no alias {alias!r} (aliases: {held})")
            raise NotFoundError(
                f"Model {name} has no version {number}; latest is {model.latest_version}"
            )
        return found

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        """Set a registered model's description and tags (audited)."""
        from driftline.tracking import check_tags

        clean = check_tags(tags)
        self.get_model(name)  # NotFoundError names near ones
        return self.store.update_model(
            name, description=description, tags=clean, actor=self._actor(actor)
        )

    def ensure_model(
        self, name: str, *, description: str | None = None, actor: str | None = None
    ) -> RegisteredModel:
        """The registered model called ``name``, created (and audited) if missing."""
        return self.store.ensure_model(
            check_model_name(name), actor=self._actor(actor), description=description
        )

    def find_version(
        self, name: str, version: int | None = None, *, alias: str | None = None
    ) -> ModelVersion | None:
        """A version by number or alias (else the latest), or ``None``."""
        return self.store.find_version(check_model_name(name), version, alias=alias)

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model."""
        return self.store.list_models()

    def list_versions(self, name: str) -> list[ModelVersion]:
        """The versions of a model, newest first."""
        self.get_model(name)
        return self.store.list_versions(name)

    def check_package(self, package_digest: str) -> list[Any]:
        """The files of a package manifest a client uploaded, before it is registered.

        Raises:
            InvalidArgumentError: It is no manifest, lists a path that is unsafe to write
                (or two paths naming one file), or holds no model package.
        """
        entries = self.data.accept_pin(package_digest)
        if not any(e.path == MODEL_FILE for e in entries):
            raise InvalidArgumentError(
                f"Package {package_digest} is not a driftline model package (no {MODEL_FILE})"
            )
        return entries

    def package_files(self, version: ModelVersion) -> list[Any]:
        """The pinned files of a version's package."""
        return self.data.pinned(version.package_digest)

    def referenced_digests(self) -> set[str]:
        """Every object registered versions pin: package manifests and their files."""
        digests: set[str] = set()
        for model in self.store.list_models():
            for version in self.store.list_versions(model.name):
                digests |= self.data.pin_objects(version.package_digest)
        return digests

    def materialize(self, version: ModelVersion, dest: Path) -> Path:
        """Write a version's package files into ``dest`` (each verified) and return it.

        Nothing is written outside ``dest``: the manifest's paths are checked when it is
        read, and each write refuses to follow a symbolic link found in ``dest``.
        """
        files = self.package_files(version)  # read first: a refused one leaves no folder
        folder = Destination(dest, exclusive=True)
        for entry in files:
            name = f"{entry.path} of model {version.ref}"
            folder.put(entry.path, partial(self.content.get_file, entry.digest, name=name))
        return dest

    # -- aliases ------------------------------------------------------------------

    def move_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        expected: Any,
        reason: str,
        details: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> AliasMove:
        """Move ``name@alias`` to ``version`` if it still points at ``expected``
        (``ANY_HOLDER``: whatever it points at); ``ConflictError`` otherwise.

        The rules of every alias move, whoever asks (the SDK or a server's client):
        ``version`` is ``None`` exactly when the reason is ``delete``; an alias with an
        approval policy is never ``set`` directly; a ``promote`` needs the approvals the
        policy asks for; a ``rollback`` only undoes the alias's latest move.
        """
        check_alias(alias)
        if (version is None) != (reason == "delete"):
            raise InvalidArgumentError(
                "version must be null exactly when the reason is 'delete' (deleting the alias)"
            )
        required = self.store.policy(alias)
        if required and reason == "set":
            raise PermissionDeniedError(
                f"Alias {alias!r} requires {required} approval(s): use "
                f"`driftline models promote {name} {version} --alias {alias}` after approvals"
            )
        if reason == "rollback":
            self._check_rollback(name, alias, version, expected)
        elif reason == "promote" and version is not None:
            self.check_approvals(name, version, alias)
        try:
            return self.store.move_alias(
                name,
                alias,
                version,
                expected=expected,
                actor=self._actor(actor),
                reason=reason,
                details=None if details is None else dict(details),
            )
        except NotFoundError:
            if version is not None:
                self.get_version(f"{name}/{version}")  # the helpful message (near names)
            raise

    def _check_rollback(self, name: str, alias: str, version: int | None, expected: Any) -> None:
        """A rollback may only move the alias back to the version it held before its
        latest move: to any other version it would bypass approval policies."""
        history = self.store.alias_history(name, alias)
        last = history[0] if history else None
        if (
            last is None
            or last.previous_version is None
            or (version, expected) != (last.previous_version, last.version)
        ):
            raise PermissionDeniedError(
                f"A rollback of {name}@{alias} can only move it back to the version it held "
                "before its latest move; promote any other version"
            )

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        expected: Any = ANY_HOLDER,
        reason: str = "set",
    ) -> AliasMove:
        """Point ``name@alias`` at ``version``. ``expected`` (the version you believe holds
        the alias now, ``None`` for none) makes the move conditional: a move that raced
        another then raises ``ConflictError``. An unconditional move that raced another
        is tried again (it did not care what it replaced), up to
        :data:`UNCONDITIONAL_ATTEMPTS` times."""
        attempts = UNCONDITIONAL_ATTEMPTS if expected is ANY_HOLDER else 1
        for attempt in range(1, attempts + 1):
            try:
                return self.move_alias(name, alias, version, expected=expected, reason=reason)
            except ConflictError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def delete_alias(self, name: str, alias: str) -> AliasMove:
        """Remove an alias."""
        current = self.get_model(name).aliases.get(alias)
        if current is None:
            raise NotFoundError(f"Model {name} has no alias {alias!r}")
        return self.move_alias(name, alias, None, expected=current, reason="delete")

    def rollback(self, name: str, alias: str) -> AliasMove:
        """Move ``alias`` back to the version it held before its latest move."""
        history = self.store.alias_history(name, alias)
        if not history:
            raise NotFoundError(f"Alias {name}@{alias} was never set, so it has no history")
        last = history[0]
        if last.previous_version is None:
            raise ConflictError(
                f"{name}@{alias} had no holder before version {last.version}; nothing to roll "
                "back to (delete the alias instead)"
            )
        return self.move_alias(
            name, alias, last.previous_version, expected=last.version, reason="rollback"
        )

    def alias_moves(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """How aliases moved, newest first (none for a model that does not exist)."""
        return self.store.alias_history(check_model_name(name), alias)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """How aliases moved, newest first."""
        self.get_model(name)
        return self.store.alias_history(name, alias)

    # -- approvals ----------------------------------------------------------------

    def approve(
        self,
        name: str,
        version: int,
        alias: str,
        *,
        comment: str | None = None,
        actor: str | None = None,
    ) -> Approval:
        """Sign off ``name/version`` for ``alias`` as the current user (or ``actor``)."""
        check_alias(alias)
        self.get_version(f"{name}/{version}")
        approval = Approval(
            name=name,
            version=version,
            alias=alias,
            actor=self._actor(actor),
            comment=comment,
            created_at=utcnow(),
        )
        return self.store.add_approval(approval)

    def approvals(self, name: str, version: int, alias: str | None = None) -> list[Approval]:
        """Approvals of a version (for one alias, or all)."""
        return self.store.list_approvals(check_model_name(name), version, alias)

    def set_policy(self, alias: str, required: int, *, actor: str | None = None) -> None:
        """Require ``required`` approvals by distinct people before promotion to ``alias``."""
        check_alias(alias)
        if isinstance(required, bool) or not isinstance(required, int) or required < 0:
            raise InvalidArgumentError("required approvals must be a whole number >= 0")
        self.store.set_policy(alias, required, actor=self._actor(actor))

    def policy(self, alias: str) -> int:
        """How many approvals ``alias`` requires (0: no policy)."""
        return self.store.policy(check_alias(alias))

    # -- evaluations ----------------------------------------------------------------

    def record_evaluation(self, evaluation: Evaluation) -> Evaluation:
        """Store an evaluation of an existing version."""
        self.get_version(f"{evaluation.name}/{evaluation.version}")  # names near ones
        self.store.add_evaluation(evaluation)
        return evaluation

    def evaluations(self, name: str, version: int) -> list[Evaluation]:
        """Evaluations of a version, newest first."""
        return self.store.list_evaluations(check_model_name(name), version)

    def check_approvals(self, name: str, version: int, alias: str) -> None:
        """Raise ``PermissionDeniedError`` unless the alias's approval policy is met."""
        required = self.store.policy(alias)
        if not required:
            return
        approvers = {a.actor for a in self.store.list_approvals(name, version, alias)}
        if len(approvers) < required:
            raise PermissionDeniedError(
                f"Promoting {name}/{version} to {alias!r} needs {required} approval(s), it has "
                f"{len(approvers)}"
                + (f" ({', '.join(sorted(approvers))})" if approvers else "")
                + f": driftline models approve {name} {version} --alias {alias}"
            )

    # -- audit ----------------------------------------------------------------------

    def audit_log(self, *, model: str | None = None, limit: int | None = 100) -> AuditEntries:
        """Audit entries, newest first; ``model`` narrows to one model's entries (their
        ``omitted`` names the entity types a server did not show the caller)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise InvalidArgumentError(f"limit must be a whole number, not {limit!r}")
        if limit is not None and limit < 1:
            raise InvalidArgumentError(f"limit must be at least 1, not {limit}")
        if model is not None:
            check_model_name(model)
        if model is None:
            return self.audit.entries(limit=limit)
        return self.audit.entries(entity=model, entity_types=MODEL_ENTITIES, limit=limit)

    def verify_audit(self) -> AuditReport:
        """Recompute the audit chain."""
        return self.audit.verify()

    def _promotions(self, version: ModelVersion) -> list[AuditEntry]:
        """Audited promotions of this version, with the gate results recorded with them."""
        return [
            entry
            for entry in self.audit_log(model=version.name, limit=None)
            if entry.action == "alias_promote"
            and (entry.after or {}).get("version") == version.version
        ]

    def card_facts(self, ref: str) -> Mapping[str, Any]:
        """Everything a model card shows, gathered in one place."""
        version = self.get_version(ref)
        run = self.tracking.get_run(version.run_id) if version.run_id else None
        inputs = self.data.store.run_inputs(version.run_id) if version.run_id else []
        return {
            "version": version,
            "run": run,
            "inputs": [v.ref for v in inputs],
            "evaluations": self.store.list_evaluations(version.name, version.version),
            "approvals": self.store.list_approvals(version.name, version.version),
            "promotions": self._promotions(version),
            "aliases": [
                m
                for m in self.store.alias_history(version.name)
                if version.version in (m.version, m.previous_version)
            ],
        }
