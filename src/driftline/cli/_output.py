"""How the CLI talks to people and scripts: rich tables, ``--json``, one-line errors."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "JsonOption",
    "console",
    "err_console",
    "fmt_duration",
    "fmt_number",
    "fmt_size",
    "fmt_time",
    "print_json",
    "table",
    "to_jsonable",
]


class _LazyConsole:
    """A rich ``Console`` made on first use: importing rich costs ~40 ms that
    `driftline --help` and commands printing plain lines do not need."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


# Piped output (CI logs, `| less`) gets a wide fixed width so ids are never folded.
console = cast("Console", _LazyConsole(width=None if sys.stdout.isatty() else 200))
err_console = cast("Console", _LazyConsole(stderr=True))

JsonOption = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")


def to_jsonable(value: Any) -> Any:
    """Records, enums, datetimes and floats (NaN/inf as strings) to plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """Write ``value`` as JSON on stdout (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2) + "\n")


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a rich table; cells are rendered with ``str``."""
    from rich import box
    from rich.table import Table

    # No vertical rules: three characters a column that an 80-column terminal needs.
    grid = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for column in columns:
        grid.add_column(column, overflow="fold", no_wrap=column.endswith("id"))
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(grid)


def fmt_number(value: object, digits: int = 4) -> str:
    """Floats to ``digits`` significant digits for tables; anything else as text."""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return "" if value is None else str(value)


def fmt_time(value: datetime | None) -> str:
    """A UTC time for tables: ``2026-11-22 08:06:13Z``."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def fmt_duration(value: timedelta | None) -> str:
    """``1.2s``, ``3m04s``, ``2h05m``."""
    if value is None:
        return ""
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def fmt_size(size: int) -> str:
    """Bytes for people: ``812 B``, ``1.4 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
