"""``driftline schedule``, ``driftline trigger`` and ``driftline agent``.

Schedules and triggers are records in the workspace's database; ``driftline agent``
(one leader at a time) starts the pipeline runs they call for. See
:mod:`driftline.pipelines.automation` and :mod:`driftline.pipelines.agent`.
"""

from __future__ import annotations

import json as jsonlib
from typing import TYPE_CHECKING, Any

import typer

from driftline.cli._context import open_workspace
from driftline.cli._output import JsonOption, console, print_json, table

if TYPE_CHECKING:
    from driftline.pipelines.automation import Automation
    from driftline.pipelines.records import Firing, Schedule, Trigger

schedule_app = typer.Typer(
    help="Run pipelines on cron schedules (driftline agent starts the runs).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
trigger_app = typer.Typer(
    help="Run pipelines on new dataset versions, alerts, or by hand.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ModuleOption = typer.Option(
    None,
    "--module",
    "-m",
    help="Module defining the pipeline (dotted name or .py path); "
    "default: driftline_pipelines.py here.",
)
ParamOption = typer.Option(None, "--param", "-p", help="key=value (repeatable).")


def _automation(ctx: typer.Context) -> Automation:
    from driftline.pipelines.automation import Automation

    return Automation.for_workspace(open_workspace(ctx))


def _typed_params(pipeline: str, module: str | None, pairs: list[str]) -> dict[str, Any]:
    from driftline.cli.pipelines import _load, _params

    found = _load(module, pipeline)
    assert found is not None
    return _params(found, pairs)


def _when(value: Any) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _print_firings(title: str, firings: list[Firing]) -> None:
    if not firings:
        console.print("No firings yet", highlight=False)
        return
    table(
        title,
        ["created", "from", "status", "run id", "key", "error"],
        [
            (
                _when(f.created_at),
                f"{f.origin} {f.origin_name}",
                f.status.value,
                f.run_id or "",
                f.dedup_key,
                (f.error or "")[:200],
            )
            for f in firings
        ],
    )


# -- schedules ------------------------------------------------------------------------


@schedule_app.command("create")
def schedule_create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The schedule's name."),
    pipeline: str = typer.Option(..., "--pipeline", help="The pipeline to run."),
    cron: str = typer.Option(..., "--cron", help='Five cron fields, e.g. "0 3 * * *", or @daily.'),
    tz: str = typer.Option("UTC", "--tz", help="IANA time zone the cron is read in."),
    param: list[str] | None = ParamOption,
    catchup: str = typer.Option(
        "once", "--catchup", help="Due times missed while no agent ran: once, all or skip."
    ),
    paused: bool = typer.Option(False, "--paused", help="Create it paused."),
    module: str | None = ModuleOption,
    json: bool = JsonOption,
) -> None:
    """Create a schedule: run PIPELINE whenever CRON comes due."""
    from driftline.pipelines.cron import parse_cron

    parse_cron(cron, tz)  # a typo in the cron fails before the pipeline is imported
    params = _typed_params(pipeline, module, param or [])
    made = _automation(ctx).create_schedule(
        name,
        pipeline,
        cron=cron,
        timezone=tz,
        params=params,
        catchup=catchup,
        module=module,
        enabled=not paused,
    )
    if json:
        print_json(made)
        return
    console.print(
        f"Schedule {made.name}: pipeline {made.pipeline} {_describe(made)}; next due "
        f"{_when(made.next_due_at)}. `driftline agent` starts the runs.",
        highlight=False,
    )


def _describe(schedule: Schedule) -> str:
    from driftline.pipelines.cron import Cron

    words = Cron(schedule.cron, schedule.timezone).describe()
    return f"'{schedule.cron}' ({words}, {schedule.timezone})"


@schedule_app.command("list")
def schedule_list(ctx: typer.Context, json: bool = JsonOption) -> None:
    """List schedules with their next due time."""
    found = _automation(ctx).list_schedules()
    if json:
        print_json({"schedules": found})
        return
    if not found:
        console.print(
            "No schedules; create one with `driftline schedule create NAME --pipeline P "
            '--cron "0 3 * * *"`',
            highlight=False,
        )
        return
    table(
        "Schedules",
        ["name", "pipeline", "cron", "tz", "params", "state", "next due", "last fired"],
        [
            (
                s.name,
                s.pipeline,
                s.cron,
                s.timezone,
                _params_text(s.params),
                "enabled" if s.enabled else "paused",
                _when(s.next_due_at) if s.enabled else "",
                _when(s.last_fired_at),
            )
            for s in found
        ],
    )


@schedule_app.command("show")
def schedule_show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The schedule."),
    json: bool = JsonOption,
) -> None:
    """Show a schedule and its recent firings (the runs it started)."""
    auto = _automation(ctx)
    found = auto.get_schedule(name)
    firings = auto.list_firings(origin=name, limit=20)
    if json:
        print_json({"schedule": found, "firings": firings})
        return
    console.print(
        f"Schedule {found.name}: pipeline {found.pipeline} ({found.module}) {_describe(found)}, "
        f"{'enabled' if found.enabled else 'paused'}, catch-up {found.catchup}; params "
        f"{_params_text(found.params) or 'defaults'}; next due {_when(found.next_due_at)}",
        highlight=False,
    )
    _print_firings(f"Firings of {name}", firings)


def _set_enabled(ctx: typer.Context, name: str, enabled: bool, json: bool) -> None:
    changed = _automation(ctx).set_enabled(name, enabled)
    if json:
        print_json(changed)
        return
    state = f"resumed; next due {_when(changed.next_due_at)}" if enabled else "paused"
    console.print(f"Schedule {name} {state}", highlight=False)


@schedule_app.command("pause")
def schedule_pause(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The schedule."),
    json: bool = JsonOption,
) -> None:
    """Pause a schedule (due times while paused are not run later)."""
    _set_enabled(ctx, name, False, json)


@schedule_app.command("resume")
def schedule_resume(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The schedule."),
    json: bool = JsonOption,
) -> None:
    """Resume a paused schedule from now on."""
    _set_enabled(ctx, name, True, json)


@schedule_app.command("delete")
def schedule_delete(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The schedule."),
    json: bool = JsonOption,
) -> None:
    """Delete a schedule (the runs it started stay)."""
    gone = _automation(ctx).delete_schedule(name)
    if json:
        print_json({"deleted": gone})
        return
    console.print(f"Deleted schedule {name}", highlight=False)


# -- triggers -------------------------------------------------------------------------


@trigger_app.command("create")
def trigger_create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The trigger's name."),
    pipeline: str = typer.Option(..., "--pipeline", help="The pipeline to run."),
    on_dataset: str | None = typer.Option(
        None, "--on-dataset", help="Fire on each new version of this dataset."
    ),
    on_alert: str | None = typer.Option(
        None, "--on-alert", help="Fire on alerts from this source (dl.pipelines.fire)."
    ),
    param: list[str] | None = ParamOption,
    module: str | None = ModuleOption,
    json: bool = JsonOption,
) -> None:
    """Create a trigger; with neither --on-dataset nor --on-alert it fires by hand only.

    Parameters may use the firing: -p dataset=customers@{trigger.dataset_version}.
    """
    params = _typed_params(pipeline, module, param or [])
    made = _automation(ctx).create_trigger(
        name, pipeline, on_dataset=on_dataset, on_alert=on_alert, params=params, module=module
    )
    if json:
        print_json(made)
        return
    what = {
        "dataset": f"on each new version of dataset {made.source} (now at {made.cursor})",
        "alert": f"on alerts from {made.source}",
        "manual": f"when fired (`driftline trigger fire {made.name}`)",
    }[made.kind]
    console.print(
        f"Trigger {made.name}: pipeline {made.pipeline} runs {what}. `driftline agent` "
        "starts the runs.",
        highlight=False,
    )


@trigger_app.command("list")
def trigger_list(ctx: typer.Context, json: bool = JsonOption) -> None:
    """List triggers."""
    found = _automation(ctx).list_triggers()
    if json:
        print_json({"triggers": found})
        return
    if not found:
        console.print(
            "No triggers; create one with `driftline trigger create NAME --pipeline P "
            "--on-dataset DATASET`",
            highlight=False,
        )
        return
    table(
        "Triggers",
        ["name", "kind", "source", "pipeline", "params", "seen"],
        [
            (
                t.name,
                t.kind,
                t.source or "",
                t.pipeline,
                _params_text(t.params),
                "" if t.cursor is None else f"v{t.cursor}",
            )
            for t in found
        ],
    )


@trigger_app.command("show")
def trigger_show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The trigger."),
    json: bool = JsonOption,
) -> None:
    """Show a trigger and its recent firings."""
    auto = _automation(ctx)
    found: Trigger = auto.get_trigger(name)
    firings = auto.list_firings(origin=name, limit=20)
    if json:
        print_json({"trigger": found, "firings": firings})
        return
    console.print(
        f"Trigger {found.name} ({found.kind}{' ' + found.source if found.source else ''}): "
        f"pipeline {found.pipeline}; params {_params_text(found.params) or 'defaults'}",
        highlight=False,
    )
    _print_firings(f"Firings of {name}", firings)


@trigger_app.command("delete")
def trigger_delete(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The trigger."),
    json: bool = JsonOption,
) -> None:
    """Delete a trigger (the runs it started stay)."""
    gone = _automation(ctx).delete_trigger(name)
    if json:
        print_json({"deleted": gone})
        return
    console.print(f"Deleted trigger {name}", highlight=False)


@trigger_app.command("fire")
def trigger_fire(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The trigger."),
    data: list[str] | None = typer.Option(
        None, "--data", "-d", help="Payload key=value for {trigger.KEY} (repeatable)."
    ),
    json: bool = JsonOption,
) -> None:
    """Fire a trigger now: the agent starts its run at its next look."""
    from driftline.errors import InvalidArgumentError

    payload: dict[str, Any] = {}
    for pair in data or []:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"Give payload values as -d key=value, not {pair!r}")
        try:
            payload[key.strip()] = jsonlib.loads(text)
        except ValueError:
            payload[key.strip()] = text
    firing = _automation(ctx).fire_trigger(name, payload)
    if json:
        print_json(firing)
        return
    console.print(
        f"Fired trigger {name} (firing {firing.id}); `driftline agent --once` runs it now",
        highlight=False,
    )


# -- the agent --------------------------------------------------------------------------


def agent(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Look once, run what is due, exit."),
    interval: float = typer.Option(30.0, "--interval", help="Seconds between looks."),
    lease_ttl: float = typer.Option(
        30.0,
        "--lease-ttl",
        help="Seconds the leader's lease (and a retraining cycle's) lasts unless renewed.",
    ),
    executor: str = typer.Option("local", "--executor", help="local or processes."),
    json: bool = JsonOption,
) -> None:
    """Run schedules and triggers: one agent leads (a lease in the database), others wait.

    Run it as a service, or from cron/CI with --once. SIGTERM stops it cleanly.
    """
    import sys

    from driftline.errors import InvalidArgumentError
    from driftline.pipelines.agent import Agent

    if interval <= 0 or lease_ttl <= 0:
        raise InvalidArgumentError("--interval and --lease-ttl take a positive number of seconds")

    def say(message: str) -> None:
        # Progress goes to stderr with --json, so stdout stays one JSON document.
        print(message, file=sys.stderr if json else sys.stdout, flush=True)

    # Stages above pipelines add what the agent does for them on each look.
    import driftline.retraining.autopilot  # noqa: F401

    runner = Agent(
        open_workspace(ctx),
        interval=interval,
        lease_ttl=lease_ttl,
        executor=executor,
        say=say,
        watch_code=not once,
    )
    runner.install_signal_handlers()
    ran = runner.run(once=once)
    if runner.restart:
        import os

        # Everything is written (the CLI logs synchronously) and the lease given back.
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, "-m", "driftline.cli", *sys.argv[1:]])
    if json:
        print_json({"agent": runner.holder, "firings": ran})
    elif once and runner.led and not ran:
        say("Nothing was due")


def install_commands(root_app: typer.Typer) -> None:
    """Add ``driftline schedule``, ``driftline trigger`` and ``driftline agent``."""
    root_app.add_typer(schedule_app, name="schedule")
    root_app.add_typer(trigger_app, name="trigger")
    root_app.command("agent")(agent)
