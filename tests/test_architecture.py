"""The layering of docs/architecture ("Layering"), checked by reading every import with ``ast``.

- ``core/``, ``errors.py`` and ``settings.py`` import no stage, nor cli, server, workspace,
  nor the top-level package, the stage list or gc (the kernel never imports upward).
- Every stage package declares one descriptor (its ``stage`` module), named in the stage
  list (``driftline/stages.py``); the list and the layering table below name the same
  stages, and an in-tree stage's adapters live under ``cli/`` and ``server/``.
- Stages never import ``cli`` or ``server``; a stage uses another only through that
  stage's package (its ``__init__``), and only stages on its own row or below:

      retraining                  may use every stage below (pipelines too)
      pipelines                   may use every stage below
      serving, monitoring         use registry, models, data, features
      registry, features          use tracking, models, data
      tracking, data, models

- ``typer``/``click``/``rich`` only under ``cli/``; ``fastapi``/``starlette`` only under
  ``server/`` and ``serving/``; ``pydantic`` only under ``api/``.
- ``import driftline`` imports no heavy library.

Imports inside functions and under ``TYPE_CHECKING`` count too: a dependency is a
dependency, whenever it is resolved.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import driftline

PACKAGE = Path(driftline.__file__).parent
STAGES = (
    "tracking",
    "data",
    "models",
    "auth",
    "registry",
    "features",
    "pipelines",
    "serving",
    "monitoring",
    "retraining",
)
ROW = {
    "tracking": 0,
    "data": 0,
    "models": 0,
    "auth": 0,
    "registry": 1,
    "features": 1,
    "serving": 2,
    "monitoring": 2,
    "pipelines": 3,
    "retraining": 4,
}
MAY_USE = {
    "tracking": {"data", "models"},
    "data": {"tracking", "models"},
    "models": {"tracking", "data"},
    # Users and grants: used by the adapters (server, CLI), it uses no stage.
    "auth": set(),
    "registry": {"tracking", "models", "data"},
    "features": {"tracking", "models", "data"},
    # With --auth a serving process checks the workspace's tokens, as the server does.
    "serving": {"registry", "models", "data", "features", "auth"},
    "monitoring": {"registry", "models", "data", "features"},
    "pipelines": set(STAGES) - {"pipelines"},
    # The loop back from production: it reads every stage's records and re-runs pipelines.
    "retraining": set(STAGES) - {"retraining"},
}
ADAPTERS = ("cli", "server")
#: Stages that run a web server of their own (the web framework is theirs to use).
WEB = ("serving",)
#: Modules that are a stage's own server process: each uvicorn worker opens the
#: workspace itself, as ``server/`` does, so they may import the composition root
#: (``ray_worker.py``: the Ray Data actors of batch scoring, likewise).
PROCESS_ENTRY_POINTS = ("runner.py", "runtime.py", "ray_worker.py")
#: Pipelines orchestrate whole workspaces (their worker processes open one, and a run
#: takes the workspace it runs in), so the top layer may name the composition root.
WORKSPACE_USERS = ("pipelines",)
HEAVY = (
    "sqlalchemy",
    "alembic",
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "sklearn",
    "torch",
    "typer",
    "click",
    "rich",
    "fastapi",
    "starlette",
    "pydantic",
    "psycopg",
    "fsspec",
)


@dataclass(frozen=True)
class Import:
    source: Path  # the importing file
    line: int
    target: str  # a dotted module name

    @property
    def where(self) -> str:
        return f"{self.source.relative_to(PACKAGE.parent).as_posix()}:{self.line}"


def module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_driftline_module(name: str) -> bool:
    relative = Path(*name.split("."))
    base = PACKAGE.parent / relative
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append(Import(path, node.lineno, base))
            for alias in node.names:  # `from driftline import data` imports a module
                if base.startswith("driftline") and is_driftline_module(f"{base}.{alias.name}"):
                    found.append(Import(path, node.lineno, f"{base}.{alias.name}"))
    return found


def area(path: Path) -> str:
    """``tracking`` for driftline/tracking/..., ``errors`` for driftline/errors.py, ..."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0] if parts[0] != "__init__" else "driftline"


def target_area(target: str) -> str | None:
    parts = target.split(".")
    if parts[0] != "driftline":
        return None
    return parts[1] if len(parts) > 1 else "driftline"


ALL_IMPORTS = [imp for path in sorted(PACKAGE.rglob("*.py")) for imp in imports_of(path)]


def test_the_scanner_sees_the_package() -> None:
    areas = {area(imp.source) for imp in ALL_IMPORTS}
    assert {"core", "tracking", "errors", "settings", "workspace"} <= areas
    assert any(imp.target == "driftline.errors" for imp in ALL_IMPORTS)
    # relative imports resolve too
    assert imports_of(PACKAGE / "core" / "artifacts" / "__init__.py")


def test_the_kernel_imports_no_stage_and_no_adapter() -> None:
    upward = {"workspace", "driftline", "stages", "gc", "_fluent", "quickstart", "quickstart_loop"}
    forbidden = set(STAGES) | set(ADAPTERS) | upward
    bad = [
        f"{imp.where} imports {imp.target}"
        for imp in ALL_IMPORTS
        if area(imp.source) in ("core", "errors", "settings")
        and target_area(imp.target) in forbidden
    ]
    assert not bad, "\n".join(bad)


def test_stages_never_import_the_adapters() -> None:
    bad = [
        f"{imp.where} imports {imp.target}"
        for imp in ALL_IMPORTS
        if area(imp.source) in STAGES and target_area(imp.target) in ADAPTERS
    ]
    assert not bad, "\n".join(bad)


def cross_stage_imports() -> list[tuple[Import, str, str]]:
    found = []
    for imp in ALL_IMPORTS:
        source, target = area(imp.source), target_area(imp.target)
        if source in STAGES and target in STAGES and source != target:
            found.append((imp, source, target))
    return found


def test_stages_use_only_the_stages_on_their_row_or_below() -> None:
    bad = [
        f"{imp.where}: {source} may not use {target} ({imp.target})"
        for imp, source, target in cross_stage_imports()
        if target not in MAY_USE[source]
    ]
    assert not bad, "\n".join(bad)


def test_stages_use_other_stages_only_through_their_package() -> None:
    bad = [
        f"{imp.where}: {source} reaches into {imp.target}; use driftline.{target}"
        for imp, source, target in cross_stage_imports()
        if imp.target != f"driftline.{target}"
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("libraries", "allowed"),
    [
        (("typer", "click", "rich"), ("cli",)),
        (("fastapi", "starlette"), ("server", *WEB)),
        (("pydantic", "pydantic_settings"), ("api",)),
    ],
)
def test_frameworks_stay_in_their_adapters(
    libraries: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    bad = [
        f"{imp.where} imports {imp.target}"
        for imp in ALL_IMPORTS
        if imp.target.split(".")[0] in libraries and area(imp.source) not in allowed
    ]
    assert not bad, "\n".join(bad)


def test_import_driftline_stays_light() -> None:
    code = (
        "import json, sys\n"
        "import driftline\n"
        f"heavy = {list(HEAVY)!r}\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_wire_and_auth_packages_import_no_adapter() -> None:
    # api/ (wire schemas, the HTTP client) and auth/ (users, tokens, policy) serve the
    # server and the remote backends alike; they must not depend on either adapter.
    bad = [
        f"{imp.where} imports {imp.target}"
        for imp in ALL_IMPORTS
        if area(imp.source) in ("api", "auth")
        and target_area(imp.target) in (*ADAPTERS, "workspace")
    ]
    assert not bad, "\n".join(bad)


def test_every_stage_package_is_in_the_stage_list_with_one_descriptor() -> None:
    from driftline.core.stage import Stage
    from driftline.stages import STAGES as STAGE_LIST
    from driftline.stages import load_stages

    declaring = sorted(p.parent.name for p in PACKAGE.glob("*/stage.py") if p.parent.name != "core")
    listed = [path.partition(":")[0].split(".")[1] for path in STAGE_LIST]
    assert sorted(listed) == declaring, "a stage package is missing from the stage list"
    assert all(path.endswith(".stage:STAGE") for path in STAGE_LIST)
    assert set(listed) <= set(STAGES), "add the stage to the layering table above"
    for stage in load_stages():
        assert isinstance(stage, Stage)
        for path in stage.routes:
            assert path.startswith("driftline.server."), f"{stage.name}: {path}"
        assert stage.cli is None or stage.cli.startswith("driftline.cli."), stage.name
        for module in stage.tables:
            assert module.startswith(f"driftline.{stage.name}."), f"{stage.name}: {module}"


def test_listing_the_stages_imports_nothing_heavy() -> None:
    code = (
        "import json, sys\n"
        "from driftline.stages import load_stages\n"
        "load_stages()\n"
        f"heavy = {list(HEAVY)!r}\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


#: Byte-store backends: named only by the composition root and the scheme table; the
#: rest of the code asks a store's ``capabilities`` (see core/artifacts/bytestore.py).
BYTE_STORE_BACKENDS = (
    "driftline.core.artifacts.local",
    "driftline.core.artifacts.remote",
    "driftline.core.artifacts.http",
)
MAY_NAME_BACKENDS = ("driftline/workspace.py", "driftline/core/artifacts/bytestore.py")


def test_only_the_composition_root_names_a_byte_store_backend() -> None:
    wrong = [
        f"{imp.where} imports {imp.target}"
        for imp in ALL_IMPORTS
        if imp.target in BYTE_STORE_BACKENDS
        and module_of(imp.source) not in BYTE_STORE_BACKENDS
        and imp.source.relative_to(PACKAGE.parent).as_posix() not in MAY_NAME_BACKENDS
    ]
    assert not wrong, "ask store.capabilities instead:\n" + "\n".join(wrong)
