"""A stored object with one byte flipped is never served as if it were good.

The probe: ``GET /api/2.0/mlflow-artifacts/artifacts/...`` of a corrupted artifact
answered 200 with the whole corrupt body, and the real MLflow client saved the file
without error. Here a byte is flipped in the server's own artifact store (wherever the
object lives: a loose file or a pack), then the real MLflow client, plain HTTP and
driftline's own client download it, for a small object (verified before the answer)
and a large one (the transfer is aborted).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.test_mlflow_compat import run_mlflow

from driftline.errors import IntegrityError
from driftline.server.downloads import VERIFY_WHOLE_UP_TO
from driftline.settings import Settings
from driftline.workspace import Workspace

pytestmark = [pytest.mark.server, pytest.mark.slow]

pytest.importorskip("mlflow", reason="the MLflow client is a dev extra")

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
SIZES = {"small.bin": 200_000, "large.bin": VERIFY_WHOLE_UP_TO + (3 << 20)}

LOG = """
    import json, sys, mlflow
    mlflow.set_experiment("verified-downloads")
    with mlflow.start_run() as run:
        for path in sys.argv[1:]:
            mlflow.log_artifact(path)
    print(json.dumps({"run_id": run.info.run_id, "experiment_id": run.info.experiment_id}))
"""

DOWNLOAD = """
    import hashlib, json, os, sys, mlflow
    run_id, dest = sys.argv[1], sys.argv[2]
    seen = {}
    for name in sys.argv[3:]:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=name, dst_path=dest
            )
        except Exception as exc:
            seen[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        else:
            with open(path, "rb") as f:
                seen[name] = {"sha256": hashlib.sha256(f.read()).hexdigest()}
    print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def corrupted(
    server_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A server whose run holds a small and a large artifact, each with one byte flipped
    in the store after an intact download through the MLflow client."""
    server = server_factory()
    home = tmp_path_factory.mktemp("mlflow-client")
    payloads = {name: os.urandom(size) for name, size in SIZES.items()}
    for name, data in payloads.items():
        (home / name).write_bytes(data)
    run = run_mlflow(server, home, LOG, *(str(home / name) for name in payloads))
    intact = run_mlflow(server, home, DOWNLOAD, run["run_id"], str(home / "intact"), *payloads)
    assert intact == {
        name: {"sha256": hashlib.sha256(data).hexdigest()} for name, data in payloads.items()
    }
    for data in payloads.values():
        _flip_one_byte(server.root / "artifacts", data)
    ws = Workspace.from_settings(
        Settings.load(
            uri=server.uri,
            artifact_root=str(server.root / "artifacts"),
            home=home / ".driftline",
            async_logging=False,
            capture_environment=False,
        )
    )
    try:
        digests = {e.path: e.digest for e in ws.tracking.list_artifacts(run["run_id"])}
    finally:
        ws.close()
    return {"server": server, "home": home, "run": run, "payloads": payloads, "digests": digests}


def _flip_one_byte(store: Path, data: bytes) -> None:
    """Flip a byte in the middle of ``data`` where the store keeps it (file or pack)."""
    probe = data[len(data) // 2 : len(data) // 2 + 64]
    for path in store.rglob("*"):
        if not path.is_file():
            continue
        at = path.read_bytes().find(probe)
        if at >= 0:
            with path.open("r+b") as f:
                f.seek(at)
                f.write(bytes([probe[0] ^ 0xFF]))
            return
    raise AssertionError(f"the object's bytes are nowhere under {store}")


def test_the_mlflow_client_fails_instead_of_saving_corrupt_bytes(corrupted: dict[str, Any]) -> None:
    home, payloads = corrupted["home"], corrupted["payloads"]
    dest = home / "after"
    seen = run_mlflow(
        corrupted["server"], home, DOWNLOAD, corrupted["run"]["run_id"], str(dest), *payloads
    )
    for name, data in payloads.items():
        assert "error" in seen[name], (name, seen[name])
        # Whatever the client left behind is not the whole file passing for good bytes.
        left = dest / name
        if left.exists():
            assert left.stat().st_size < len(data)


def _url(corrupted: dict[str, Any], name: str) -> str:
    run = corrupted["run"]
    return (
        f"{corrupted['server'].url}{ARTIFACTS}/{run['experiment_id']}/{run['run_id']}"
        f"/artifacts/{name}"
    )


def _whole_or_broken(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """``(status, body)``, or ``(-1, what arrived)`` if the transfer broke off."""
    body = bytearray()
    try:
        with httpx.stream("GET", url, headers=headers, timeout=60) as response:
            for part in response.iter_bytes():
                body += part
    except httpx.RemoteProtocolError:
        return -1, bytes(body)
    return response.status_code, bytes(body)


def test_mlflow_downloads_are_a_500_or_a_broken_transfer(corrupted: dict[str, Any]) -> None:
    small = httpx.get(_url(corrupted, "small.bin"), timeout=60)
    assert small.status_code == 500
    assert small.json()["error_code"] == "DATA_LOSS"  # MLflow's name for it
    assert "corrupt" in small.json()["message"]
    status, body = _whole_or_broken(_url(corrupted, "large.bin"))
    assert status == -1
    assert len(body) < SIZES["large.bin"]
    # The server is still up, and says why.
    assert httpx.get(corrupted["server"].url + "/health").status_code == 200
    assert "corrupt" in corrupted["server"].log.read_text()


def test_native_object_downloads_are_verified(corrupted: dict[str, Any]) -> None:
    url = corrupted["server"].url + "/api/v1/artifacts/objects/"
    small, large = corrupted["digests"]["small.bin"], corrupted["digests"]["large.bin"]
    whole = httpx.get(url + small, timeout=60)
    assert whole.status_code == 500
    assert whole.json()["error"]["code"] == "DATA_INTEGRITY"
    # A range of a small object is cut from the verified whole.
    ranged = httpx.get(url + small, headers={"Range": "bytes=10-"}, timeout=60)
    assert ranged.status_code == 500
    status, body = _whole_or_broken(url + large)
    assert status == -1
    assert len(body) < SIZES["large.bin"]
    # A range of a large object is served as stored (it cannot be verified alone) ...
    tail = httpx.get(url + large, headers={"Range": "bytes=-100"}, timeout=60)
    assert tail.status_code == 206
    assert tail.content == corrupted["payloads"]["large.bin"][-100:]
    # ... and driftline's client, which resumes by range, verifies the whole download.
    ws = Workspace.from_settings(
        Settings.load(
            uri=corrupted["server"].url,
            home=corrupted["home"] / ".driftline-remote",
            async_logging=False,
            capture_environment=False,
        )
    )
    try:
        for digest in (small, large):
            with pytest.raises(IntegrityError):
                ws.content.read_bytes(digest)
    finally:
        ws.close()
