"""Artifacts over HTTP: the server's content-object routes and ``HttpByteStore``.

Everything runs against a real ``driftline server`` process on loopback. Requests are
counted (and, where a test needs it, broken off) by :class:`RecordingClient`, a subclass
of the real client that still sends every request to the server.
"""

from __future__ import annotations

import http.client
import math
import os
import re
import secrets
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftline.api.client import ApiClient
from driftline.core.artifacts import ContentStore, batch
from driftline.core.artifacts.http import HttpByteStore
from driftline.core.artifacts.local import LocalByteStore
from driftline.core.artifacts.uploads import UploadArea, upload_id_for
from driftline.core.hashing import digest_key, hash_bytes, hash_file
from driftline.errors import (
    ConflictError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
)

pytestmark = pytest.mark.server

MiB = 1024 * 1024


class SimulatedCrash(Exception):
    """Stands for the client process dying mid-upload (not retried by anyone)."""


class RecordingClient(ApiClient):
    """The real :class:`ApiClient`, recording what it sends.

    ``calls`` lists ``(method, path)`` of every request; ``sent`` counts streamed body
    bytes. ``before_send(method, path, call_number)`` runs before a request is sent (it
    may raise, or hold a lock on the server's side); ``break_body`` (same arguments) may
    return a byte count after which that request's body fails like a dropped connection.
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.calls: list[tuple[str, str]] = []
        self.sent = 0
        self.before_send: Callable[[str, str, int], None] | None = None
        self.break_body: Callable[[str, str, int], int | None] | None = None
        self._guard = threading.Lock()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._guard:
            self.calls.append((method, path))
            number = len(self.calls)
        if self.before_send is not None:
            self.before_send(method, path, number)
        content = kwargs.get("content")
        if content is not None and not isinstance(content, bytes):
            limit = self.break_body(method, path, number) if self.break_body else None
            kwargs["content"] = self._counted(content, limit)
        return super().request(method, path, **kwargs)

    def _counted(self, body: Iterator[bytes], limit: int | None) -> Iterator[bytes]:
        sent = 0
        for piece in body:
            if limit is not None and sent + len(piece) > limit:
                piece = piece[: limit - sent]
                with self._guard:
                    self.sent += len(piece)
                yield piece
                raise httpx.WriteError("connection dropped (simulated)")
            sent += len(piece)
            with self._guard:
                self.sent += len(piece)
            yield piece

    def count(self, method: str, pattern: str) -> int:
        """How many requests of ``method`` went to a path matching the regex ``pattern``."""
        return sum(1 for m, p in self.calls if m == method and re.fullmatch(pattern, p))

    def reset(self) -> None:
        self.calls.clear()
        self.sent = 0


OBJECT_PUT = r"artifacts/objects/.+"
BATCH_POST = r"artifacts/batches"
CHUNK_PUT = r"artifacts/uploads/[^/]+"


@pytest.fixture
def client(live_server: Any) -> Iterator[RecordingClient]:
    client = RecordingClient(live_server.url)
    yield client
    client.close()


def make_store(client: ApiClient, chunk_size: int = MiB) -> ContentStore:
    return ContentStore(HttpByteStore(client, chunk_size=chunk_size), "blake3")


def write(path: Path, size: int) -> Path:
    """A file of ``size`` fresh random bytes (random: no test reuses another's objects)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MiB))
            out.write(block)
            left -= len(block)
    return path


def write_large(path: Path, size: int) -> Path:
    """A large file quickly: one random block repeated, made unique by a random prefix."""
    block = os.urandom(8 * MiB)
    with open(path, "wb") as out:
        out.write(secrets.token_bytes(32))
        left = size - 32
        while left:
            out.write(block[: min(left, len(block))])
            left -= min(left, len(block))
    return path


def server_object(server: Any, digest: str) -> Path:
    return Path(server.root) / "artifacts" / digest_key(digest)


# -- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, 1000, MiB - 1, MiB, MiB + 1, 5 * MiB + 123],
    ids=["empty", "1B", "1kB", "chunk-1", "chunk", "chunk+1", "5.1chunks"],
)
def test_round_trip_of_files_of_several_sizes(
    size: int, client: RecordingClient, live_server: Any, tmp_path: Path
) -> None:
    store = make_store(client, chunk_size=MiB)
    if size == 1:
        # Only 256 one-byte objects exist, and another test may have stored any of them on
        # the session's server, loose or packed: take one it does not have (a random byte
        # was already there about one run in 256).
        source = tmp_path / "source.bin"
        candidates = (bytes([i]) for i in range(256))
        source.write_bytes(next(b for b in candidates if not store.exists(hash_bytes(b))))
    else:
        source = write(tmp_path / "source.bin", size)
    # The empty object may already be on the session's server from another test.
    server_object(live_server, hash_file(source)[0]).unlink(missing_ok=True)
    blob = store.put_file(source)
    assert blob == store.put_file(source)  # the second time, nothing is sent
    assert (blob.digest, blob.size) == hash_file(source)
    chunked = size > MiB
    assert client.count("PUT", OBJECT_PUT) == (0 if chunked else 1)
    assert client.count("PUT", CHUNK_PUT) == (math.ceil(size / MiB) if chunked else 0)
    assert client.sent == size
    # What the server stored is exactly the file.
    assert server_object(live_server, blob.digest).read_bytes() == source.read_bytes()
    target = store.get_file(blob.digest, tmp_path / "copy.bin")
    assert target.read_bytes() == source.read_bytes()
    assert store.exists(blob.digest)
    assert store.backend.size(digest_key(blob.digest)) == size
    assert abs(store.backend.modified(digest_key(blob.digest)) - time.time()) < 300


def test_forty_mib_goes_up_in_chunks_and_comes_back(
    client: RecordingClient, tmp_path: Path
) -> None:
    store = make_store(client, chunk_size=4 * MiB)
    source = write(tmp_path / "forty.bin", 40 * MiB)
    blob = store.put_file(source)
    assert client.count("POST", r"artifacts/uploads") == 1
    assert client.count("PUT", CHUNK_PUT) == 10
    assert client.count("POST", r"artifacts/uploads/[^/]+/complete") == 1
    assert client.sent == 40 * MiB
    copy = store.get_file(blob.digest, tmp_path / "copy.bin")
    assert hash_file(copy) == hash_file(source)


def test_chunks_spread_over_several_workers_make_one_upload(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory(workers=2)
    client = RecordingClient(server.url)
    # A new connection per request, so the kernel hands requests to either worker.
    client.before_send = lambda method, path, number: client.close()
    try:
        store = make_store(client, chunk_size=256 * 1024)
        sources = [write(tmp_path / f"w{i}.bin", 2 * MiB + i) for i in range(3)]
        blobs = store.put_files(sources)
        chunks = sum(math.ceil(s.stat().st_size / (256 * 1024)) for s in sources)
        assert client.count("PUT", CHUNK_PUT) == chunks == 8 + 9 + 9
        for blob, source in zip(blobs, sources, strict=True):
            assert store.read_bytes(blob.digest) == source.read_bytes()
    finally:
        client.close()


def test_put_bytes_read_bytes_and_verify(client: RecordingClient) -> None:
    store = make_store(client)
    data = os.urandom(5000)
    blob = store.put_bytes(data)
    assert blob.digest == hash_bytes(data)
    assert store.read_bytes(blob.digest) == data
    store.verify(blob.digest)
    assert client.count("PUT", OBJECT_PUT) == 1
    assert client.count("HEAD", OBJECT_PUT) == 1  # asked once, then sent without asking again


def test_a_missing_object_is_not_found(client: RecordingClient, tmp_path: Path) -> None:
    store = make_store(client)
    absent = hash_bytes(os.urandom(64))
    assert not store.exists(absent)
    with pytest.raises(NotFoundError, match="missing from the artifact store"):
        store.get_file(absent, tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()
    with pytest.raises(NotFoundError):
        store.backend.size(digest_key(absent))


def test_objects_stored_on_the_server_are_not_deleted_or_listed_by_clients(
    client: RecordingClient,
) -> None:
    backend = HttpByteStore(client)
    blob = ContentStore(backend).put_bytes(b"keep me")
    with pytest.raises(InvalidArgumentError, match="garbage collection"):
        backend.delete(digest_key(blob.digest))
    with pytest.raises(InvalidArgumentError, match="not offered"):
        list(backend.iter_keys("blake3"))
    with pytest.raises(InvalidArgumentError, match="content-addressed"):
        backend.exists("versions/data/00000001.json")
    assert backend.local_path(digest_key(blob.digest)) is None
    assert ContentStore(backend).exists(blob.digest)


# -- memory ------------------------------------------------------------------------------


def _rss_anon(pid: int) -> int:
    """Anonymous resident memory of a process (heap: not file pages or page cache)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon line")


class RssSampler:
    """Samples a process's anonymous RSS in a thread; ``growth`` is peak minus start."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = _rss_anon(pid)
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss_anon(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_200_mib_object_never_sits_whole_in_memory(
    client: RecordingClient, live_server: Any, tmp_path: Path
) -> None:
    size = 200 * MiB
    chunk = 64 * MiB
    store = make_store(client, chunk_size=chunk)
    source = write_large(tmp_path / "big.bin", size)
    expected = hash_file(source)
    pid = live_server.process.pid

    tracemalloc.start()
    try:
        with RssSampler(pid) as server_up:
            blob = store.put_file(source)
        upload_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with RssSampler(pid) as server_down:
            copy = store.get_file(blob.digest, tmp_path / "copy.bin")
        download_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert (blob.digest, blob.size) == expected
    assert hash_file(copy) == expected
    assert client.count("PUT", CHUNK_PUT) == math.ceil(size / chunk)
    # Client: a few MiB of buffers, far below one chunk, let alone the object.
    assert upload_peak < 16 * MiB, upload_peak
    assert download_peak < 16 * MiB, download_peak
    # Server: a buffered chunk alone would add 64 MiB of heap.
    assert server_up.growth < 32 * MiB, server_up.growth
    assert server_down.growth < 32 * MiB, server_down.growth


# -- resumable uploads -------------------------------------------------------------------


def upload_offset(server: Any, digest: str) -> int:
    answer = httpx.get(f"{server.url}/api/v1/artifacts/uploads/{upload_id_for(digest)}")
    assert answer.status_code == 200, answer.text
    return int(answer.json()["offset"])


def test_an_interrupted_upload_resumes_from_the_servers_offset(
    client: RecordingClient, live_server: Any, tmp_path: Path
) -> None:
    size = 5 * MiB + 4321
    source = write(tmp_path / "resume.bin", size)
    digest, _ = hash_file(source)

    def die_at_third_chunk(method: str, path: str, number: int) -> None:
        if (
            method == "PUT"
            and re.fullmatch(CHUNK_PUT, path)
            and client.count("PUT", CHUNK_PUT) == 3
        ):
            raise SimulatedCrash

    client.before_send = die_at_third_chunk
    with pytest.raises(SimulatedCrash):
        make_store(client).put_file(source)
    assert upload_offset(live_server, digest) == 2 * MiB
    assert not make_store(client).exists(digest)

    # A new client (a new process) storing the same file picks the upload up.
    fresh = RecordingClient(live_server.url)
    try:
        blob = make_store(fresh).put_file(source)
        assert blob.digest == digest
        assert fresh.sent == size - 2 * MiB
        assert fresh.count("PUT", CHUNK_PUT) == 4
        assert make_store(fresh).read_bytes(digest) == source.read_bytes()
    finally:
        fresh.close()
    # The upload is over: its id is gone.
    answer = httpx.get(f"{live_server.url}/api/v1/artifacts/uploads/{upload_id_for(digest)}")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"


def test_a_chunk_cut_off_midway_keeps_what_arrived(
    client: RecordingClient, live_server: Any, tmp_path: Path, wait_until: Callable[..., Any]
) -> None:
    size = 3 * MiB
    source = write(tmp_path / "cut.bin", size)
    digest, _ = hash_file(source)
    begun = httpx.post(
        f"{live_server.url}/api/v1/artifacts/uploads", json={"digest": digest, "size": size}
    ).json()
    assert begun["offset"] == 0
    assert not begun["stored"]
    # Send a chunk's headers and 300 kB of its 1 MiB body, then hang up.
    head = (
        f"PUT /api/v1/artifacts/uploads/{begun['upload_id']}?offset=0 HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nContent-Length: {MiB}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", live_server.port)) as sock:
        sock.sendall(head + source.read_bytes()[:300_000])
    wait_until(lambda: upload_offset(live_server, digest) == 300_000, message="partial append")

    blob = make_store(client).put_file(source)
    assert blob.digest == digest
    assert client.sent == size - 300_000
    assert make_store(client).read_bytes(digest) == source.read_bytes()


def test_a_failed_chunk_is_sent_again_from_the_servers_offset(
    client: RecordingClient, tmp_path: Path
) -> None:
    size = 4 * MiB
    source = write(tmp_path / "flaky.bin", size)
    failed: list[int] = []

    def drop_second_chunk(method: str, path: str, number: int) -> int | None:
        second = method == "PUT" and re.fullmatch(CHUNK_PUT, path) and not failed
        if second and client.count("PUT", CHUNK_PUT) == 2:
            failed.append(number)
            return MiB // 2
        return None

    client.break_body = drop_second_chunk
    blob = make_store(client).put_file(source)
    assert failed
    assert blob.size == size
    assert client.count("PUT", CHUNK_PUT) >= 5  # four chunks and at least one retry
    assert client.count("GET", CHUNK_PUT) >= 1  # asked the server where to resume
    assert client.sent < size + MiB  # resumed, not restarted
    assert make_store(client).read_bytes(blob.digest) == source.read_bytes()


def test_completion_waits_while_the_upload_is_busy(
    client: RecordingClient, live_server: Any, tmp_path: Path
) -> None:
    import fcntl

    size = 2 * MiB + 1
    source = write(tmp_path / "busy.bin", size)
    digest, _ = hash_file(source)
    part = Path(live_server.root) / "artifacts" / ".tmp" / "uploads"
    part = part / f"{upload_id_for(digest)}.part"
    held: list[Any] = []

    def hold_the_upload(method: str, path: str, number: int) -> None:
        # Another server request (here: this test process) holds the upload's lock
        # when completion is first asked for; it lets go a little later.
        if path.endswith("/complete") and not held:
            handle = open(part, "rb")  # noqa: SIM115 - closed by the timer below
            fcntl.flock(handle, fcntl.LOCK_EX)
            held.append(handle)
            threading.Timer(0.5, handle.close).start()

    client.before_send = hold_the_upload
    blob = make_store(client).put_file(source)
    assert held
    assert client.count("POST", r"artifacts/uploads/[^/]+/complete") >= 2
    assert client.sent == size  # nothing was sent twice
    assert make_store(client).read_bytes(blob.digest) == source.read_bytes()


def test_a_chunk_at_the_wrong_offset_is_409_with_the_current_offset(
    live_server: Any, tmp_path: Path
) -> None:
    data = os.urandom(3000)
    digest = hash_bytes(data)
    base = f"{live_server.url}/api/v1/artifacts/uploads"
    upload = httpx.post(base, json={"digest": digest, "size": 3000}).json()["upload_id"]
    assert (
        httpx.put(f"{base}/{upload}", params={"offset": 0}, content=data[:1000]).json()["offset"]
        == 1000
    )
    stale = httpx.put(f"{base}/{upload}", params={"offset": 0}, content=data[:1000])
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "CONFLICT"
    assert stale.json()["error"]["details"] == {"offset": 1000}
    early = httpx.post(f"{base}/{upload}/complete")
    assert early.status_code == 409
    assert "1000 of 3000" in early.json()["error"]["message"]
    too_long = httpx.put(f"{base}/{upload}", params={"offset": 1000}, content=data[1000:] + b"x")
    assert too_long.status_code == 400
    assert httpx.get(f"{base}/{upload}").json()["offset"] == 1000
    # Beginning again resumes the same upload.
    again = httpx.post(base, json={"digest": digest, "size": 3000}).json()
    assert (again["upload_id"], again["offset"]) == (upload, 1000)
    assert (
        httpx.put(f"{base}/{upload}", params={"offset": 1000}, content=data[1000:]).json()["offset"]
        == 3000
    )
    done = httpx.post(f"{base}/{upload}/complete")
    assert done.json() == {"digest": digest, "size": 3000}
    # Completing twice (a retry whose answer was lost) is harmless.
    assert httpx.post(f"{base}/{upload}/complete").json() == {"digest": digest, "size": 3000}
    stored = httpx.post(base, json={"digest": digest, "size": 3000}).json()
    assert stored["stored"] is True
    assert stored["upload_id"] is None
    assert server_object(live_server, digest).read_bytes() == data


def test_an_abandoned_upload_can_be_aborted(live_server: Any) -> None:
    digest = hash_bytes(os.urandom(100))
    base = f"{live_server.url}/api/v1/artifacts/uploads"
    upload = httpx.post(base, json={"digest": digest, "size": 100}).json()["upload_id"]
    assert httpx.delete(f"{base}/{upload}").status_code == 200
    assert httpx.get(f"{base}/{upload}").status_code == 404


def test_stale_uploads_are_swept_by_age(tmp_path: Path) -> None:
    content = ContentStore(LocalByteStore(tmp_path / "store"))
    area = UploadArea(tmp_path / "store" / ".tmp" / "uploads", max_age=3600)
    old = hash_bytes(b"old")
    young = hash_bytes(b"young")
    busy = hash_bytes(b"busy")
    for digest in (old, young, busy):
        status = area.begin(digest, 10)
        with area.open_chunk(status.upload_id, 0) as writer:
            writer.write(b"12345")
    leftover = area.new_temp()
    leftover.write_bytes(b"a single PUT that died")
    long_ago = time.time() - 7200
    for path in area.folder.iterdir():
        if not path.name.startswith(upload_id_for(young)):
            os.utime(path, (long_ago, long_ago))
    holder = area.open_chunk(upload_id_for(busy), 5)  # someone is writing right now
    try:
        assert area.sweep() == 2
    finally:
        holder.close()
    with pytest.raises(NotFoundError):
        area.status(upload_id_for(old))
    assert not leftover.exists()
    assert area.status(upload_id_for(young)).offset == 5
    assert area.status(upload_id_for(busy)).offset == 5
    with area.open_chunk(upload_id_for(young), 5), pytest.raises(ConflictError, match="Another"):
        area.open_chunk(upload_id_for(young), 5)
    assert not content.exists(old)


# -- batches of small objects ---------------------------------------------------------


def test_small_objects_travel_in_batches_and_land_in_a_pack(
    client: RecordingClient, live_server: Any, tmp_path: Path
) -> None:
    files = [write(tmp_path / f"s{i}.bin", 100 * 1024) for i in range(300)]  # 29.3 MiB
    store = make_store(client)
    blobs = store.put_files(files, workers=2)
    assert client.count("POST", BATCH_POST) == 2  # 28 MiB of objects per batch at most
    assert client.count("PUT", OBJECT_PUT) == 0
    packs = Path(live_server.root) / "artifacts" / ".packs"
    assert any(packs.glob("*.pack"))
    for blob, source in zip(blobs[::50], files[::50], strict=True):
        assert store.read_bytes(blob.digest) == source.read_bytes()
    client.reset()
    assert store.put_files(files) == blobs  # stored: nothing is sent again
    assert client.calls == [("POST", "artifacts/missing")]


def test_a_batch_with_a_lying_digest_stores_nothing(live_server: Any) -> None:
    honest, liar = os.urandom(1000), os.urandom(1000)
    claimed = hash_bytes(os.urandom(1000))
    body = batch.encode([(hash_bytes(honest), honest), (claimed, liar)])
    answer = httpx.post(f"{live_server.url}/api/v1/artifacts/batches", content=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "DATA_INTEGRITY"
    assert claimed in answer.json()["error"]["message"]
    for digest in (hash_bytes(honest), claimed):
        head = httpx.head(f"{live_server.url}/api/v1/artifacts/objects/{digest}")
        assert head.status_code == 404  # all or nothing


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"no index here", 400, "JSON index"),
        (b"{not json}\n", 400, "not JSON"),
        (b'{"a": 1}\n', 400, "list of"),
        (b'[["blake3:00", 1]]\nx', 400, "Malformed content digest"),
        (f'[["{"blake3:" + "0" * 64}", 5]]\nabc'.encode(), 400, "lists 5 bytes"),
        (f'[["{"blake3:" + "0" * 64}", {2 * MiB}]]\n'.encode(), 400, "objects of up to"),
        (b"x" * (batch.MAX_BATCH_BYTES + 1), 413, "at most"),
    ],
    ids=["no-index", "not-json", "not-a-list", "bad-digest", "short", "too-big", "oversized"],
)
def test_malformed_batches_are_refused(
    live_server: Any, body: bytes, status: int, message: str
) -> None:
    answer = httpx.post(f"{live_server.url}/api/v1/artifacts/batches", content=body)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]["message"]


# -- asking first ----------------------------------------------------------------------


def test_only_the_objects_the_server_lacks_are_sent(
    client: RecordingClient, tmp_path: Path
) -> None:
    files = [write(tmp_path / f"f{i}.bin", 1000 + i) for i in range(6)]
    files.append(write(tmp_path / "big.bin", 3 * MiB))  # chunked
    store = make_store(client, chunk_size=MiB)
    store.put_file(files[0])
    store.put_file(files[1])
    client.reset()

    blobs = store.put_files([*files, files[2]])  # a file twice is sent once
    assert [b.digest for b in blobs] == [hash_file(f)[0] for f in [*files, files[2]]]
    assert client.count("POST", r"artifacts/missing") == 1
    assert client.count("HEAD", OBJECT_PUT) == 0
    assert client.count("PUT", OBJECT_PUT) == 0
    assert client.count("POST", BATCH_POST) == 1  # the four small ones, together
    assert client.count("POST", r"artifacts/uploads") == 1
    assert client.sent == files[-1].stat().st_size  # streamed: the chunks of the large one

    client.reset()
    assert store.put_files(files) == blobs[:-1]
    assert client.count("POST", r"artifacts/missing") == 1
    assert client.sent == 0
    assert len(client.calls) == 1

    client.reset()
    absent = hash_bytes(os.urandom(10))
    assert store.stored([b.digest for b in blobs] + [absent, "junk"]) == {b.digest for b in blobs}
    assert client.calls == [("POST", "artifacts/missing")]


def test_a_single_put_of_a_stored_object_sends_nothing(
    client: RecordingClient, tmp_path: Path
) -> None:
    store = make_store(client)
    source = write(tmp_path / "once.bin", 2000)
    store.put_file(source)
    client.reset()
    store.put_file(source)
    assert client.calls == [("HEAD", f"artifacts/objects/{hash_file(source)[0]}")]
    assert client.sent == 0


# -- integrity -------------------------------------------------------------------------


def test_a_body_that_does_not_match_its_digest_is_refused(live_server: Any, tmp_path: Path) -> None:
    claimed = hash_bytes(os.urandom(100))
    answer = httpx.put(
        f"{live_server.url}/api/v1/artifacts/objects/{claimed}", content=b"something else"
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "DATA_INTEGRITY"
    assert claimed in answer.json()["error"]["message"]
    assert not server_object(live_server, claimed).exists()
    missing = httpx.post(
        f"{live_server.url}/api/v1/artifacts/missing", json={"digests": [claimed]}
    ).json()
    assert missing == {"missing": [claimed]}
    # No temporary file is left behind either.
    uploads = Path(live_server.root) / "artifacts" / ".tmp" / "uploads"
    assert not list(uploads.glob("put-*"))


@pytest.mark.parametrize("size", [2000, 3 * MiB], ids=["single", "chunked"])
def test_a_file_that_changed_after_hashing_is_refused_on_upload(
    size: int, client: RecordingClient, live_server: Any, tmp_path: Path
) -> None:
    backend = HttpByteStore(client, chunk_size=MiB)
    claimed = hash_bytes(os.urandom(size))  # what the file held when it was hashed
    changed = write(tmp_path / "changed.bin", size)
    with pytest.raises(IntegrityError, match=r"changed\.bin"):
        backend.put_file(digest_key(claimed), changed)
    assert not backend.exists(digest_key(claimed))
    assert not server_object(live_server, claimed).exists()
    answer = httpx.get(f"{live_server.url}/api/v1/artifacts/uploads/{upload_id_for(claimed)}")
    assert answer.status_code == 404  # a refused upload is discarded


def test_an_object_corrupted_on_the_server_raises_integrity_error_on_the_client(
    client: RecordingClient, live_server: Any, tmp_path: Path
) -> None:
    store = make_store(client)
    blob = store.put_bytes(os.urandom(50_000))
    stored = server_object(live_server, blob.digest)
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[1234] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="corrupt"):
        store.get_file(blob.digest, tmp_path / "copy.bin")
    assert not (tmp_path / "copy.bin").exists()
    with pytest.raises(IntegrityError):
        store.read_bytes(blob.digest)
    # Storing the right bytes again repairs it.
    source = tmp_path / "right.bin"
    source.write_bytes(bytes(data[:1234]) + bytes([data[1234] ^ 0xFF]) + bytes(data[1235:]))
    HttpByteStore(client)._put_whole(blob.digest, source, blob.size)
    store.verify(blob.digest)


# -- downloads ---------------------------------------------------------------------------


def test_head_and_range_requests(live_server: Any, client: RecordingClient) -> None:
    data = os.urandom(10_000)
    blob = make_store(client).put_bytes(data)
    url = f"{live_server.url}/api/v1/artifacts/objects/{blob.digest}"
    head = httpx.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == "10000"
    assert head.headers["etag"] == f'"{blob.digest}"'
    assert head.content == b""
    whole = httpx.get(url)
    assert whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    tail = httpx.get(url, headers={"Range": "bytes=9000-"})
    assert tail.status_code == 206
    assert tail.headers["content-range"] == "bytes 9000-9999/10000"
    assert tail.content == data[9000:]
    middle = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert middle.content == data[10:20]
    suffix = httpx.get(url, headers={"Range": "bytes=-5"})
    assert suffix.content == data[-5:]
    beyond = httpx.get(url, headers={"Range": "bytes=10000-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == "bytes */10000"
    assert beyond.json()["error"]["code"] == "RANGE_NOT_SATISFIABLE"
    # Forms the server does not serve are ignored: the whole object.
    assert httpx.get(url, headers={"Range": "bytes=0-1,5-6"}).content == data
    # An object no test stored (a fixed one-byte value was once stored by the 1-byte
    # round trip, whose random byte matched it one run in 256).
    absent = hash_bytes(os.urandom(32))
    assert httpx.head(f"{live_server.url}/api/v1/artifacts/objects/{absent}").status_code == 404


class BreakingStream(httpx.SyncByteStream):
    """A response body that fails like a dropped connection after ``limit`` bytes."""

    def __init__(self, inner: Any, limit: int) -> None:
        self.inner = inner
        self.limit = limit

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for piece in self.inner:
            if seen + len(piece) > self.limit:
                yield piece[: self.limit - seen]
                raise httpx.ReadError("connection reset (simulated)")
            seen += len(piece)
            yield piece

    def close(self) -> None:
        self.inner.close()


def test_a_broken_download_resumes_with_a_range_request(
    client: RecordingClient, tmp_path: Path
) -> None:
    store = make_store(client)
    source = write(tmp_path / "download.bin", 3 * MiB + 17)
    blob = store.put_file(source)
    original = ApiClient.request
    broken: list[int] = []

    def request(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = original(client, method, path, **kwargs)
        if method == "GET" and kwargs.get("stream") and len(broken) < 2:
            response.stream = BreakingStream(response.stream, 1_000_000 + len(broken))
            broken.append(1)
        return response

    client.request = request  # type: ignore[method-assign]
    copy = store.get_file(blob.digest, tmp_path / "copy.bin")
    assert copy.read_bytes() == source.read_bytes()
    assert len(broken) == 2


# -- bad input ---------------------------------------------------------------------------

HEX = "ab" * 32


@pytest.mark.parametrize(
    "path",
    [
        "objects/not-a-digest",
        "objects/blake3:xyz",
        f"objects/md5:{HEX}",
        f"objects/blake3:{HEX.upper()}",
        "objects/..%2F..%2Fetc%2Fpasswd",
        f"objects/..%2F..%2Fblake3%2F{HEX[:2]}%2F{HEX[2:]}",
        "objects/%2Fetc%2Fpasswd",
        "objects//etc/passwd",
        "objects/%00",
        f"objects/blake3:{HEX}%00",
        f"objects/blake3:{HEX}/../../x",
        "objects/",
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT"])
def test_junk_and_traversal_in_object_routes_are_4xx_envelopes(
    live_server: Any, path: str, method: str
) -> None:
    # http.client sends the path as written (httpx would normalise '..' segments away).
    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=30)
    try:
        conn.request(method, f"/api/v1/artifacts/{path}", body=b"x" if method == "PUT" else None)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 400, (response.status, body)
    if method != "HEAD":
        error = httpx.Response(response.status, content=body).json()["error"]
        assert error["code"] == "INVALID_ARGUMENT"
        # A NUL is refused before any route sees the path.
        expected = "NUL characters" if "%00" in path else "Malformed content digest"
        assert expected in error["message"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"digests": ["junk"]}, "Malformed content digest 'junk'"),
        ({"digests": [f"blake3:{HEX}", "../../etc/passwd"]}, "Malformed content digest"),
        ({"digests": ["x" * 500]}, "digests.0"),
        ({"digests": "blake3:abc"}, "digests"),
        ({"digests": [1, 2]}, "digests.0"),
        ({}, "digests"),
        ({"digests": [], "extra": 1}, "extra"),
        ({"digests": [f"blake3:{HEX}"] * 10_001}, "10000"),
    ],
)
def test_bad_missing_requests_are_400(live_server: Any, body: Any, problem: str) -> None:
    answer = httpx.post(f"{live_server.url}/api/v1/artifacts/missing", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert problem in answer.json()["error"]["message"]


def test_malformed_and_oversized_json_bodies(live_server: Any) -> None:
    url = f"{live_server.url}/api/v1/artifacts/missing"
    broken = httpx.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    huge = httpx.post(url, content=b"[" + b" " * (3 * MiB) + b"]")
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "REQUEST_TOO_LARGE"
    assert httpx.post(url, json={"digests": []}).json() == {"missing": []}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "uploads", {"digest": "junk", "size": 1}, 400),
        ("POST", "uploads", {"digest": f"blake3:{HEX}", "size": -1}, 400),
        ("POST", "uploads", {"digest": f"blake3:{HEX}", "size": "12"}, 400),
        ("POST", "uploads", {"digest": f"blake3:{HEX}"}, 400),
        ("GET", "uploads/not-an-id", None, 400),
        ("GET", "uploads/..%2F..%2Fetc", None, 404),
        ("GET", f"uploads/blake3-{HEX}", None, 404),
        ("PUT", f"uploads/blake3-{HEX}?offset=-1", b"x", 400),
        ("PUT", f"uploads/blake3-{HEX}?offset=abc", b"x", 400),
        ("PUT", f"uploads/blake3-{HEX}", b"x", 400),
        ("PUT", f"uploads/blake3-{HEX}?offset=0", b"x", 404),
        ("PUT", "uploads/%2E%2E?offset=0", b"x", 400),
        ("POST", f"uploads/blake3-{HEX}/complete", None, 404),
        ("POST", "uploads/%00/complete", None, 400),
        ("DELETE", "uploads/not-an-id", None, 400),
    ],
)
def test_bad_upload_requests_are_4xx_envelopes(
    live_server: Any, method: str, path: str, body: Any, status: int
) -> None:
    url = f"{live_server.url}/api/v1/artifacts/{path}"
    if isinstance(body, dict):
        answer = httpx.request(method, url, json=body)
    else:
        answer = httpx.request(method, url, content=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["message"]


def test_the_routes_are_in_the_openapi_document(live_server: Any) -> None:
    paths = httpx.get(f"{live_server.url}/openapi.json").json()["paths"]
    assert "/api/v1/artifacts/missing" in paths
    assert {"get", "head", "put"} <= set(paths["/api/v1/artifacts/objects/{digest}"])
    assert {"get", "put", "delete"} <= set(paths["/api/v1/artifacts/uploads/{upload_id}"])
    assert "/api/v1/artifacts/uploads/{upload_id}/complete" in paths


# -- other artifact roots and the whole SDK ------------------------------------------------


@pytest.mark.slow
def test_a_server_whose_artifact_root_is_s3(
    s3_bucket: str, server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    import boto3

    server = server_factory(args=("--artifacts", s3_bucket))  # the last --artifacts wins
    client = RecordingClient(server.url)
    try:
        store = make_store(client, chunk_size=MiB)
        small = write(tmp_path / "small.bin", 5000)
        large = write(tmp_path / "large.bin", 3 * MiB + 5)
        blobs = store.put_files([small, large])
        assert client.count("PUT", CHUNK_PUT) == 4
        for blob, source in zip(blobs, [small, large], strict=True):
            copy = store.get_file(blob.digest, tmp_path / f"copy-{source.name}")
            assert copy.read_bytes() == source.read_bytes()
        listed = boto3.client("s3").list_objects_v2(Bucket=s3_bucket.split("/")[2], Prefix="team/")
        keys = {item["Key"] for item in listed.get("Contents", [])}
        assert keys == {f"team/{digest_key(blob.digest)}" for blob in blobs}
        claimed = hash_bytes(os.urandom(2 * MiB))
        with pytest.raises(IntegrityError):
            HttpByteStore(client, chunk_size=MiB).put_file(
                digest_key(claimed), write(tmp_path / "liar.bin", 2 * MiB)
            )
        assert not store.exists(claimed)
        # The partial uploads lived in the server's home, and are gone.
        assert not list((Path(server.root) / ".driftline" / "uploads").glob("*.part"))
    finally:
        client.close()
        server.stop()


def test_log_artifact_in_a_remote_workspace_and_fetch_it_back(
    live_server: Any, configure_default: Callable[..., Any], tmp_path: Path
) -> None:
    import driftline as dl
    from driftline.settings import Settings
    from driftline.workspace import Workspace

    ws = configure_default(uri=live_server.url, async_logging=False)
    assert ws.is_remote
    assert isinstance(ws.content.backend, HttpByteStore)
    model = write(tmp_path / "model.bin", 3 * MiB)
    folder = tmp_path / "report"
    write(folder / "a.txt", 100)
    write(folder / "sub" / "b.txt", 200)
    with dl.start_run(experiment=f"remote-{secrets.token_hex(4)}") as run:
        dl.log_artifact(model)
        dl.log_artifacts(folder, "report")
    entry_digest = hash_file(model)[0]
    # The bytes went to the server's store, not to a local folder.
    assert server_object(live_server, entry_digest).read_bytes() == model.read_bytes()

    other = Workspace.from_settings(
        Settings.load(
            uri=live_server.url,
            home=tmp_path / "other" / ".driftline",
            artifact_root=str(tmp_path / "other" / "artifacts"),
            capture_environment=False,
            async_logging=False,
        )
    )
    try:
        paths = {entry.path for entry in other.tracking.list_artifacts(run.id)}
        assert paths == {"model.bin", "report/a.txt", "report/sub/b.txt"}
        fetched = other.tracking.download_artifacts(run.id, "model.bin", tmp_path / "fetched")
        assert [p.read_bytes() for p in fetched] == [model.read_bytes()]
        report = other.tracking.download_artifacts(run.id, "report", tmp_path / "fetched-report")
        assert sorted(p.relative_to(tmp_path / "fetched-report").as_posix() for p in report) == [
            "a.txt",
            "sub/b.txt",
        ]
        assert (tmp_path / "fetched-report" / "sub" / "b.txt").read_bytes() == (
            folder / "sub" / "b.txt"
        ).read_bytes()
    finally:
        other.close()


def test_asking_for_missing_objects_restarts_the_gc_grace_of_stored_ones(
    client: RecordingClient, live_server: Any, tmp_path: Path
) -> None:
    # The client will refer to an object the server says it has, instead of sending it;
    # an old unreferenced object must not be collected in between.
    store = make_store(client, chunk_size=MiB)
    blob = store.put_file(write(tmp_path / "old.bin", 1000))
    stored = server_object(live_server, blob.digest)
    long_ago = time.time() - 30 * 86400
    os.utime(stored, (long_ago, long_ago))
    assert store.stored([blob.digest]) == {blob.digest}
    assert stored.stat().st_mtime > time.time() - 300
