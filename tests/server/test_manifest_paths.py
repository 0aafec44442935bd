"""Manifests whose paths would write outside a folder, against a real ``--auth`` server.

The attack: an editor uploads a manifest object listing ``../../../../outside.txt`` (or
an absolute path) and records it as a dataset or model version; an admin who checks
that version out, or loads the model, would write the editor's bytes anywhere. The
server refuses such manifests (400, naming the path, nothing recorded); a version
written straight into the server's database, past the routes, is still refused by the
admin's client when read, and nothing lands outside the folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftline.api.client import ApiClient
from driftline.auth._http import HttpUserAdmin
from driftline.core.hashing import hash_bytes
from driftline.data import Version
from driftline.data.manifest import FORMAT
from driftline.data.store import NewVersion
from driftline.errors import IntegrityError
from driftline.registry.service import MODEL_FILE
from driftline.workspace import Workspace

pytestmark = pytest.mark.server

PAYLOAD = b"the attacker's bytes\n"
MODEL_INFO = json.dumps({"format_version": 1, "flavor": "python", "files": {}}).encode()


@dataclass
class Editor:
    """An editor's view of an ``--auth`` server, and the admin's token."""

    url: str
    root: Path
    uri: str
    token: str
    admin_token: str

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.request(method, f"{self.url}/api/v1/{path}", headers=headers, timeout=30, **kw)

    def upload(self, data: bytes) -> str:
        digest = hash_bytes(data)
        stored = self.call("PUT", f"artifacts/objects/{digest}", content=data)
        assert stored.status_code == 200, stored.text
        return digest

    def manifest(self, paths: list[str], *, model: bool = False) -> tuple[str, int, int]:
        """Upload a manifest listing ``paths`` (all holding the payload): digest, files, size."""
        payload = self.upload(PAYLOAD)
        rows = [[path, payload, len(PAYLOAD)] for path in paths]
        if model:
            rows.append([MODEL_FILE, self.upload(MODEL_INFO), len(MODEL_INFO)])
        document = {
            "format": FORMAT,
            "files": len(rows),
            "size": sum(int(row[2]) for row in rows),  # type: ignore[call-overload]
            "entries": sorted(rows),
        }
        data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        return self.upload(data), len(rows), int(document["size"])  # type: ignore[call-overload]


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env["XDG_CONFIG_HOME"] = str(root / "xdg")
    command = [sys.executable, "-m", "driftline.cli", "--home", str(root / ".driftline"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, timeout=120)


@pytest.fixture(scope="module")
def editor(server_factory: Callable[..., Any]) -> Editor:
    server = server_factory(args=("--auth",))
    done = _cli(server.root, "--uri", server.uri, "users", "create", "root", "--role", "admin",
                "--with-token")  # fmt: skip
    assert done.returncode == 0, done.stderr
    admin_token = done.stdout.strip()
    admin = HttpUserAdmin(ApiClient(server.url, token=admin_token))
    admin.create_user("mallory", role="editor")
    token = admin.create_token("mallory").secret
    admin.close()
    return Editor(server.url, server.root, server.uri, token, admin_token)


EVIL_PATH_SETS = [
    pytest.param(["../../../../outside.txt"], "'..'", id="dot-dot"),
    pytest.param(["/absolute/outside.txt"], "absolute", id="absolute"),
    pytest.param(["C:/outside.txt"], "absolute", id="drive-letter"),
    pytest.param(["..\\outside.txt"], "backslash", id="backslash"),
    pytest.param(["a/./b.txt"], "normal form", id="not-normal"),
    pytest.param(["data.csv", "data.csv"], "listed twice", id="duplicate"),
    pytest.param(["Data.csv", "data.csv"], "case-insensitive", id="case-collision"),
    pytest.param(["a", "a/b"], "folder", id="file-and-folder"),
]


@pytest.mark.parametrize(("paths", "reason"), EVIL_PATH_SETS)
def test_the_server_refuses_a_dataset_version_with_unsafe_paths(
    editor: Editor, paths: list[str], reason: str
) -> None:
    digest, files, size = editor.manifest(paths)
    body = {"version_id": digest, "file_count": files, "size": size, "tabular": False}
    answer = editor.call("POST", "data/datasets/evil/versions", json=body)
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert reason in message, message
    assert repr(paths[-1]) in message, message
    # Nor as an admin copying a version from a remote.
    copied = editor.call(
        "PUT",
        "data/datasets/evil/versions/1",
        token=editor.admin_token,
        json=body | {"author": "someone", "created_at": 1},
    )
    assert copied.status_code == 400, copied.text
    assert editor.call("GET", "data/datasets/evil/versions").status_code == 404  # nothing stored


@pytest.mark.parametrize(("paths", "reason"), EVIL_PATH_SETS)
def test_the_server_refuses_a_model_version_with_unsafe_paths(
    editor: Editor, paths: list[str], reason: str
) -> None:
    assert editor.call("PUT", "registry/models/evilmodel", json={}).status_code == 200
    digest, _files, _size = editor.manifest(paths, model=True)
    body = {"source": "runs:/x/model", "package_digest": digest, "flavor": "python"}
    answer = editor.call("POST", "registry/models/evilmodel/versions", json=body)
    assert answer.status_code == 400, answer.text
    assert reason in answer.json()["error"]["message"]
    assert editor.call("GET", "registry/models/evilmodel/versions").json()["versions"] == []


def test_a_manifest_that_lies_about_its_size_or_is_no_manifest_is_refused(editor: Editor) -> None:
    digest, files, size = editor.manifest(["fine.txt"])
    body = {"version_id": digest, "file_count": files, "size": size + 1, "tabular": False}
    answer = editor.call("POST", "data/datasets/liar/versions", json=body)
    assert answer.status_code == 400, answer.text
    assert "bytes" in answer.text
    other = editor.upload(b"not json at all")
    body = {"version_id": other, "file_count": 1, "size": 1, "tabular": False}
    answer = editor.call("POST", "data/datasets/liar/versions", json=body)
    assert answer.status_code == 400, answer.text
    assert "not a driftline manifest" in answer.text
    body = {"source": "x", "package_digest": digest, "flavor": "python"}
    assert editor.call("PUT", "registry/models/nomodel", json={}).status_code == 200
    answer = editor.call("POST", "registry/models/nomodel/versions", json=body)
    assert answer.status_code == 400, answer.text
    assert MODEL_FILE in answer.text


def test_a_version_stored_past_the_routes_writes_nothing_outside_on_the_admins_machine(
    editor: Editor, open_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    checkout = tmp_path / "a" / "b" / "c" / "checkout"
    digest, files, size = editor.manifest(["../../../../outside.txt", "fine.txt"])
    model_digest, _, _ = editor.manifest(["../../../../outside.txt"], model=True)
    # Straight into the server's database and artifact folder, as if before this fix.
    behind = open_workspace(editor.uri, artifact_root=str(editor.root / "artifacts"))
    dataset = behind.data.store.ensure_dataset("bypass")
    behind.data.store.add_version(
        dataset.id,
        NewVersion(
            version_id=digest,
            author="mallory",
            message=None,
            created_at=1,
            run_id=None,
            file_count=files,
            size=size,
            tabular=False,
            profile_digest=None,
        ),
    )
    behind.registry.store.ensure_model("bypassmodel", actor="mallory")
    behind.registry.store.add_version(
        "bypassmodel",
        {"source": "x", "run_id": None, "package_digest": model_digest, "flavor": "python",
         "signature": None, "description": None},
        actor="mallory",
    )  # fmt: skip

    admin = open_workspace(editor.url, token=editor.admin_token)
    version = Version(admin.data, admin.data.get("bypass@1"))
    with pytest.raises(IntegrityError, match=r"outside\.txt"):
        version.checkout(checkout)
    with pytest.raises(IntegrityError, match=r"outside\.txt"):
        version.to_arrow()
    model = admin.registry.get_version("bypassmodel/1")
    with pytest.raises(IntegrityError, match=r"outside\.txt"):
        admin.registry.materialize(model, tmp_path / "model")
    assert not outside.exists()
    assert not checkout.exists()
    assert not (tmp_path / "model").exists()
