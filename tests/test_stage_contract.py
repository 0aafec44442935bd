"""The stage contract, checked for every declared stage (in the spirit of ``check_estimator``).

For each stage in the stage list:

- what its ``example`` hook stores through the public API survives ``gc`` with a zero
  grace period (a stage with roots must carry the hook, so it cannot skip the check);
- its tables exist after the migrations ran, on SQLite and PostgreSQL;
- its routers mount on the server app and its commands appear in ``driftline --help``;
- it imports only what the layering allows.

A toy stage written by the test (a table with its own migration branch, one stored
object, a route, a command) shows that adding a stage needs its package and one line
in the stage list, nothing else; and a toy that forgets its gc roots fails the check.
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, inspect

import driftline.stages as stages_module
import test_architecture as layering
from driftline.core.metadata import Database, current_heads, ensure_schema, metadata, upgrade
from driftline.core.stage import Stage, load_object, no_roots
from driftline.errors import SchemaVersionError
from driftline.gc import collect_garbage
from driftline.settings import Settings
from driftline.stages import KERNEL_TABLES, STAGES, load_stages, migration_history
from driftline.workspace import Workspace

DECLARED = load_stages()


def by_name(stage: Stage[Any]) -> str:
    return stage.name


def open_workspace(root: Path, stages: Sequence[str] = STAGES, **overrides: Any) -> Workspace:
    return Workspace.from_settings(
        Settings.load(
            home=root / ".driftline",
            capture_environment=False,
            async_logging=False,
            **overrides,
        ),
        stages=stages,
    )


# -- the checks, usable on any stage list ----------------------------------------------------


def check_objects_survive_gc(stages: Sequence[str], name: str, root: Path) -> None:
    """Store the stage's example, collect garbage with no grace, and find it all intact."""
    stage = next(s for s in load_stages(stages) if s.name == name)
    if stage.example is None:
        assert stage.gc_roots is no_roots, (
            f"the {name} stage declares gc roots but no example hook to check them with"
        )
        return
    root.mkdir(parents=True, exist_ok=True)
    with open_workspace(root, stages) as ws:
        stored = set(stage.example(ws, root))
        assert stored, f"the {name} stage's example stored nothing"
        collect_garbage(ws, grace_seconds=0)
        lost = sorted(d for d in stored if not ws.content.exists(d))
        assert not lost, f"gc deleted objects the {name} stage stored: {lost}"
        for digest in stored:
            ws.content.read_bytes(digest)  # verified on read


def declared_tables(stage: Stage[Any]) -> set[str]:
    names = set()
    for module_name in stage.tables:
        module = importlib.import_module(module_name)
        names |= {v.name for v in vars(module).values() if isinstance(v, Table)}
    return names


def check_tables_exist(stages: Sequence[str], name: str, url: str) -> None:
    stage = next(s for s in load_stages(stages) if s.name == name)
    database = Database(url)
    try:
        ensure_schema(database, migration_history(load_stages(stages)))
        present = set(database.read(lambda conn: inspect(conn).get_table_names()))
    finally:
        database.dispose()
    missing = declared_tables(stage) - present
    assert not missing, f"the {name} stage's tables are not migrated: {sorted(missing)}"
    for table in declared_tables(stage):
        assert table in metadata.tables, f"{table} is not declared on the shared metadata"


def check_routes_mount(stages: Sequence[str], name: str, root: Path) -> None:
    from driftline.server.app import create_app

    stage = next(s for s in load_stages(stages) if s.name == name)
    app = create_app(Settings.load(home=root / ".driftline"), stages=stages)
    documented = set(app.openapi()["paths"])
    for path in stage.routes:
        for route in load_object(path).routes:
            if getattr(route, "include_in_schema", True):
                # OpenAPI names a parameter without its converter ({id:path} -> {id}).
                openapi_path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
                assert f"/api/v1{openapi_path}" in documented, (
                    f"{route.path} of {name} is not mounted"
                )


def check_commands_listed(stages: Sequence[str], name: str) -> list[str]:
    import typer
    from typer.testing import CliRunner

    from driftline.cli.app import build_app

    stage = next(s for s in load_stages(stages) if s.name == name)
    if stage.cli is None:
        return []
    probe = typer.Typer()
    load_object(stage.cli)(probe)
    names = [group.name for group in probe.registered_groups]
    names += [command.name or command.callback.__name__ for command in probe.registered_commands]  # type: ignore[union-attr]
    assert names, f"the {name} stage's cli hook adds no command"
    done = CliRunner().invoke(build_app(stages), ["--help"])
    assert done.exit_code == 0, done.output
    listed = {line.split()[0] for line in done.output.splitlines() if line.startswith("  ")}
    assert set(names) <= listed, f"{name}'s commands {names} are not in --help"
    return names


WEB_LIBRARIES = ("fastapi", "starlette")


def check_layering(name: str) -> None:
    package = layering.PACKAGE / name
    bad = []
    for imp in layering.ALL_IMPORTS:
        if layering.area(imp.source) != name:
            continue
        target = layering.target_area(imp.target)
        if target in layering.ADAPTERS or (
            target == "workspace"
            and imp.source.name not in layering.PROCESS_ENTRY_POINTS
            and name not in layering.WORKSPACE_USERS
        ):
            bad.append(f"{imp.where} imports {imp.target}")
        frameworks = ("typer", "click", "rich") + (() if name in layering.WEB else WEB_LIBRARIES)
        if imp.target.split(".")[0] in frameworks:
            bad.append(f"{imp.where} imports {imp.target}")
        if target in set(layering.STAGES) - {name} and target not in layering.MAY_USE.get(
            name, set(layering.STAGES)
        ):
            bad.append(f"{imp.where}: {name} may not use {target}")
    assert package.is_dir()
    assert not bad, "\n".join(bad)


# -- every declared stage ----------------------------------------------------------------------


def test_the_stage_list_names_each_stage_once_and_in_use_order() -> None:
    names = [stage.name for stage in DECLARED]
    assert names == [
        "tracking",
        "data",
        "models",
        "registry",
        "auth",
        "serving",
        "monitoring",
        "pipelines",
        "retraining",
    ]
    for stage in DECLARED:
        assert stage.api is None or importlib.import_module(stage.api)


@pytest.mark.parametrize("stage", DECLARED, ids=by_name)
def test_every_public_name_of_the_stage_resolves(stage: Stage[Any]) -> None:
    """Stage packages import their names on first use: each must resolve to an object."""
    package = importlib.import_module(f"driftline.{stage.name}")
    for name in package.__all__:
        value = getattr(package, name)
        assert not isinstance(value, type(sys)), f"driftline.{stage.name}.{name} is a module"


@pytest.mark.parametrize("stage", DECLARED, ids=by_name)
def test_objects_stored_through_the_stage_survive_gc(stage: Stage[Any], tmp_path: Path) -> None:
    check_objects_survive_gc(STAGES, stage.name, tmp_path)


@pytest.mark.parametrize("stage", DECLARED, ids=by_name)
def test_the_stage_tables_exist_after_upgrade(stage: Stage[Any], db_url: str) -> None:
    check_tables_exist(STAGES, stage.name, db_url)


def test_the_kernel_tables_exist_after_upgrade(db_url: str) -> None:
    database = Database(db_url)
    try:
        ensure_schema(database, migration_history())
        present = set(database.read(lambda conn: inspect(conn).get_table_names()))
    finally:
        database.dispose()
    for module_name in KERNEL_TABLES:
        module = importlib.import_module(module_name)
        assert {v.name for v in vars(module).values() if isinstance(v, Table)} <= present


@pytest.mark.parametrize("stage", DECLARED, ids=by_name)
def test_the_stage_routes_mount_on_the_server(stage: Stage[Any], tmp_path: Path) -> None:
    check_routes_mount(STAGES, stage.name, tmp_path)


@pytest.mark.parametrize("stage", DECLARED, ids=by_name)
def test_the_stage_commands_appear_in_help(stage: Stage[Any]) -> None:
    check_commands_listed(STAGES, stage.name)


@pytest.mark.parametrize("stage", DECLARED, ids=by_name)
def test_the_stage_imports_respect_the_layering(stage: Stage[Any]) -> None:
    check_layering(stage.name)


# -- a toy stage: its package plus one line in the stage list -------------------------------

_TOY_FILES = {
    "__init__.py": '''
        """A toy stage: notes whose text is stored in the content store."""
    ''',
    "_tables.py": """
        from sqlalchemy import Column, String, Table

        from driftline.core.metadata import metadata

        toy_notes = Table(
            "toy_notes",
            metadata,
            Column("name", String(64), primary_key=True),
            Column("digest", String(80), nullable=False),
        )
    """,
    "migrations/__init__.py": "",
    "migrations/toy_0001.py": '''
        """Toy notes.

        Revision ID: toy_0001
        Revises: 0004
        """

        import sqlalchemy as sa
        from alembic import op

        revision = "toy_0001"
        down_revision = "0004"
        branch_labels = ("toy",)
        depends_on = None


        def upgrade() -> None:
            op.create_table(
                "toy_notes",
                sa.Column("name", sa.String(64), nullable=False),
                sa.Column("digest", sa.String(80), nullable=False),
                sa.PrimaryKeyConstraint("name", name="pk_toy_notes"),
            )


        def downgrade() -> None:
            op.drop_table("toy_notes")
    ''',
    "service.py": """
        from driftline.core.artifacts import ContentStore
        from driftline.core.metadata import Database


        class ToyService:
            def __init__(self, database: Database, content: ContentStore) -> None:
                self.database = database
                self.content = content

            def add_note(self, name: str, text: str) -> str:
                from toystage._tables import toy_notes

                digest = self.content.put_bytes(text.encode()).digest
                self.database.write(
                    lambda conn: conn.execute(toy_notes.insert().values(name=name, digest=digest))
                )
                return digest

            def notes(self) -> dict[str, str]:
                from sqlalchemy import select

                from toystage._tables import toy_notes

                rows = self.database.read(lambda conn: conn.execute(select(toy_notes)).all())
                return {row.name: self.content.read_bytes(row.digest).decode() for row in rows}

            def digests(self) -> set[str]:
                from sqlalchemy import select

                from toystage._tables import toy_notes

                query = select(toy_notes.c.digest)
                return set(self.database.read(lambda conn: conn.execute(query).scalars().all()))
    """,
    "routes.py": """
        from fastapi import APIRouter, Request

        from toystage.service import ToyService

        router = APIRouter(tags=["toy"])


        @router.get("/toy/notes")
        def notes(request: Request) -> dict[str, str]:
            return request.app.state.workspace.service("toy", ToyService).notes()
    """,
    "cli.py": """
        import typer

        from driftline.cli._context import open_workspace

        app = typer.Typer(help="Toy notes.", no_args_is_help=True)


        @app.command()
        def add(ctx: typer.Context, name: str, text: str) -> None:
            from toystage.service import ToyService

            typer.echo(open_workspace(ctx).service("toy", ToyService).add_note(name, text))


        def install_commands(root: typer.Typer) -> None:
            root.add_typer(app, name="toy")
    """,
    "stage.py": """
        from driftline.core.stage import Stage, no_roots


        def build(kernel, uses):
            from toystage.service import ToyService

            return ToyService(kernel.require_database("toy"), kernel.content)


        def example(host, tmp_path):
            from toystage.service import ToyService

            return [host.service("toy", ToyService).add_note("first", "kept by gc")]


        STAGE = Stage(
            name="toy",
            uses=("tracking",),
            build=build,
            gc_roots=lambda service: service.digests(),
            tables=("toystage._tables",),
            migrations="toystage.migrations",
            routes=("toystage.routes:router",),
            cli="toystage.cli:install_commands",
            example=example,
        )

        # The same stage, forgetting that its notes refer to stored objects.
        FORGETFUL = Stage(
            name="toy",
            build=build,
            gc_roots=no_roots,
            tables=("toystage._tables",),
            migrations="toystage.migrations",
            example=example,
        )
    """,
}
TOY = (*STAGES, "toystage.stage:STAGE")
FORGETFUL_TOY = (*STAGES, "toystage.stage:FORGETFUL")


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The toy stage's package, importable as ``toystage`` for the test."""
    folder = tmp_path / "toy-src" / "toystage"
    for name, text in _TOY_FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    monkeypatch.syspath_prepend(str(folder.parent))
    yield tmp_path / "toy-root"
    # The toy's table must not stay declared for the tests that follow.
    if "toy_notes" in metadata.tables:
        metadata.remove(metadata.tables["toy_notes"])
    for module in [m for m in sys.modules if m == "toystage" or m.startswith("toystage.")]:
        del sys.modules[module]
    for paths in (TOY, FORGETFUL_TOY):
        stages_module._cache.pop(paths, None)


def test_a_toy_stage_passes_the_contract(toy: Path, tmp_path: Path) -> None:
    check_objects_survive_gc(TOY, "toy", toy / "gc")
    check_tables_exist(TOY, "toy", f"sqlite:///{tmp_path / 'tables.db'}")
    check_routes_mount(TOY, "toy", toy / "routes")
    assert check_commands_listed(TOY, "toy") == ["toy"]


def test_a_toy_stage_forgetting_its_roots_fails_the_contract(toy: Path) -> None:
    with pytest.raises(AssertionError, match="gc deleted objects the toy stage stored"):
        check_objects_survive_gc(FORGETFUL_TOY, "toy", toy)


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_a_toy_stage_is_migrated_served_and_commanded(toy: Path) -> None:
    from starlette.testclient import TestClient
    from typer.testing import CliRunner

    from driftline.cli.app import build_app
    from driftline.server.app import create_app

    home = toy / ".driftline"
    done = CliRunner().invoke(build_app(TOY), ["--home", str(home), "toy", "add", "a", "hello"])
    assert done.exit_code == 0, done.output
    digest = done.output.strip()
    settings = Settings.load(home=home, capture_environment=False)
    with TestClient(create_app(settings, stages=TOY)) as client:
        answer = client.get("/api/v1/toy/notes")
    assert answer.status_code == 200
    assert answer.json() == {"a": "hello"}
    with open_workspace(toy, TOY) as ws:
        assert ws.database is not None
        assert "toy_0001" in current_heads(ws.database)
        assert collect_garbage(ws, grace_seconds=0).unreferenced == ()
        assert ws.content.exists(digest)


def test_a_database_at_the_kernel_chain_upgrades_to_a_new_stage_branch(toy: Path) -> None:
    """A database made before the stage existed (revision 0004, one row) is refused until
    ``driftline db upgrade``, which adds the stage's branch and keeps the data."""
    from typer.testing import CliRunner

    from driftline.cli.app import build_app

    with open_workspace(toy) as ws:  # the stages as they were, without the toy's branch
        assert ws.database is not None
        before = current_heads(ws.database)
        assert "toy_0001" not in before
        ws.tracking.create_experiment("kept")
    url = f"sqlite:///{toy / '.driftline' / 'driftline.db'}"
    database = Database(url)
    try:
        with pytest.raises(SchemaVersionError, match="driftline db upgrade"):
            ensure_schema(database, migration_history(load_stages(TOY)))
    finally:
        database.dispose()
    done = CliRunner().invoke(build_app(TOY), ["--home", str(toy / ".driftline"), "db", "upgrade"])
    assert done.exit_code == 0, done.output
    assert "toy_0001" in done.output
    after = (before - {"0004"}) | {"toy_0001"}  # a branch from 0004 replaces it as a head
    with open_workspace(toy, TOY) as ws:
        assert ws.tracking.get_experiment("kept").name == "kept"
        assert ws.database is not None
        assert current_heads(ws.database) == after
    # Idempotent: a second upgrade has nothing to do.
    database = Database(url)
    try:
        again = upgrade(database, migration_history(load_stages(TOY)))
        assert again[0] == again[1]
    finally:
        database.dispose()
