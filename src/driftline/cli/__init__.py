"""The ``driftline`` command: a thin adapter over the library, one module per stage.

Errors print one line ``ErrorType: message`` on stderr and exit 1; ``--debug`` adds the
traceback. Every listing takes ``--json``.
"""

from __future__ import annotations

import gc
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``driftline`` console script."""
    # Start-up (typer, SQLAlchemy, the stages' modules) creates some 10^5 long-lived
    # objects, and at the default threshold of 700 allocations the collector walks them
    # dozens of times: ~10% of a short command. Every 10,000 allocations still keeps
    # cyclic garbage bounded in long-running commands (servers).
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    from driftline.cli.app import app, for_command
    from driftline.errors import DriftlineError

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        for_command(app, args)(args=args, prog_name="driftline")
    except DriftlineError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        sys.exit(130)
