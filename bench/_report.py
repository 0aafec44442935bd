"""The figures table the benchmark scripts print (rich when available, plain otherwise)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

_STYLES = {"PASS": "green", "MISS": "bold red", "WRONG": "bold red", "n/a": "yellow"}


def print_rows(
    header: str,
    rows: Sequence[Sequence[str]],
    notes: Sequence[str],
    *,
    label_width: int = 40,
    width: int = 120,
) -> None:
    """Print ``(section, figure, value, target, status)`` rows grouped by section."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(header)
        for row in rows:
            print(
                "  ".join(
                    f"{c:<{label_width}}" if i == 1 else f"{c:<14}" for i, c in enumerate(row)
                )
            )
        for text in notes:
            print(f"note: {text}")
        return
    table = Table(title=header, title_justify="left")
    for name, justify in (
        ("Section", "left"),
        ("Figure", "left"),
        ("Value", "right"),
        ("Target", "right"),
        ("", "center"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    last = None
    for section, label, value, target, status in rows:
        if last is not None and section != last:
            table.add_section()
        last = section
        style = _STYLES.get(status)
        table.add_row(section, label, value, target, f"[{style}]{status}[/]" if style else status)
    # Not a terminal (a pipe, a CI log): rich would fall back to 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=width)
    console.print(table)
    for text in notes:
        console.print(f"note: {text}")
