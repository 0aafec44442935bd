"""The kernel's notifications: channels parsed strictly, events delivered to a real
webhook receiver on loopback (retried, with an idempotency key) and to the log."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftline.core.destinations import WebhookAllow
from driftline.core.notify import DeliveryPolicy, Event, deliver, notify, parse_channel
from driftline.errors import InvalidArgumentError

try:  # `python -m pytest` from the repository root, as CI runs it
    from tests.conftest import free_port, webhook_receiver
except ImportError:  # pragma: no cover - only tests/ on sys.path
    from conftest import free_port, webhook_receiver  # type: ignore[no-redef]

FAST = DeliveryPolicy(attempts=3, backoff=0.01, timeout=5.0)
EVENT = Event(
    kind="deployment.rolled_back",
    key="churn:7",
    summary="driftline deployment churn rolled back",
    body={"deployment": "churn", "from_version": 4, "to_version": 3},
    source="serving",
)


def test_channels_are_log_or_an_http_webhook() -> None:
    assert parse_channel(" log ") == "log"
    assert (
        parse_channel("webhook:https://hooks.example.com/x")
        == "webhook:https://hooks.example.com/x"
    )
    bad_ones = (
        "email:x@example.com",
        "webhook:ftp://h/x",
        "webhook:http://",
        "webhook:http://h:99999/",
        "webhook:http://[::1",  # urlsplit raises ValueError: still the channel's error
    )
    for bad in (*bad_ones, "", None):
        with pytest.raises(InvalidArgumentError, match="alert channel"):
            parse_channel(bad)  # type: ignore[arg-type]


def test_a_bad_delivery_policy_is_refused() -> None:
    # Every message names every field: each case matches the value it got wrong.
    for bad, match in (
        ({"attempts": 0}, r"attempts=0,"),
        ({"attempts": True}, r"attempts must be a whole number, got True"),
        ({"backoff": -1.0}, r"backoff=-1\.0,"),
        ({"timeout": 0.0}, r"timeout=0\.0,"),
        ({"deadline": 0.0}, r"deadline=0\.0$"),
    ):
        with pytest.raises(InvalidArgumentError, match=match):
            DeliveryPolicy(**bad)  # type: ignore[arg-type]


def test_a_webhook_gets_the_event_with_its_idempotency_key_after_retries() -> None:
    with webhook_receiver(fail=2) as hook:
        sent = deliver(f"webhook:{hook.url}", EVENT, FAST)
    assert sent.to_dict() == {
        "channel": f"webhook:{hook.url}", "delivered": True, "attempts": 3, "error": None,
    }  # fmt: skip
    assert hook.keys == ["churn:7"]
    assert hook.bodies == [
        {"event": "deployment.rolled_back", "id": "churn:7", "deployment": "churn",
         "from_version": 4, "to_version": 3}
    ]  # fmt: skip


def test_a_webhook_that_is_down_is_a_failed_delivery_not_an_exception() -> None:
    with webhook_receiver(fail=10_000) as down:
        sent = deliver(f"webhook:{down.url}", EVENT, FAST)
        assert down.attempts == 3
    assert (sent.delivered, sent.attempts) == (False, 3)
    assert sent.error is not None
    assert "503" in sent.error
    nobody = f"webhook:http://127.0.0.1:{free_port()}/hook"
    refused = deliver(nobody, EVENT, FAST)
    assert not refused.delivered
    assert refused.error is not None
    assert "ConnectError" in refused.error


def test_a_refusing_receiver_is_not_retried() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    posts: list[int] = []

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(1)
            self.send_response(400)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sent = deliver(f"webhook:http://127.0.0.1:{server.server_address[1]}/", EVENT, FAST)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert (sent.delivered, sent.attempts, len(posts)) == (False, 1, 1)
    assert sent.error is not None
    assert "HTTP 400" in sent.error


def test_the_log_channel_writes_one_line_to_stderr_and_the_stages_logger(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="driftline.serving"):
        (sent,) = notify(["log", "log"], EVENT, FAST)  # one delivery per distinct channel
    assert sent.delivered
    assert sent.channel == "log"
    assert capsys.readouterr().err == "driftline deployment churn rolled back\n"
    (record,) = [r for r in caplog.records if r.name == "driftline.serving"]
    assert "deployment.rolled_back churn:7" in record.getMessage()


def test_undelivered_describes_the_channels_that_missed_an_event() -> None:
    from driftline.core.notify import Sent, undelivered

    ok = Sent(channel="log", delivered=True, attempts=1)
    down = Sent(channel="webhook:http://127.0.0.1:9/x", delivered=False, attempts=4, error="boom")
    assert undelivered(EVENT, [ok]) is None
    assert undelivered(EVENT, [ok, down]) == {
        "event": "deployment.rolled_back",
        "id": "churn:7",
        "failed": [down.to_dict()],
        "message": "deployment.rolled_back not delivered to webhook:http://127.0.0.1:9/x: boom",
    }


def test_announce_records_what_was_missed_and_never_raises_for_the_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from driftline.core.notify import announce
    from driftline.errors import BackendError

    event = Event(source="serving", kind="deployment.rolled_back", key="churn:3",
                  summary="churn rolled back", body={})  # fmt: skip
    down = "webhook:http://127.0.0.1:9/hook"  # nothing listens on the discard port
    quick = DeliveryPolicy(attempts=1, backoff=0.0, timeout=2.0)
    recorded: list[dict[str, Any]] = []
    announce([down], event, quick, recorded.append)
    assert [f["channel"] for f in recorded[0]["failed"]] == [down]
    assert recorded[0]["id"] == "churn:3"

    def broken(_missed: dict[str, Any]) -> None:
        raise BackendError("the history cannot be written")

    with caplog.at_level(logging.WARNING, logger="driftline.serving"):
        announce([down], event, quick, broken)
    assert "could not record that deployment.rolled_back not delivered" in caplog.text
    announce(["log"], event, quick, broken)  # delivered: nothing to record


def resolving(monkeypatch: pytest.MonkeyPatch, name: str, address: str) -> None:
    """Make ``name`` resolve to ``address`` for the delivery's check only (what a DNS
    record the channel's writer controls does); the HTTP client's own lookups are the
    system's, where a ``.test`` name does not resolve."""
    resolving_all(monkeypatch, name, [address])


def resolving_all(monkeypatch: pytest.MonkeyPatch, name: str, addresses: list[str]) -> None:
    """Like :func:`resolving`, to several addresses, in this order."""
    import ipaddress

    from driftline.core import notify as module

    real = module.resolve

    def resolve(host: str, port: int | None, **kwargs: Any) -> Any:
        if host == name:
            return [ipaddress.ip_address(a) for a in addresses]
        return real(host, port, **kwargs)

    monkeypatch.setattr(module, "resolve", resolve)


def test_a_delivery_refuses_a_host_resolving_to_an_address_the_setting_does_not_allow() -> None:
    public = DeliveryPolicy(
        attempts=2, backoff=0.01, timeout=5.0, allow=WebhookAllow.parse("public")
    )
    with webhook_receiver() as hook:
        by_name = hook.url.replace("127.0.0.1", "localhost")
        sent = deliver(f"webhook:{by_name}", EVENT, public)
        by_address = deliver(f"webhook:{hook.url}", EVENT, public)
    assert not sent.delivered
    assert not by_address.delivered
    assert sent.error is not None
    assert sent.error.startswith("refused: localhost is not allowed by webhook_allow")
    assert "127.0.0.1" not in sent.error  # what the name resolves to is the log's
    assert by_address.error is not None
    assert "127.0.0.1 is not allowed" in by_address.error
    assert (sent.attempts, by_address.attempts) == (0, 0)  # nothing was posted
    assert hook.attempts == 0  # nothing reached the receiver


def test_a_name_that_now_resolves_to_a_metadata_address_is_refused_at_delivery(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    named = DeliveryPolicy(allow=WebhookAllow.parse("hooks.example.test"))
    channel = parse_channel("webhook:http://hooks.example.test/x")
    named.allow.check(channel)  # accepted by name
    resolving(monkeypatch, "hooks.example.test", "169.254.169.254")
    with caplog.at_level(logging.WARNING, logger="driftline.core.destinations"):
        sent = deliver(channel, EVENT, named)
    assert (sent.delivered, sent.attempts) == (False, 0)
    assert sent.error is not None
    assert "hooks.example.test is not allowed by webhook_allow" in sent.error
    assert "169.254" not in sent.error
    assert "metadata" not in sent.error
    assert "its address 169.254.169.254 is not allowed" in caplog.text


def test_a_delivery_connects_to_the_address_it_checked_with_the_names_host_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The name resolves only for the check: the POST reaching the receiver shows it went
    # to the checked address, not to a second lookup of the name.
    resolving(monkeypatch, "hooks.example.test", "127.0.0.1")
    with webhook_receiver() as hook:
        url = hook.url.replace("127.0.0.1", "hooks.example.test")
        sent = deliver(f"webhook:{url}", EVENT, FAST)
    assert sent.delivered, sent.error
    port = hook.url.split(":")[2].split("/")[0]
    assert hook.hosts == [f"hooks.example.test:{port}"]


def test_the_deadline_bounds_a_delivery_to_a_receiver_that_never_answers() -> None:
    import socket
    import time

    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(8)  # the kernel completes the handshakes; nothing ever answers
        url = f"http://127.0.0.1:{black_hole.getsockname()[1]}/hook"
        policy = DeliveryPolicy(attempts=4, backoff=0.2, timeout=10.0, deadline=1.0)
        started = time.monotonic()
        sent = deliver(f"webhook:{url}", EVENT, policy)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 1.5, elapsed  # not 4 x 10 s + backoff
    assert not sent.delivered
    assert sent.attempts == 1  # the first try spent the budget: no other started
    assert sent.error is not None
    assert "ReadTimeout" in sent.error
    assert "gave up after 1 of 4 attempts" in sent.error
    assert "the delivery's budget of 1 s is spent" in sent.error


def test_a_wait_that_would_overrun_the_budget_is_not_started() -> None:
    import time

    nobody = f"webhook:http://127.0.0.1:{free_port()}/hook"
    policy = DeliveryPolicy(attempts=3, backoff=5.0, timeout=2.0, deadline=1.0)
    started = time.monotonic()
    sent = deliver(nobody, EVENT, policy)
    assert time.monotonic() - started < 1.0  # no 5 s wait
    assert (sent.delivered, sent.attempts) == (False, 1)
    assert sent.error is not None
    assert sent.error.startswith("ConnectError")
    assert (
        "gave up after 1 of 3 attempts: the next attempt, after a wait of 5 s, would start "
        "after the delivery's budget of 1 s"
    ) in sent.error


def test_a_name_that_does_not_resolve_is_not_posted_and_told_only_when_allowed() -> None:
    channel = "webhook:https://nowhere.invalid/x"
    down = deliver(channel, EVENT, FAST)  # unset: a receiver that is down
    assert (down.delivered, down.attempts) == (False, 0)
    assert down.error is not None
    assert down.error.startswith("cannot resolve nowhere.invalid")
    strict = DeliveryPolicy(allow=WebhookAllow.parse("public"))
    refused = deliver(channel, EVENT, strict)  # whether it resolves is not the writer's
    assert (refused.delivered, refused.attempts) == (False, 0)
    assert refused.error is not None
    assert refused.error.startswith("refused: nowhere.invalid is not allowed by webhook_allow")


def test_when_an_address_refuses_the_connection_the_next_checked_one_is_tried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A dual-stack host whose first address is unreachable: nothing listens on
    # 127.0.0.2 (the receiver is bound to 127.0.0.1 only), so connecting there fails.
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    resolving_all(monkeypatch, "hooks.example.test", ["127.0.0.2", "127.0.0.1"])
    with webhook_receiver(fail=1) as hook:
        url = hook.url.replace("127.0.0.1", "hooks.example.test")
        sent = deliver(f"webhook:{url}", EVENT, FAST)
        assert hook.attempts == 2  # a 503, then the retry went straight to the one that answered
    assert (sent.delivered, sent.attempts) == (True, 2), sent.error
    port = hook.url.split(":")[2].split("/")[0]
    assert hook.hosts == [f"hooks.example.test:{port}"]
    # Every address refusing is one failed attempt, not one per address.
    resolving_all(monkeypatch, "down.example.test", ["127.0.0.2", "127.0.0.3"])
    quick = DeliveryPolicy(attempts=1, backoff=0.0, timeout=2.0)
    down = deliver(f"webhook:http://down.example.test:{free_port()}/x", EVENT, quick)
    assert (down.delivered, down.attempts) == (False, 1)
    assert down.error is not None
    assert "ConnectError" in down.error


@contextlib.contextmanager
def proxy_server() -> Iterator[list[tuple[str, str]]]:
    """An HTTP proxy on loopback that answers every request itself (204) and keeps
    each one's request target and Host header."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, str]] = []

    class Proxy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append((self.path, self.headers.get("Host", "")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen.append(("proxy", f"http://127.0.0.1:{server.server_address[1]}"))
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_through_a_proxy_the_url_is_sent_unpinned_and_no_proxy_is_matched_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(variable.lower(), raising=False)
    resolving(monkeypatch, "hooks.example.test", "127.0.0.1")
    with proxy_server() as seen, webhook_receiver() as hook:
        (_, proxy) = seen.pop(0)
        monkeypatch.setenv("http_proxy", proxy)
        monkeypatch.setenv("no_proxy", "127.0.0.1")  # the address: not the URL's host
        port = hook.url.split(":")[2].split("/")[0]
        url = f"http://hooks.example.test:{port}/hook"
        proxied = deliver(f"webhook:{url}", EVENT, FAST)
        assert proxied.delivered, proxied.error
        # The proxy is the egress: it got the URL with its name, not a pinned address.
        assert seen == [(url, f"hooks.example.test:{port}")]
        assert hook.attempts == 0
        monkeypatch.setenv("no_proxy", "example.test")
        direct = deliver(f"webhook:{url}", EVENT, FAST)
        assert direct.delivered, direct.error
        assert len(seen) == 1  # not through the proxy: pinned to the checked address
        assert hook.hosts == [f"hooks.example.test:{port}"]


def test_a_shared_workspace_delivers_to_public_hosts_unless_the_setting_says_otherwise(
    tmp_path: Path,
) -> None:
    from driftline.settings import Settings

    def allow(uri: str, setting: str | None = None) -> WebhookAllow:
        settings = Settings.load(home=tmp_path, uri=uri, webhook_allow=setting)
        return DeliveryPolicy.from_settings(settings).allow

    assert allow(f"sqlite:///{tmp_path / 'driftline.db'}") == WebhookAllow()
    assert allow("sqlite://") == WebhookAllow()
    for shared in ("postgresql+psycopg://team@db.example/driftline", "https://driftline.example"):
        assert allow(shared) == WebhookAllow.parse("public"), shared
        assert allow(shared, "127.0.0.1") == WebhookAllow.parse("127.0.0.1"), shared
