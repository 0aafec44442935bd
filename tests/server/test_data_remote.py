"""Data versions through a driftline server: the SDK and CLI on ``DRIFTLINE_URI=http://...``.

Every test talks to a real ``driftline server`` process over loopback. What the server
stored is checked by opening its own database and artifact folder directly, so a test
cannot pass by accident on a local fallback.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import driftline as dl
from driftline.api.client import ApiClient
from driftline.core.hashing import digest_key
from driftline.errors import ConflictError, InvalidArgumentError, NotFoundError
from driftline.workspace import Workspace

pytestmark = pytest.mark.server


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def remote(server: Any, open_workspace: Callable[..., Workspace]) -> Workspace:
    """A workspace whose stores are the server's (the client calls itself mallory)."""
    ws = open_workspace(server.url, user="mallory")
    assert ws.is_remote
    assert ws.database is None
    return ws


def api(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A raw request, as a client that is not the SDK would send it."""
    return httpx.request(method, f"{url}/api/v1/{path}", timeout=30, **kwargs)


_JSON = {"Content-Type": "application/json"}


def assert_error(response: httpx.Response, status: int, code: str, text: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (status, code)
    assert text in error["message"]


# -- the SDK ------------------------------------------------------------------------------


def test_commit_get_tag_diff_and_lineage_through_the_module_api(
    server: Any,
    configure_default: Callable[..., Workspace],
    on_server: Callable[[], Workspace],
    tmp_path: Path,
) -> None:
    ws = configure_default(uri=server.url, async_logging=False)
    assert ws.is_remote
    src = tree(tmp_path / "src", {"keep.txt": b"k", "edit.txt": b"old", "gone.txt": b"g"})
    first = dl.data.commit("customers", src, message="october")
    (src / "edit.txt").write_bytes(b"new!")
    (src / "gone.txt").unlink()
    (src / "fresh.txt").write_bytes(b"f")
    second = dl.data.commit("customers", src)
    assert (first.number, second.number) == (1, 2)
    assert dl.data.commit("customers", src).number == 2  # same content: the same version

    latest = dl.data.get("customers@latest")
    assert (latest.number, latest.parent) == (2, 1)
    assert dl.data.get("customers@1").message == "october"
    assert dl.data.tag("customers@1", "october").tags == ("october",)
    assert dl.data.get("customers@october").number == 1
    assert [v.number for v in dl.data.log("customers")] == [2, 1]
    assert dl.data.list_datasets()[0].latest == 2

    changes = {(c.kind, c.path) for c in dl.data.diff("customers@1", "customers@2").files}
    assert changes == {("modified", "edit.txt"), ("removed", "gone.txt"), ("added", "fresh.txt")}
    assert dl.data.diff("customers@2", "customers@2").unchanged  # a second call works too

    with dl.start_run() as run:
        dl.log_input(dl.data.get("customers@october"))
        made = dl.data.commit("features", tree(tmp_path / "feat", {"f.csv": b"a\n1\n"}))
    assert made.run_id == run.id
    up = dl.data.lineage("features@1")
    assert {(e.source, e.target) for e in up.upstream} == {
        (f"run:{run.id}", "data:features@1"),
        ("data:customers@1", f"run:{run.id}"),
    }
    down = dl.data.lineage("customers@1")
    assert (f"run:{run.id}", "data:features@1") in {(e.source, e.target) for e in down.downstream}

    # The server's own database and artifact store hold all of it.
    local = on_server()
    assert [v.number for v in local.data.log("customers")] == [2, 1]
    assert local.data.get("customers@october").id == first.id
    out = dl.data.get("customers@2").checkout(tmp_path / "out")
    assert (out / "edit.txt").read_bytes() == b"new!"
    stored = local.data.manifest(local.data.get("customers@2"))
    assert {e.path for e in stored.entries} == {"keep.txt", "edit.txt", "fresh.txt"}


def test_the_server_records_who_and_when(
    remote: Workspace, on_server: Callable[[], Workspace], tmp_path: Path
) -> None:
    """The author and audit actor are the caller as the server knows it (its own user
    without --auth), never a name the client sends; the time is the server's clock."""
    before = datetime.now(UTC)
    version = remote.data.commit("d", tree(tmp_path / "d", {"a": b"1"}), tags=["gold"])
    assert version.author == getpass.getuser() != "mallory"
    assert before.timestamp() - 5 <= version.created_at.timestamp() <= before.timestamp() + 60
    (entry,) = on_server().registry.audit_log()
    assert (entry.action, entry.entity, entry.actor) == ("tag", "d@gold", getpass.getuser())
    assert remote.registry.audit_log()[0] == entry
    assert remote.registry.verify_audit().ok


def test_typed_errors_round_trip(remote: Workspace, tmp_path: Path) -> None:
    src = tree(tmp_path / "src", {"a": b"1"})
    remote.data.commit("customers", src, tags=["oct"])
    with pytest.raises(NotFoundError, match="did you mean 'customers'"):
        remote.data.get("custmers@1")
    with pytest.raises(NotFoundError, match=r"versions 1\.\.1 and tags oct"):
        remote.data.get("customers@7")
    with pytest.raises(InvalidArgumentError, match="Invalid dataset name"):
        remote.data.get("bad name@1")
    (src / "a").write_bytes(b"2")
    remote.data.commit("customers", src)
    with pytest.raises(ConflictError, match="immutable"):
        remote.data.tag("customers@2", "oct")
    with pytest.raises(NotFoundError, match="No run"):
        remote.data.log_input("0" * 32, "customers@1")
    # The same classes come back from the server itself, not only from client-side checks.
    client = ApiClient(remote.settings.uri)
    try:
        with pytest.raises(NotFoundError, match="did you mean 'customers'"):
            client.get_json("data/datasets/custmers")
        with pytest.raises(InvalidArgumentError, match="Invalid dataset name"):
            client.put_json("data/datasets/-bad")
        with pytest.raises(ConflictError, match="immutable"):
            client.put_json("data/datasets/customers/tags/oct", {"number": 2})
    finally:
        client.close()


def test_time_travel_reads_the_servers_clock(remote: Workspace, tmp_path: Path) -> None:
    src = tree(tmp_path / "src", {"a": b"1"})
    v1 = remote.data.commit("d", src)
    (src / "a").write_bytes(b"2")
    v2 = remote.data.commit("d", src)
    assert remote.data.get("d", as_of=v1.created_at).number == 1
    assert remote.data.get("d", as_of=v2.created_at).number == 2
    with pytest.raises(NotFoundError, match="no version committed at or before"):
        remote.data.get("d", as_of=datetime(2000, 1, 1, tzinfo=UTC))
    prefix = v1.id.split(":")[1][:8]
    assert remote.data.get(f"d@{prefix}").number == 1


# -- the server checks what the SDK checks ------------------------------------------------


def test_the_server_refuses_what_the_sdk_would_refuse(remote: Workspace, tmp_path: Path) -> None:
    url = remote.settings.uri
    remote.data.commit("d", tree(tmp_path / "src", {"a": b"1"}))
    for tag in ("latest", "12", "abcdef12", "no spaces"):
        assert_error(
            api(url, "PUT", f"data/datasets/d/tags/{tag}", json={"number": 1}),
            400,
            "INVALID_ARGUMENT",
            "Invalid tag",
        )
    body = {"version_id": "blake3:" + "0" * 64, "file_count": 1, "size": 1, "tabular": False}
    assert_error(
        api(url, "POST", "data/datasets/d/versions", json=body), 404, "NOT_FOUND", "upload"
    )
    bad_digest = {**body, "version_id": "md5:abc"}
    assert_error(
        api(url, "POST", "data/datasets/d/versions", json=bad_digest),
        400,
        "INVALID_ARGUMENT",
        "Malformed content digest",
    )
    assert_error(
        api(url, "POST", "data/datasets/d/versions", json={**body, "author": "mallory"}),
        400,
        "INVALID_ARGUMENT",
        "author",
    )
    for wrong in ({**body, "size": "1"}, {**body, "size": -1}, {**body, "message": "a\x00b"}):
        assert_error(
            api(url, "POST", "data/datasets/d/versions", json=wrong), 400, "INVALID_ARGUMENT"
        )
    assert_error(
        api(url, "POST", f"data/runs/{'0' * 32}/inputs", json={"dataset": "d", "number": 1}),
        404,
        "NOT_FOUND",
        "No run",
    )
    assert_error(api(url, "GET", f"data/datasets/d/versions/{2**40}"), 400, "INVALID_ARGUMENT")
    assert_error(api(url, "GET", "data/datasets/d/versions/9"), 404, "NOT_FOUND", "versions 1..1")
    assert_error(
        api(url, "GET", "data/datasets/d/versions/find", params={"id_prefix": "ab"}),
        400,
        "INVALID_ARGUMENT",
        "prefix",
    )
    found = api(url, "GET", "data/datasets/d/versions/find", params={"tag": "a\x00b"})
    assert_error(found, 400, "INVALID_ARGUMENT", "NUL")  # no stored text can hold a NUL
    assert_error(
        api(url, "POST", "data/datasets/d/versions", content=b"{not json", headers=_JSON),
        400,
        "INVALID_ARGUMENT",
    )
    # Nothing of that was recorded.
    assert [v.number for v in remote.data.log("d")] == [1]
    assert remote.data.get("d@1").tags == ()


def test_a_pulled_version_keeps_its_number_author_and_time(
    remote: Workspace, tmp_path: Path
) -> None:
    """``put_version`` (what a pull records) is idempotent and refuses diverged content."""
    original = remote.data.commit("d", tree(tmp_path / "src", {"a": b"1"}))
    other = remote.data.commit("e", tree(tmp_path / "other", {"b": b"2"}))
    client = ApiClient(remote.settings.uri)
    try:
        body = {
            "version_id": original.id,
            "author": "carol",
            "created_at": 1_000_000,
            "file_count": 1,
            "size": 1,
            "tabular": False,
        }
        copied = client.put_json("data/datasets/copy/versions/7", body)
        assert (copied["number"], copied["author"], copied["created_at"]) == (7, "carol", 1_000_000)
        assert client.put_json("data/datasets/copy/versions/7", body)["number"] == 7
        with pytest.raises(ConflictError, match="diverged"):
            client.put_json("data/datasets/copy/versions/7", {**body, "version_id": other.id})
    finally:
        client.close()
    assert remote.data.get("copy@7").author == "carol"


# -- the CLI ------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from driftline.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_works_against_the_server(
    remote: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    remote.data.commit("customers", tree(tmp_path / "src", {"a.txt": b"hello"}), tags=["oct"])
    monkeypatch.setenv("DRIFTLINE_URI", remote.settings.uri)
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "cli-home"))
    code, out, err = run_cli(capsys, "data", "list", "--json")
    assert code == 0, err
    assert [(d["name"], d["latest"]) for d in json.loads(out)] == [("customers", 1)]
    code, out, err = run_cli(capsys, "data", "log", "customers")
    assert code == 0, err
    assert "customers@1" in out
    assert "oct" in out
    code, out, err = run_cli(capsys, "data", "log", "custmers")
    assert code == 1
    assert "No dataset named 'custmers'; did you mean 'customers'" in out + err
    code, out, err = run_cli(capsys, "audit", "verify")
    assert code == 0, err
    assert "intact: 1 entries" in out
    # Nothing was written next to the client: the server holds it all.
    assert not list((tmp_path / "cli-home").glob("*.db"))


def test_pulling_from_a_data_remote_into_the_server(
    remote: Workspace, open_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    """A pull records versions under their numbers through the server (``put_version``)."""
    from driftline.data.remote import pull, push

    laptop = open_workspace(f"sqlite:///{tmp_path / 'laptop.db'}")
    src = tree(tmp_path / "src", {"a.bin": b"a" * 100})
    laptop.data.commit("logs", src, message="day 1", tags=["d1"])
    (src / "b.bin").write_bytes(b"b" * 50)
    laptop.data.commit("logs", src, message="day 2")
    shared = str(tmp_path / "remote")
    push(laptop.data, None, remote=shared)

    assert pull(remote.data, "logs", remote=shared).versions == ("logs@1", "logs@2")
    for ref in ("logs@1", "logs@2", "logs@d1"):
        mine, theirs = laptop.data.get(ref), remote.data.get(ref)
        assert (theirs.id, theirs.number, theirs.message, theirs.tags, theirs.author) == (
            mine.id,
            mine.number,
            mine.message,
            mine.tags,
            mine.author,
        )
    out = remote.data.get("logs@2")
    assert {e.path for e in remote.data.manifest(out).entries} == {"a.bin", "b.bin"}
    assert pull(remote.data, None, remote=shared).objects == 0  # nothing new

    # The server's history and the remote's now differ at version 3: a pull is a conflict.
    remote.data.commit("logs", tree(tmp_path / "mine", {"c.bin": b"c"}))
    (src / "a.bin").write_bytes(b"changed")
    laptop.data.commit("logs", src)
    push(laptop.data, None, remote=shared)
    with pytest.raises(ConflictError, match="diverged"):
        pull(remote.data, "logs", remote=shared)


def test_a_folder_commit_sends_only_the_objects_the_server_lacks(
    server: Any, open_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    files = {f"part-{i:03d}.bin": f"row {i}\n".encode() * (i + 1) for i in range(40)}
    folder = tree(tmp_path / "src", files)
    sent: list[str] = []

    def count_uploads(workspace: Workspace) -> None:
        """Record every object ``workspace`` sends, one by one or in batches."""
        backend = workspace.content.backend
        put_file, put_batch = backend.put_file, backend.put_batch  # type: ignore[attr-defined]

        def one(key: str, source: Path) -> bool:
            sent.append(key)
            return bool(put_file(key, source))

        def many(objects: list[tuple[str, Path]]) -> None:
            sent.extend(digest_key(digest) for digest, _source in objects)
            put_batch(objects)

        backend.put_file = one  # type: ignore[method-assign]
        backend.put_batch = many  # type: ignore[attr-defined]

    first = open_workspace(server.url)
    count_uploads(first)
    v1 = first.data.commit("parts", folder)
    assert len(sent) == 41  # 40 files and the manifest
    # A second client (no stat cache shared) commits the same bytes plus one new file:
    # one bulk question, then the new file and the new manifest go up.
    (folder / "part-new.bin").write_bytes(b"new")
    sent.clear()
    second = open_workspace(server.url, home=tmp_path / "other" / ".driftline")
    count_uploads(second)
    v2 = second.data.commit("parts", folder)
    assert len(sent) == 2
    assert v2.number == v1.number + 1
    assert second.data.get("parts@latest").file_count == 41
