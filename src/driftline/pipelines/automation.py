"""Schedules and triggers: checking them, turning them into firings, running firings.

The flow, all of it recorded in the metadata database (see
:mod:`driftline.pipelines.automation_store`):

1. :meth:`Automation.collect` turns what came due into PENDING firings: a schedule's
   due times (its ``catchup`` policy decides what happens to due times missed while no
   agent ran) and each dataset trigger's newest version. Advancing the schedule (or
   the trigger's cursor) and adding the firing is one compare-and-set transaction, and
   a firing is unique per origin and key (the due time, ``customers@8``): a due time or
   a dataset version fires once, whatever crashes or races.
2. :meth:`Automation.fire` (alerts) and :meth:`Automation.fire_trigger` (by hand) add
   PENDING firings from any process.
3. :meth:`Automation.run_firing` takes a PENDING firing (PENDING -> RUNNING is also a
   compare-and-set), fills its parameters (``{trigger.dataset_version}`` from the
   payload; dataset references such as ``customers@latest`` pinned to the version they
   name at that moment, and recorded), and runs the pipeline as a tracking run tagged
   with the firing.
4. :meth:`Automation.recover`: firings left RUNNING by an agent that died are marked
   FAILED with their runs (the lease tells the next agent the first one is gone).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from driftline.core.clock import from_ms, now_ms, to_ms
from driftline.core.ids import new_id
from driftline.errors import DriftlineError, InvalidArgumentError, NotFoundError
from driftline.pipelines.cron import Cron, parse_cron
from driftline.pipelines.records import (
    CATCHUP,
    Firing,
    FiringStatus,
    Schedule,
    Trigger,
)

if TYPE_CHECKING:
    from driftline.data import DatasetVersion
    from driftline.pipelines.automation_store import AutomationStore
    from driftline.pipelines.pipeline import Pipeline
    from driftline.workspace import Workspace

__all__ = [
    "TAG_FIRING",
    "TAG_ORIGIN",
    "Automation",
    "dataset_payload",
    "due_to_fire",
    "schedule_payload",
]

TAG_FIRING = "driftline.pipeline.firing"
TAG_ORIGIN = "driftline.pipeline.origin"
#: Due times at most this many are run one by one under ``catchup="all"``.
MAX_CATCHUP = 100
#: Under ``catchup="skip"``, a due time later than this (or two agent intervals) is dropped.
SKIP_LATE_MS = 5 * 60_000

_PLACEHOLDER = re.compile(r"\{(?:trigger|schedule)\.([A-Za-z_]\w*)\}")
# name@selector, as dataset references are written (see driftline.data.service.parse_ref).
_REF = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,127})@([A-Za-z0-9_.-]+)$")


class Automation:
    """Schedules, triggers and firings of one workspace.

    Example:
        >>> auto = Automation.for_workspace(None)                        # doctest: +SKIP
        >>> auto.create_schedule("nightly", "churn_training", cron="0 3 * * *",
        ...                      timezone="Europe/Berlin")                # doctest: +SKIP
    """

    def __init__(self, workspace: Workspace, store: AutomationStore) -> None:
        self.workspace = workspace
        self.store = store

    @classmethod
    def for_workspace(cls, workspace: Workspace | None) -> Automation:
        """The automation of ``workspace`` (default: the default workspace); against a
        server, its records are the server's."""
        if workspace is None:
            from driftline.core.session import default_workspace

            workspace = cast("Workspace", default_workspace())
        store = cast("AutomationStore", workspace.service("pipelines", object))
        return cls(workspace, store)

    # -- schedules ------------------------------------------------------------------

    def create_schedule(
        self,
        name: str,
        pipeline: str | Pipeline,
        *,
        cron: str,
        timezone: str = "UTC",
        params: Mapping[str, Any] | None = None,
        catchup: str = "once",
        module: str | None = None,
        enabled: bool = True,
        now: int | None = None,
    ) -> Schedule:
        """Run ``pipeline`` whenever ``cron`` comes due in ``timezone``.

        Args:
            name: The schedule's name (unique among schedules).
            pipeline: A pipeline, or the name of one (found in ``module``).
            cron: Five cron fields, or ``@daily`` and the like.
            timezone: An IANA time zone the cron fields are read in.
            params: Pipeline parameters; ``customers@latest`` is pinned to the version
                it names when each run starts.
            catchup: Due times missed while no agent ran: ``once`` (one run for all),
                ``all`` (one run each, at most 100) or ``skip`` (none).
            module: Where the pipeline is defined (dotted name or ``.py`` path).
            enabled: Start paused with False.
            now: The creation time (epoch ms; tests); the first due time follows it.
        """
        check_name(name, "schedule")
        checked = parse_cron(cron, timezone)
        if catchup not in CATCHUP:
            raise InvalidArgumentError(
                f"Unknown catch-up policy {catchup!r}; choose one of {', '.join(CATCHUP)}"
            )
        found, values = self._target(pipeline, module, params)
        when = now_ms() if now is None else now
        record = Schedule(
            id=new_id(),
            name=name,
            pipeline=found.name,
            module=found.module,
            cron=checked.expression,
            timezone=timezone,
            params=values,
            enabled=enabled,
            catchup=catchup,
            next_due_at=from_ms(checked.next_after(when)),
            last_fired_at=None,
            created_at=from_ms(when),
            updated_at=from_ms(when),
        )
        return self.store.add_schedule(record)

    def get_schedule(self, name: str) -> Schedule:
        """A schedule by name; ``NotFoundError`` lists the schedules there are."""
        found = self.store.find_schedule(name)
        if found is None:
            known = ", ".join(s.name for s in self.store.list_schedules()) or "none"
            raise NotFoundError(f"No schedule named {name!r}; schedules: {known}")
        return found

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        return self.store.list_schedules()

    def set_enabled(self, name: str, enabled: bool, *, now: int | None = None) -> Schedule:
        """Pause or resume a schedule; resuming counts due times from now on."""
        found = self.get_schedule(name)
        when = now_ms() if now is None else now
        values: dict[str, Any] = {"enabled": enabled, "updated_at": when}
        if enabled and not found.enabled:
            # Due times that passed while paused were paused too: they are not "missed".
            values["next_due_at"] = parse_cron(found.cron, found.timezone).next_after(when)
        self.store.update_schedule(found.id, values)
        return self.get_schedule(name)

    def delete_schedule(self, name: str) -> Schedule:
        """Delete a schedule; its firings stay as history."""
        found = self.get_schedule(name)
        self.store.delete_schedule(found.id)
        return found

    # -- triggers -------------------------------------------------------------------

    def create_trigger(
        self,
        name: str,
        pipeline: str | Pipeline,
        *,
        on_dataset: str | None = None,
        on_alert: str | None = None,
        params: Mapping[str, Any] | None = None,
        module: str | None = None,
        now: int | None = None,
    ) -> Trigger:
        """Run ``pipeline`` on each new version of ``on_dataset``, on alerts from
        ``on_alert`` (see :meth:`fire`), or, with neither, when fired by hand.

        Parameters may use the firing's payload: ``{trigger.dataset_version}``,
        ``{trigger.dataset}`` and ``{trigger.ref}`` (``customers@8``) for dataset
        triggers; any key of the payload given to :meth:`fire`.
        """
        check_name(name, "trigger")
        if on_dataset is not None and on_alert is not None:
            raise InvalidArgumentError("A trigger fires on a dataset or on alerts, not both")
        kind = "manual"
        if on_dataset is not None:
            kind = "dataset"
        elif on_alert is not None:
            kind = "alert"
        cursor = None
        if on_dataset is not None:
            latest = self._latest_version(on_dataset)
            # Versions that exist now are not new: the first run comes with the next one.
            cursor = latest
        if on_alert is not None and not on_alert.strip():
            raise InvalidArgumentError("An alert trigger needs a source name (--on-alert NAME)")
        found, values = self._target(pipeline, module, params)
        when = now_ms() if now is None else now
        record = Trigger(
            id=new_id(),
            name=name,
            kind=kind,
            source=on_dataset if on_dataset is not None else on_alert,
            pipeline=found.name,
            module=found.module,
            params=values,
            enabled=True,
            cursor=cursor,
            created_at=from_ms(when),
            updated_at=from_ms(when),
        )
        return self.store.add_trigger(record)

    def get_trigger(self, name: str) -> Trigger:
        """A trigger by name; ``NotFoundError`` lists the triggers there are."""
        found = self.store.find_trigger(name)
        if found is None:
            known = ", ".join(t.name for t in self.store.list_triggers()) or "none"
            raise NotFoundError(f"No trigger named {name!r}; triggers: {known}")
        return found

    def list_triggers(self) -> list[Trigger]:
        """Every trigger, by name."""
        return self.store.list_triggers()

    def delete_trigger(self, name: str) -> Trigger:
        """Delete a trigger; its firings stay as history."""
        found = self.get_trigger(name)
        self.store.delete_trigger(found.id)
        return found

    def fire_trigger(self, name: str, payload: Mapping[str, Any] | None = None) -> Firing:
        """Fire a trigger by hand: a PENDING firing the agent runs next."""
        trigger = self.get_trigger(name)
        firing = self._firing(trigger, _payload(payload), f"manual:{new_id()}")
        self.store.add_firing(firing)
        return firing

    def fire(
        self, source: str, payload: Mapping[str, Any] | None = None, *, key: str | None = None
    ) -> list[Firing]:
        """Report an event (a monitoring alert) from ``source``: every alert trigger on
        that source gets a PENDING firing, which the agent runs.

        Args:
            source: The source name alert triggers listen to (``--on-alert NAME``).
            payload: JSON values the triggers' parameters can use (``{trigger.KEY}``).
            key: Firing twice with one key fires once (e.g. the alert's id).

        Returns:
            The firings added (an empty list when ``key`` fired already).
        """
        if key is not None and len(key) > 256:
            raise InvalidArgumentError("A firing's key is at most 256 characters")
        triggers = [t for t in self.store.list_triggers(kind="alert", source=source) if t.enabled]
        if not triggers:
            sources = sorted({t.source or "" for t in self.store.list_triggers(kind="alert")})
            raise NotFoundError(
                f"No alert trigger listens to {source!r}; sources with triggers: "
                f"{', '.join(sources) or 'none'}. Create one with `driftline trigger create "
                f"NAME --pipeline P --on-alert {source}`"
            )
        data = _payload(payload)
        dedup = f"alert:{key}" if key is not None else f"alert:{new_id()}"
        added = []
        for trigger in triggers:
            firing = self._firing(trigger, data, dedup)
            if self.store.add_firing(firing):
                added.append(firing)
        return added

    # -- firings --------------------------------------------------------------------

    def list_firings(
        self, *, origin: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[Firing]:
        """Firings, newest first, of one schedule or trigger (by name) or all."""
        state = None
        if status is not None:
            try:
                state = FiringStatus(status.upper())
            except ValueError:
                raise InvalidArgumentError(
                    f"Unknown status {status!r}; one of {', '.join(s.value for s in FiringStatus)}"
                ) from None
        return self.store.list_firings(status=state, origin_name=origin, limit=limit)

    def collect(
        self,
        now: int | None = None,
        *,
        late_ms: int = SKIP_LATE_MS,
        on_error: Callable[[str], None] | None = None,
    ) -> list[Firing]:
        """Turn due schedules and new dataset versions into PENDING firings.

        One schedule or trigger that cannot be evaluated (a stored cron this version
        cannot read, a dataset that was deleted) is reported to ``on_error`` (else
        raised) and the others still are.
        """
        when = now_ms() if now is None else now
        added: list[Firing] = []

        def each(what: str, collect: Callable[[], list[Firing]]) -> None:
            try:
                added.extend(collect())
            except DriftlineError as exc:
                if on_error is None:
                    raise
                on_error(f"{what}: {exc}")

        for schedule in self.store.list_schedules():
            if schedule.enabled and to_ms(schedule.next_due_at) <= when:
                each(
                    f"schedule {schedule.name}",
                    partial(self._collect_schedule, schedule, when, late_ms),
                )
        for trigger in self.store.list_triggers(kind="dataset"):
            if trigger.enabled and trigger.source is not None:
                each(f"trigger {trigger.name}", partial(self._collect_dataset, trigger))
        return added

    def _collect_schedule(self, schedule: Schedule, now: int, late_ms: int) -> list[Firing]:
        cron = parse_cron(schedule.cron, schedule.timezone)
        first = to_ms(schedule.next_due_at)
        chosen, missed = due_to_fire(cron, first, now, schedule.catchup, late_ms)
        firings = [
            self._firing(
                schedule, schedule_payload(schedule.name, at, missed), f"due:{at}", created=now
            )
            for at in chosen
        ]
        ok = self.store.advance_schedule(
            schedule.id, expected_due=first, next_due=cron.next_after(now), firings=firings
        )
        return firings if ok else []

    def _collect_dataset(self, trigger: Trigger) -> list[Firing]:
        assert trigger.source is not None
        latest = self.workspace.data.find_latest(trigger.source)
        if latest is None or (trigger.cursor is not None and latest.number <= trigger.cursor):
            return []
        # Versions committed between two looks start one run, on the newest.
        firing = self._firing(trigger, dataset_payload(latest), latest.ref)
        ok = self.store.advance_trigger(
            trigger.id, expected=trigger.cursor, cursor=latest.number, firing=firing
        )
        return [firing] if ok else []

    def _firing(
        self,
        origin: Schedule | Trigger,
        payload: dict[str, Any],
        key: str,
        *,
        created: int | None = None,
    ) -> Firing:
        return Firing(
            id=new_id(),
            origin="schedule" if isinstance(origin, Schedule) else "trigger",
            origin_id=origin.id,
            origin_name=origin.name,
            pipeline=origin.pipeline,
            module=origin.module,
            params=dict(origin.params),
            payload=payload,
            dedup_key=key,
            status=FiringStatus.PENDING,
            created_at=from_ms(now_ms() if created is None else created),
        )

    def pending(self, limit: int = 100) -> list[Firing]:
        """PENDING firings, oldest first."""
        return self.store.list_firings(status=FiringStatus.PENDING, limit=limit, oldest_first=True)

    def run_firing(
        self,
        firing: Firing,
        *,
        agent: str,
        executor: str = "local",
        on_run: Callable[[str], None] | None = None,
    ) -> Firing | None:
        """Run a PENDING firing's pipeline; None when another agent took it first.

        A pipeline that fails (or cannot start: an unknown pipeline, parameter or
        dataset) makes the firing FAILED with the error; nothing is raised, so an
        agent goes on with the next firing.
        """
        from driftline.pipelines.service import PipelineService

        if not self.store.start_firing(firing.id, agent=agent, now=now_ms()):
            return None
        status, error = FiringStatus.FINISHED, None
        try:
            pipeline = _load_pipeline(firing.module, firing.pipeline)
            values = self.resolve_params(pipeline, firing.params, firing.payload)
            recorded = {k: _jsonable(v) for k, v in values.items()}

            def started(run_id: str) -> None:
                self.store.set_firing_run(firing.id, run_id=run_id, resolved_params=recorded)
                if on_run is not None:
                    on_run(run_id)

            PipelineService(self.workspace).run(
                pipeline,
                values,
                executor=executor,
                tags={TAG_FIRING: firing.id, TAG_ORIGIN: f"{firing.origin}:{firing.origin_name}"},
                on_start=started,
            )
        except DriftlineError as exc:
            status, error = FiringStatus.FAILED, str(exc)
        except Exception as exc:  # the pipeline's own code, at graph building
            status, error = FiringStatus.FAILED, f"{type(exc).__name__}: {exc}"
        self.store.end_firing(firing.id, status=status, error=error, now=now_ms())
        return self.store.get_firing(firing.id)

    def resolve_params(
        self, pipeline: Pipeline, params: Mapping[str, Any], payload: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The run's parameters: ``{trigger.KEY}`` filled from the payload, defaults
        added, dataset references (``customers@latest``, given or default) pinned to
        the version they name now."""
        filled = pipeline.bind({k: _fill(k, v, payload) for k, v in params.items()})
        return {k: self._pin(v) for k, v in filled.items()}

    def _pin(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = _REF.match(value)
        if match is None or match.group(2).isdigit():
            return value
        return self.workspace.data.get(value).ref

    def recover(self, *, agent: str, only: str | None = None) -> list[Firing]:
        """Mark firings left RUNNING (all, or the one ``only``) FAILED with their runs.

        Called by an agent that has just become the leader: whoever ran them is gone
        (its lease expired), so no record is left RUNNING for ever.
        """
        from driftline.tracking import RunStatus

        running = self.store.list_firings(status=FiringStatus.RUNNING, limit=1000)
        done = []
        tracking = self.workspace.tracking
        for firing in running:
            if only is not None and firing.id != only:
                continue
            error = (
                f"The agent running it ({firing.agent}) stopped before the run ended; "
                f"marked failed by {agent}"
            )
            page = tracking.search_runs(
                filter=f"tags.`{TAG_FIRING}` = '{firing.id}' and attributes.status = 'RUNNING'",
                max_results=1000,
            )
            runs = list(page.items)
            for run in runs:
                steps = tracking.search_runs(
                    filter=f"tags.`driftline.pipeline.run` = '{run.id}' "
                    "and attributes.status = 'RUNNING'",
                    max_results=1000,
                )
                for step in steps.items:
                    tracking.end_run(step.id, RunStatus.FAILED)
                tracking.end_run(run.id, RunStatus.FAILED)
            if runs:
                error += f"; resume it with `driftline pipelines resume {runs[0].id}`"
            self.store.end_firing(firing.id, status=FiringStatus.FAILED, error=error, now=now_ms())
            done.append(firing)
        return done

    # -- shared checks ----------------------------------------------------------------

    def _target(
        self, pipeline: str | Pipeline, module: str | None, params: Mapping[str, Any] | None
    ) -> tuple[Pipeline, dict[str, Any]]:
        found = _resolve_pipeline(pipeline, module)
        values = dict(params or {})
        for key, value in values.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise InvalidArgumentError(
                    f"Parameter {key!r}={value!r} cannot be stored: schedule and trigger "
                    "parameters are JSON values (strings, numbers, lists, dicts)"
                ) from None
        # Unknown or missing parameters fail now, not at 3 am (placeholders count as given).
        found.bind(values)
        for value in values.values():
            if isinstance(value, str) and not _PLACEHOLDER.search(value):
                match = _REF.match(value)
                if match is not None and not match.group(2).isdigit():
                    self._check_dataset(match.group(1))
        return found, values

    def _check_dataset(self, name: str) -> None:
        if self.workspace.data.find_latest(name) is None:
            known = ", ".join(d.name for d in self.workspace.data.list_datasets()) or "none"
            raise NotFoundError(f"No dataset named {name!r}; datasets: {known}")

    def _latest_version(self, dataset: str) -> int:
        self._check_dataset(dataset)
        latest = self.workspace.data.find_latest(dataset)
        assert latest is not None
        return latest.number


def due_to_fire(
    cron: Cron, first: int, now: int, catchup: str, late_ms: int = SKIP_LATE_MS
) -> tuple[list[int], int]:
    """The due times to fire at ``now`` for a schedule next due at ``first`` (epoch ms,
    ``first <= now``), as its ``catchup`` policy says, and how many due times the
    ``once`` policy folded into its one firing (0 otherwise)."""
    due = [first, *cron.due_between(first, now, MAX_CATCHUP)]
    if catchup == "once":
        return due[-1:], len(due) - 1
    if catchup == "all":
        return due[-MAX_CATCHUP:], 0
    # skip: only a due time seen (nearly) on time runs
    return [at for at in due[-1:] if now - at <= late_ms], 0


def schedule_payload(name: str, at: int, missed: int) -> dict[str, Any]:
    """A schedule firing's payload: ``{trigger.scheduled_for}`` and the rest."""
    return {"schedule": name, "scheduled_for": from_ms(at).isoformat(), "missed": missed}


def dataset_payload(version: DatasetVersion) -> dict[str, Any]:
    """A new dataset version's firing payload: ``{trigger.dataset_version}``,
    ``{trigger.dataset}``, ``{trigger.ref}`` (``customers@8``) and ``version_id``."""
    return {
        "dataset": version.dataset,
        "dataset_version": version.number,
        "ref": version.ref,
        "version_id": version.id,
    }


def check_name(name: str, what: str) -> None:
    """Schedule and trigger names read like dataset names."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name):
        raise InvalidArgumentError(
            f"Invalid {what} name {name!r}: use 1-128 letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)"
        )


def _payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    data = dict(payload or {})
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"A firing's payload must be JSON values: {exc}") from None
    return data


def _fill(key: str, value: Any, payload: Mapping[str, Any]) -> Any:
    if not isinstance(value, str) or not _PLACEHOLDER.search(value):
        return value

    def lookup(name: str) -> Any:
        if name not in payload:
            raise InvalidArgumentError(
                f"Parameter {key!r} uses {{trigger.{name}}} but the firing's payload has "
                f"{', '.join(sorted(payload)) or 'no values'}"
            )
        return payload[name]

    whole = _PLACEHOLDER.fullmatch(value)
    if whole is not None:  # the value itself, typed (a version number stays a number)
        return lookup(whole.group(1))
    return _PLACEHOLDER.sub(lambda m: str(lookup(m.group(1))), value)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _resolve_pipeline(pipeline: str | Pipeline, module: str | None) -> Pipeline:
    from driftline.pipelines.discovery import discover
    from driftline.pipelines.pipeline import Pipeline, get_pipeline, list_pipelines

    if isinstance(pipeline, Pipeline):
        found = pipeline
    else:
        # A pipeline this process defined already is found without importing anything;
        # otherwise the module (or the default file) is imported, as the CLI does.
        if module is not None or pipeline not in {p.name for p in list_pipelines()}:
            try:
                discover(module)
            except NotFoundError:
                if module is not None or not list_pipelines():
                    raise
                # No default file, but pipelines defined here: the error lists those.
        found = get_pipeline(pipeline)
    if found.module == "__main__" or "<locals>" in getattr(found.fn, "__qualname__", ""):
        raise InvalidArgumentError(
            f"Pipeline {found.name!r} is defined in a script or a function, so the agent "
            "cannot import it; define it at the top level of a module (e.g. "
            "driftline_pipelines.py) and name that module"
        )
    return found


def _load_pipeline(module: str, name: str) -> Pipeline:
    from driftline.pipelines.discovery import import_pipeline_module
    from driftline.pipelines.pipeline import get_pipeline, list_pipelines

    if not any(p.name == name and p.module == module for p in list_pipelines()):
        import_pipeline_module(module)
    return get_pipeline(name)
