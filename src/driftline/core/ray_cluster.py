"""Connecting to Ray: a local Ray started once per process, or a cluster by address.

Used by the pipelines' Ray executor, ``dl.tune(executor="ray")`` and batch scoring on
Ray Data. Ray is an optional dependency (``pip install 'driftline[ray]'``); it is
imported only here, when one of those is asked for.

A local Ray is started with a fixed number of CPUs and no dashboard, and is left up
for the life of the process (starting one takes seconds; tasks after that take
milliseconds). ``ray.shutdown()`` stops it. When this process is already connected
(the user called ``ray.init`` themselves), that connection is used.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from driftline.errors import BackendError, InvalidArgumentError

__all__ = ["RAY_EXTRA", "connect", "parse_executor", "require_ray"]

RAY_EXTRA = "pip install 'driftline[ray]'"
_CONNECT_TIMEOUT = 5.0
_connected: str | None = None  # the address this module connected to (None: local)


def require_ray() -> Any:
    """The ``ray`` module, or an error naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise InvalidArgumentError(
            f"Ray is not installed in this environment; install the extra: {RAY_EXTRA}"
        ) from exc
    return ray


def parse_executor(executor: str) -> str | None:
    """The cluster address in ``"ray://host:10001"``; ``None`` for plain ``"ray"``."""
    if executor == "ray":
        return None
    if executor.startswith("ray://") and len(executor) > len("ray://"):
        return executor
    raise InvalidArgumentError(
        f"Not a Ray executor: {executor!r}; use 'ray' (a local Ray, or the cluster in "
        "RAY_ADDRESS) or 'ray://HOST:PORT' (a cluster's Ray client address)"
    )


def _check_reachable(address: str) -> None:
    """Fail fast, naming the address: Ray's own client retries for about a minute."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidArgumentError(
            f"Invalid Ray address {address!r}: use ray://HOST:PORT (e.g. ray://head:10001)"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), _CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise BackendError(
            f"Cannot reach the Ray cluster at {address}: {exc}. Check that the head node "
            "is running (`ray start --head`) and its client port is open"
        ) from exc


def connect(address: str | None = None, *, num_cpus: int | None = None) -> Any:
    """Ray, connected: to ``address``, to an already started Ray, or to a new local one.

    Args:
        address: ``ray://host:port``; ``None``: the connection this process has, else
            ``RAY_ADDRESS`` if set, else a new local Ray.
        num_cpus: CPUs of a new local Ray (default: this machine's).

    Raises:
        InvalidArgumentError: Ray is not installed, or already connected elsewhere.
        BackendError: ``address`` cannot be reached.
    """
    global _connected
    ray = require_ray()
    if address is not None:
        _check_reachable(address)
    if ray.is_initialized():
        if address is not None and address != _connected:
            raise InvalidArgumentError(
                f"This process is already connected to {_connected or 'another Ray'}; "
                f"call ray.shutdown() before connecting to {address}"
            )
        return ray
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target is not None and target.startswith("ray://"):
        _check_reachable(target)
    try:
        if target is None:
            # A Ray of our own does not report usage to the internet unless asked to.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False)
        else:
            ray.init(address=target)
    except ConnectionError as exc:
        raise BackendError(f"Cannot connect to Ray at {target}: {exc}") from exc
    _connected = target
    return ray
