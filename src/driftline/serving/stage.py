"""The serving stage's declaration (see :mod:`driftline.core.stage`).

Serving has no tables yet and stores no content-addressed objects: what it writes, the
prediction log, is Parquet under ``predictions/`` (see :mod:`driftline.serving.predlog`),
outside the ``<algorithm>/`` keys that ``gc`` lists and sweeps, so it has no roots. Its
service is where that log lives; the server it runs is built by ``driftline serve``.
"""

from __future__ import annotations

from driftline.core.stage import Kernel, Services, Stage, no_roots

__all__ = ["STAGE"]


def _build(kernel: Kernel, _uses: Services) -> str:
    from driftline.serving.predlog import prediction_root

    return prediction_root(kernel.settings.home, kernel.settings.artifact_root)


STAGE: Stage[str] = Stage(
    name="serving",
    uses=("models", "registry"),
    build=_build,
    gc_roots=no_roots,
    cli="driftline.cli.serving:install_commands",
    api="driftline.serving",
)
