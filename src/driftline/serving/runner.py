"""Start serving: check the model once, then run uvicorn with ``workers`` processes.

The parent resolves the target and loads and warms the model before any worker starts,
so a missing alias or a broken package fails at once with the real error (and a
non-zero exit) instead of in every worker. With one worker, uvicorn runs the app in
this process and that model is the one served; with several, each worker loads its own
(processes share no Python objects) and the metrics go to a shared multiprocess folder.

SIGTERM/SIGINT: uvicorn stops accepting connections, lets requests in flight finish
(up to ``graceful_timeout`` seconds), then runs the app's shutdown, which drains the
prediction log to disk.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftline.registry import ModelVersion
    from driftline.serving.models import ServingOptions
    from driftline.settings import Settings

__all__ = ["check_target", "serve", "settings_env"]


def settings_env(settings: Settings) -> dict[str, str]:
    """``DRIFTLINE_*`` variables that make ``Settings.load()`` in a worker equal ``settings``."""
    env = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if value is not None:
            env[f"DRIFTLINE_{field.name.upper()}"] = str(value)
    return env


def check_target(settings: Settings, options: ServingOptions) -> tuple[Any, ModelVersion]:
    """Resolve, load (verified) and warm the model; ``(LoadedModel, ModelVersion)``.

    Raises:
        NotFoundError: No such model, version or alias.
        IntegrityError: The package does not match its manifest.
        UserCodeError: The model fails on its own input example.
    """
    from driftline.errors import UserCodeError
    from driftline.models import ModelCache
    from driftline.serving.service import load_version, resolve_target, warm
    from driftline.workspace import Workspace

    with Workspace.from_settings(settings) as workspace:
        version = resolve_target(workspace.registry, options.target)
        model = load_version(workspace.registry, ModelCache.of(settings), version)
    try:
        warm(model)
    except Exception as exc:
        raise UserCodeError(
            f"{version.ref} fails on its own input example ({type(exc).__name__}: {exc}); "
            "not serving it"
        ) from exc
    return model, version


def serve(
    settings: Settings,
    options: ServingOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    log_level: str = "warning",
    graceful_timeout: float = 30.0,
    checked: tuple[Any, ModelVersion] | None = None,
) -> None:
    """Serve until interrupted (see the module docstring).

    Example:
        >>> serve(Settings.load(), ServingOptions(target=ModelTarget.parse("churn@champion")),
        ...       port=8080, workers=2)                                    # doctest: +SKIP
    """
    import uvicorn

    from driftline.serving import app as serving_app

    checked = checked or check_target(settings, options)
    os.environ.update(settings_env(settings))
    os.environ[serving_app.OPTIONS_ENV] = options.to_json()
    folder = None
    if workers > 1:
        # Before any worker imports prometheus_client: it reads the variable at import.
        folder = tempfile.mkdtemp(prefix="driftline-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    else:
        serving_app.preloaded = checked
    try:
        _run(uvicorn, host, port, workers, log_level, graceful_timeout)
    finally:
        if folder is not None:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def _run(
    uvicorn: Any, host: str, port: int, workers: int, log_level: str, graceful_timeout: float
) -> None:
    uvicorn.run(
        "driftline.serving.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,  # a log line per prediction costs more than the prediction
        timeout_graceful_shutdown=int(graceful_timeout),
        timeout_keep_alive=30,
        server_header=False,
        date_header=False,
    )
