"""The rules of serving one model: resolve it, load it verified, warm it, follow its alias.

:class:`ModelSlot` holds the model a serving process answers with. A request takes
``slot.current`` once (one attribute read: a ``(LoadedModel, ServedVersion)`` pair) and
uses that pair to the end, so a swap never changes the model under a request in flight.

Hot swap (:meth:`ModelSlot.refresh`, called by a :class:`RefreshThread` every
``poll_interval`` seconds): one indexed query asks the registry which version holds the
alias now. When it moved, the new version is loaded in the background thread (every
file verified against its manifest), warmed with a prediction on its input example,
and only then assigned to ``current``: requests never wait for a load and never see a
half-loaded model. A version that fails to load or warm is not retried until the alias
moves again; the old one keeps serving, and the failure is kept in ``events`` (the
``/status`` route and the OIP metadata show it) and logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError, NotFoundError
from driftline.serving.models import ModelTarget, ServedVersion, SwapEvent

if TYPE_CHECKING:
    from driftline.models import LoadedModel, ModelCache
    from driftline.registry import ModelVersion, RegistryService

__all__ = ["ModelSlot", "RefreshThread", "load_version", "resolve_target"]

log = logging.getLogger("driftline.serving")


def resolve_target(registry: RegistryService, target: ModelTarget) -> ModelVersion:
    """The registered version ``target`` names now.

    Raises:
        NotFoundError: No such model, version or alias (the message lists the aliases
            the model has, so a typo is easy to see).
    """
    try:
        return registry.get_version(target.ref)
    except NotFoundError as exc:
        raise NotFoundError(f"Cannot serve {target.ref}: {exc}") from None


def load_version(registry: RegistryService, cache: ModelCache, version: ModelVersion) -> Any:
    """Load a registered version's pinned package (verified file by file), from the cache."""
    from driftline.models import load_model_folder

    folder = cache.fetch(
        version.package_digest.replace(":", "-"),
        lambda dest: registry.materialize(version, dest),
    )
    # lite: a linear scikit-learn model is served by its verified numpy twin (no
    # scikit-learn or pandas in the worker); any other model loads in full.
    return load_model_folder(folder, lite=True)


def warm(model: LoadedModel) -> None:
    """Predict once on the model's input example, so the first request pays no lazy setup
    (and a model that cannot predict at all is refused before it is swapped in)."""
    from driftline.models import LinearPredictor, NumericRows

    example_file = model.info.input_example_file
    if isinstance(model.raw, LinearPredictor) and example_file is not None:
        rows = NumericRows.read_example(model.path / example_file, model.raw.feature_names or ())
        if rows is not None:  # the example as the served path shapes it: no pandas
            model.predict(rows)
            return
    example = model.input_example
    if example is not None:
        model.predict(example)


class ModelSlot:
    """The model a serving process answers with, swapped atomically on alias moves.

    Example:
        >>> slot = ModelSlot(ws.registry, ModelCache.of(ws.settings),
        ...                  ModelTarget.parse("churn@champion"))      # doctest: +SKIP
        >>> model, served = slot.current                                # doctest: +SKIP
    """

    def __init__(
        self,
        registry: RegistryService,
        cache: ModelCache,
        target: ModelTarget,
        *,
        preloaded: tuple[LoadedModel, ModelVersion] | None = None,
        on_swap: Callable[[SwapEvent], None] | None = None,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.target = target
        self.events: deque[SwapEvent] = deque(maxlen=20)
        self._on_swap = on_swap
        self._refused: int | None = None  # a version that failed: not retried until a move
        self._lock = threading.Lock()  # one refresh at a time
        if preloaded is not None:
            model, version = preloaded
        else:
            version = resolve_target(registry, target)
            model = load_version(registry, cache, version)
            warm(model)
        self.current: tuple[LoadedModel, ServedVersion] = (model, self._served(version))

    def _served(self, version: ModelVersion) -> ServedVersion:
        return ServedVersion(
            name=version.name,
            version=version.version,
            flavor=version.flavor,
            loaded_at=datetime.now(UTC),
            alias=self.target.alias,
        )

    def refresh(self) -> SwapEvent | None:
        """Follow the alias if it moved (a fixed version never moves); what happened."""
        if self.target.alias is None:
            return None
        with self._lock:
            old = self.current[1].version
            try:
                version = resolve_target(self.registry, self.target)
            except DriftlineError as exc:
                # The alias was deleted or the database is unreachable: keep serving.
                return self._record(None, old, exc)
            if version.version in (old, self._refused):
                return None
            started = time.perf_counter()
            try:
                model = load_version(self.registry, self.cache, version)
                warm(model)
            except Exception as exc:
                self._refused = version.version
                return self._record(version.version, old, exc, started)
            self.current = (model, self._served(version))  # the swap: one assignment
            self._refused = None
            return self._record(version.version, old, None, started)

    def _record(
        self, version: int | None, old: int, error: BaseException | None, started: float = 0.0
    ) -> SwapEvent | None:
        if version is None:
            # An unresolvable alias is reported once per distinct message, not every poll.
            message = f"{type(error).__name__}: {error}"
            if self.events and self.events[-1].error == message:
                return None
            version = old
        event = SwapEvent(
            at=datetime.now(UTC),
            version=version,
            previous_version=old,
            ok=error is None,
            error=None if error is None else f"{type(error).__name__}: {error}",
            seconds=time.perf_counter() - started if started else 0.0,
        )
        self.events.append(event)
        if event.ok:
            log.info("serving %s/%d (was %d)", self.target.name, version, old)
        else:
            log.error(
                "kept %s/%d: could not swap to %s: %s", self.target.name, old, version, event.error
            )
        if self._on_swap is not None:
            self._on_swap(event)
        return event

    def status(self) -> dict[str, Any]:
        """JSON: what is served, since when, and the recent swap attempts."""
        served = self.current[1]
        return {
            "model": served.name,
            "version": served.version,
            "alias": served.alias,
            "flavor": served.flavor,
            "loaded_at": served.loaded_at.isoformat(),
            "swaps": [e.to_dict() for e in self.events],
        }


class RefreshThread:
    """A daemon thread that calls ``refresh`` every ``interval`` seconds (following an
    alias or a deployment record, or driving a rollout)."""

    def __init__(
        self,
        refresh: Callable[[], Any],
        interval: float,
        *,
        enabled: bool = True,
        name: str = "watcher",
    ) -> None:
        self.refresh = refresh
        self.interval = interval
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"driftline-{name}", daemon=True)

    def start(self) -> None:
        """Start (a disabled thread, e.g. for a fixed version, never starts)."""
        if self.enabled:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # never let the thread die: the next round tries again
                log.exception("%s failed", self._thread.name)

    def stop(self) -> None:
        """Stop and wait for a refresh in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
