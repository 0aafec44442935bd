"""Where webhooks may go (the ``webhook_allow`` setting): entries parsed strictly, and
one rule for a channel when it is accepted and for the addresses a delivery resolves."""

from __future__ import annotations

import ipaddress

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
        ("webhook:http://localhost:9/hook", r"localhost \(resolved to .*\) is not allowed"),
        ("webhook:https://nowhere.invalid/x", "nowhere.invalid does not resolve"),
    ):
        with pytest.raises(InvalidArgumentError, match=match):
            public.check(aimed, "notify[2]")
    with pytest.raises(InvalidArgumentError, match=r"^alerts\[1\]: Webhook"):
        public.check("webhook:http://10.0.0.1/", "alerts[1]")
