"""``python -m driftline.cli`` runs the ``driftline`` command."""

from driftline.cli import main

main()
