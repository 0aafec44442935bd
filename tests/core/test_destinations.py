"""Where webhooks may go (the ``webhook_allow`` setting): entries parsed strictly, and
one rule for a channel when it is accepted and for the addresses a delivery resolves."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import pytest

from driftline.core.destinations import WebhookAllow
from driftline.errors import InvalidArgumentError
from driftline.settings import Settings


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


METADATA = ("169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254", "fe80::1")


def test_unset_allows_every_address_but_link_local_and_cloud_metadata() -> None:
    unset = WebhookAllow.parse(None)
    for allowed in ("127.0.0.1", "::1", "10.1.2.3", "192.168.0.9", "93.184.216.34"):
        assert unset.allows(ip(allowed)), allowed
    for refused in METADATA:
        assert not unset.allows(ip(refused)), refused
        assert not unset.allows(ip(refused), named=True), refused


def test_a_list_allows_its_hosts_networks_and_public_addresses_only() -> None:
    allow = WebhookAllow.parse(" hooks.example.com, *.corp.example , 10.1.0.0/16, fd12::/16 ")
    assert allow.names == ("hooks.example.com", "*.corp.example")
    assert allow.named("HOOKS.example.com.")
    assert allow.named("a.b.corp.example")
    assert not allow.named("corp.example")
    assert not allow.named("evilcorp.example")
    assert not allow.named("hooks.example.com.evil.org")
    assert allow.allows(ip("10.1.255.1"))
    assert allow.allows(ip("fd12::7"))
    for refused in ("10.2.0.1", "127.0.0.1", "93.184.216.34", "fd13::1"):
        assert not allow.allows(ip(refused)), refused
    # A host allowed by name may resolve anywhere but to a metadata address.
    assert allow.allows(ip("10.9.9.9"), named=True)
    assert not allow.allows(ip("169.254.169.254"), named=True)
    public = WebhookAllow.parse("public")
    assert public.allows(ip("93.184.216.34"))
    assert public.allows(ip("2606:4700::1111"))
    for refused in ("127.0.0.1", "10.0.0.1", "100.64.0.1", "0.0.0.0", "::1", "fc00::1", *METADATA):
        assert not public.allows(ip(refused)), refused


def test_only_a_network_entry_or_everything_allows_a_metadata_address() -> None:
    assert WebhookAllow.parse("169.254.169.254").allows(ip("::ffff:169.254.169.254"))
    assert WebhookAllow.parse("[fd00:ec2::254]").allows(ip("fd00:ec2::254"))
    everything = WebhookAllow.parse("*")
    assert all(everything.allows(ip(a)) for a in (*METADATA, "10.0.0.1", "127.0.0.1"))


def test_bad_entries_are_refused_naming_them() -> None:
    for bad, match in (
        ("hooks.example.com, http://x", r"Invalid entry 'http://x'"),
        ("10.1.2.3/16", r"host bits set.*10\.1\.0\.0/16"),
        ("*.", "Invalid entry"),
        ("a..b", "Invalid entry"),
        (" , ", "empty"),
    ):
        with pytest.raises(InvalidArgumentError, match=match):
            WebhookAllow.parse(bad)


def test_the_setting_is_checked_where_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_WEBHOOK_ALLOW", "10.0.0.0/8,exa mple.com")
    with pytest.raises(InvalidArgumentError, match=r"DRIFTLINE_WEBHOOK_ALLOW=.*'exa mple\.com'"):
        Settings.load(uri="sqlite://")
    monkeypatch.setenv("DRIFTLINE_WEBHOOK_ALLOW", "*.example.com, 10.0.0.0/8")
    assert Settings.load(uri="sqlite://").webhook_allow == "*.example.com, 10.0.0.0/8"


def test_a_channel_is_checked_when_it_is_accepted() -> None:
    unset, public = WebhookAllow(), WebhookAllow.parse("public,hooks.example.com")
    unset.check("log")
    unset.check("webhook:http://127.0.0.1:9/hook")
    unset.check("webhook:http://localhost:9/hook")
    unset.check("webhook:https://nowhere.invalid/hook")  # down, not refused: delivery says
    for aimed in (
        "webhook:http://169.254.169.254/latest/meta-data/",
        "webhook:http://[fd00:ec2::254]/",
        "webhook:http://[::ffff:a9fe:a9fe]/",
    ):
        with pytest.raises(InvalidArgumentError, match=r"refused: .*metadata.*webhook_allow"):
            unset.check(aimed, "alerts[0]")
    public.check("webhook:https://hooks.example.com/x")  # by name: not resolved here
    public.check("webhook:https://93.184.216.34/x")
    for aimed, match in (
        ("webhook:http://127.0.0.1:9/hook", r"127\.0\.0\.1 is not allowed by webhook_allow"),
        ("webhook:http://localhost:9/hook", r"refused: localhost is not allowed by webhook_allow"),
        (
            "webhook:https://nowhere.invalid/x",
            r"refused: nowhere\.invalid is not allowed by webhook_allow",
        ),
    ):
        with pytest.raises(InvalidArgumentError, match=match):
            public.check(aimed, "notify[2]")
    with pytest.raises(InvalidArgumentError, match=r"^alerts\[1\]: Webhook"):
        public.check("webhook:http://10.0.0.1/", "alerts[1]")


def test_a_refusal_tells_the_writer_neither_addresses_nor_the_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The writer of a channel is not the admin: what a name resolves to, whether it
    # resolves, and the allow-list itself go to the log only.
    internal = WebhookAllow.parse("public,hooks.corp.example,10.7.0.0/16")
    told = []
    with caplog.at_level(logging.WARNING, logger="driftline.core.destinations"):
        for aimed in ("webhook:http://localhost:9/hook", "webhook:https://nowhere.invalid/x"):
            with pytest.raises(InvalidArgumentError) as refused:
                internal.check(aimed)
            told.append(str(refused.value))
    for message in told:
        assert "set by the server's admin" in message, message
        for secret in ("127.0.0.1", "::1", "resolve", "10.7.", "corp.example", "public"):
            assert secret not in message, (secret, message)
    # The two refusals say the same thing: no oracle for which internal names exist.
    first = told[0].replace("http://localhost:9/hook", "URL").replace("localhost", "HOST")
    second = told[1].replace("https://nowhere.invalid/x", "URL").replace("nowhere.invalid", "HOST")
    assert first == second
    assert "127.0.0.1" in caplog.text or "::1" in caplog.text
    assert "does not resolve" in caplog.text
    assert "'public,hooks.corp.example,10.7.0.0/16'" in caplog.text


EMBEDDED = {
    # IPv6 forms that reach an IPv4 address, and the address they reach.
    "::ffff:a9fe:a9fe": "169.254.169.254",  # IPv4-mapped
    "::169.254.169.254": "169.254.169.254",  # IPv4-compatible
    "::a00:7": "10.0.0.7",
    "64:ff9b::a00:7": "10.0.0.7",  # NAT64, well-known prefix
    "64:ff9b::a9fe:a9fe": "169.254.169.254",
    "2002:a9fe:a9fe::1": "169.254.169.254",  # 6to4
    "2002:a00:7::1": "10.0.0.7",
    "2001:0:4136:e378:8000:63bf:f5ff:fff8": "10.0.0.7",  # Teredo (client inverted)
}


def test_ipv6_forms_that_embed_an_ipv4_address_are_judged_as_it() -> None:
    unset, public = WebhookAllow.parse(None), WebhookAllow.parse("public")
    nat64 = WebhookAllow.parse("public,64:ff9b::/96")
    ten = WebhookAllow.parse("10.0.0.0/8")
    for embedding, reached in EMBEDDED.items():
        metadata = reached.startswith("169.254.")
        assert not public.allows(ip(embedding)), embedding
        assert unset.allows(ip(embedding)) is not metadata, embedding
        assert public.allows(ip(embedding), named=True) is not metadata, embedding
        assert ten.allows(ip(embedding)) is not metadata, embedding  # the IPv4's network
    # A network entry naming the IPv6 form allows it as it is.
    assert nat64.allows(ip("64:ff9b::a9fe:a9fe"))
    assert not nat64.allows(ip("2002:a9fe:a9fe::1"))
    # Embedding a public address is as public as it.
    for embedding in ("64:ff9b::5db8:d822", "2002:5db8:d822::1", "::ffff:5db8:d822"):
        assert public.allows(ip(embedding)), embedding
    # ::1 and :: are themselves, not 0.0.0.1 and 0.0.0.0.
    assert WebhookAllow.parse("::1").allows(ip("::1"))
    assert not WebhookAllow.parse("0.0.0.0/8").allows(ip("::1"))
    # Site-local IPv6 is routed inside a site: not public.
    assert not public.allows(ip("fec0::1"))


def test_the_local_use_nat64_prefix_is_refused_unless_a_network_names_it() -> None:
    hidden = ip("64:ff9b:1:a9fe:a9:fe00::")  # where its IPv4 sits is the network's choice
    for setting in (None, "public", "public,hooks.example.com", "10.0.0.0/8"):
        allow = WebhookAllow.parse(setting)
        assert not allow.allows(hidden), setting
        assert not allow.allows(hidden, named=True), setting
    assert WebhookAllow.parse("64:ff9b:1::/48").allows(hidden)
    assert WebhookAllow.parse("*").allows(hidden)
    with pytest.raises(InvalidArgumentError, match="metadata"):
        WebhookAllow.parse(None).check("webhook:http://[64:ff9b:1:a9fe:a9:fe00::]/x")


def test_embedded_metadata_is_refused_when_a_channel_is_accepted() -> None:
    public = WebhookAllow.parse("public")
    for embedding in EMBEDDED:
        with pytest.raises(InvalidArgumentError, match=r"refused: .*not allowed|metadata"):
            public.check(f"webhook:http://[{embedding}]/x")
    for embedding, reached in EMBEDDED.items():
        if reached.startswith("169.254."):
            with pytest.raises(InvalidArgumentError, match="metadata"):
                WebhookAllow().check(f"webhook:http://[{embedding}]/x")


def test_a_resolver_that_hangs_holds_the_check_for_its_time_limit_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket
    import threading
    import time

    from driftline.core import destinations

    released = threading.Event()
    real = socket.getaddrinfo

    def hanging(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "slow.example.test":
            released.wait(30)
            raise socket.gaierror("gave up")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    monkeypatch.setattr(destinations, "CHECK_RESOLVE_TIMEOUT", 0.2)
    try:
        started = time.monotonic()
        with pytest.raises(InvalidArgumentError, match=r"slow\.example\.test is not allowed"):
            WebhookAllow.parse("public").check("webhook:https://slow.example.test/x")
        WebhookAllow().check("webhook:https://slow.example.test/x")  # unset: like a down host
        assert time.monotonic() - started < 5.0
    finally:
        released.set()


def test_a_host_name_the_resolver_cannot_encode_is_refused_not_a_crash() -> None:
    too_long = "a" * 64 + ".example.com"
    with pytest.raises(InvalidArgumentError, match="is not allowed"):
        WebhookAllow.parse("public").check(f"webhook:https://{too_long}/x")
    WebhookAllow().check(f"webhook:https://{too_long}/x")
