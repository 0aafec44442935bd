"""The ``driftline`` command: a thin adapter over the library, one module per stage.

Errors print one line ``ErrorType: message`` on stderr and exit 1; ``--debug`` adds the
traceback. Every listing takes ``--json``.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``driftline`` console script."""
    from driftline.cli.app import app
    from driftline.errors import DriftlineError

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="driftline")
    except DriftlineError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        sys.exit(130)
