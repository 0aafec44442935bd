"""``driftline server`` as a user starts it: a clear refusal when it cannot listen."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BANNER = "driftline server on"


def _run_server(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "driftline.cli", "--home", str(tmp_path / ".driftline"),
         "server", "--workers", "1", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip


def test_an_occupied_port_is_refused_before_the_banner(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = _run_server(tmp_path, "--host", "127.0.0.1", "--port", str(port))
    assert done.returncode != 0
    assert BANNER not in done.stdout + done.stderr
    assert f"Port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "--port N" in done.stderr
    assert "Errno" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--port", "70000"), "Port 70000 is not a TCP port"),
        (("--host", "no-such-host.invalid", "--port", "8123"), "the host 'no-such-host.invalid'"),
    ],
)
def test_an_address_it_cannot_use_is_refused_before_the_banner(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = _run_server(tmp_path, *args)
    assert done.returncode != 0
    assert BANNER not in done.stdout + done.stderr
    assert message in done.stderr
