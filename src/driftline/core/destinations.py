"""Where webhooks may go: the ``webhook_allow`` setting, one rule checked twice.

A webhook is a request this process makes on behalf of whoever wrote the channel (an
editor on a team server, a deployment spec, a retraining policy). Left open, it can
be aimed at the cloud metadata service, the admin's loopback services or a private
network, and the failure text it stores ("HTTP 404 from ...") tells the writer what
answered there. So a destination is checked:

- when a channel is accepted (a monitor created, a deployment spec or a retraining
  policy applied), by the process that stores the record: :meth:`WebhookAllow.check`
  raises an :class:`~driftline.errors.InvalidArgumentError` naming the setting;
- at every delivery, against what the host resolves to *then* (DNS can change after
  the channel was accepted): :meth:`WebhookAllow.refusal` on every resolved address,
  and the request is made to a checked address (see :mod:`driftline.core.notify`),
  so a name that resolves differently a moment later is not asked again.

What a refusal tells the channel's writer is only that the host they wrote is not
allowed: never what a name resolves to, whether it resolves at all, nor the setting's
value (the writer is not the admin, and the text is also stored as a delivery error
they read). The details go to this process's log (``driftline.core.destinations``).

The setting is a comma-separated list of entries:

- ``hooks.example.com`` (that host) or ``*.example.com`` (any host under it): a host
  allowed by name may resolve to any address except a link-local / cloud metadata one;
- ``10.1.0.0/16``, ``127.0.0.1`` or ``fd00::/8``: addresses in that network (the only
  way, with ``*``, to allow a link-local or metadata address);
- ``public``: any host whose every address is public (globally routable);
- ``*``: everything, metadata addresses included.

An IPv6 address that carries an IPv4 one to the wire is judged as that IPv4 address:
IPv4-mapped (``::ffff:0:0/96``), IPv4-compatible (``::/96``), NAT64's well-known prefix
(``64:ff9b::/96``), 6to4 (``2002::/16``) and Teredo (``2001::/32``, its client). The
local-use NAT64 prefix ``64:ff9b:1::/48`` hides where its IPv4 address sits, so it is
refused like a metadata address unless a network entry names it.

Unset, every destination is allowed except link-local and cloud metadata addresses
(``169.254.0.0/16``, ``fe80::/10``, ``fd00:ec2::254``): a workspace on one machine
posts to hooks on ``127.0.0.1`` and on its network. A team server is stricter: unset
there means ``public`` (see :data:`SERVER_DEFAULT`), since its editors are not its
admins; the admin lists the internal receivers it may reach. So does every process
whose metadata database is shared (see
:meth:`driftline.core.notify.DeliveryPolicy.from_settings`).

Names are resolved with the system resolver in a worker thread, so that a slow
resolver cannot hold the caller: for :data:`CHECK_RESOLVE_TIMEOUT` seconds when a
channel is accepted, for what is left of the delivery's budget at delivery; a name
that takes longer is one that does not resolve.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from driftline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from driftline.core.yamlfile import Located

__all__ = [
    "CHECK_RESOLVE_TIMEOUT",
    "METADATA_NETWORKS",
    "OPAQUE_NETWORKS",
    "SERVER_DEFAULT",
    "SETTING",
    "WebhookAllow",
    "resolve",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: How messages name the setting.
SETTING = "webhook_allow (DRIFTLINE_WEBHOOK_ALLOW)"

#: How a refusal names the setting to the channel's writer, who is not its admin.
ADMIN_SETTING = "webhook_allow (DRIFTLINE_WEBHOOK_ALLOW, set by the server's admin)"

#: Seconds a name may take to resolve when a channel is accepted (a REST handler waits).
CHECK_RESOLVE_TIMEOUT = 5.0

#: What a team server allows when ``webhook_allow`` is unset.
SERVER_DEFAULT = "public"

#: Link-local and cloud metadata addresses: refused unless a network entry (or ``*``)
#: names them, whatever else the setting says.
METADATA_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)

#: Translation prefixes whose embedded IPv4 address cannot be read from the address
#: (the local-use NAT64 prefix may place it at any of RFC 6052's offsets): refused
#: unless a network entry (or ``*``) names them.
OPAQUE_NETWORKS: tuple[Network, ...] = (ipaddress.ip_network("64:ff9b:1::/48"),)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookAllow:
    """A parsed ``webhook_allow`` setting (see the module docstring); the default
    instance is the unset setting."""

    text: str | None = None
    everything: bool = False
    public: bool = False
    names: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> WebhookAllow:
        """Read the setting's text (None: unset).

        Raises:
            InvalidArgumentError: An entry that is no host pattern, network, ``public``
                or ``*`` (the message names it).
        """
        if text is None:
            return cls()
        entries = [e.strip() for e in str(text).split(",")]
        if not any(entries):
            raise InvalidArgumentError(
                f"{SETTING} is empty: leave it unset for the default, or list hosts "
                "(hooks.example.com, *.example.com), networks (10.1.0.0/16), public or *"
            )
        names: list[str] = []
        networks: list[Network] = []
        everything = public = False
        for entry in entries:
            if entry == "*":
                everything = True
            elif entry.lower() == "public":
                public = True
            elif (network := _network(entry)) is not None:
                networks.append(network)
            elif _is_name_pattern(entry):
                names.append(entry.lower().rstrip("."))
            else:
                raise InvalidArgumentError(
                    f"Invalid entry {entry!r} in {SETTING}: expected a host "
                    "(hooks.example.com), a host pattern (*.example.com), an IP network "
                    "(10.1.0.0/16, 127.0.0.1), public or *"
                )
        return cls(
            text=",".join(e for e in entries if e),
            everything=everything,
            public=public,
            names=tuple(dict.fromkeys(names)),
            networks=tuple(dict.fromkeys(networks)),
        )

    def named(self, host: str) -> bool:
        """Whether ``host`` matches one of the host entries."""
        host = _ascii(host).lower().rstrip(".")
        return any(
            host.endswith(pattern[1:]) if pattern.startswith("*.") else host == pattern
            for pattern in self.names
        )

    def allows(self, address: Address, *, named: bool = False) -> bool:
        """Whether a request may go to ``address`` (``named``: its host matched a host
        entry). An address embedding an IPv4 one is judged as that one, unless a network
        entry names it as it is."""
        if self.everything or self._listed(address):
            return True
        plain = _plain(address)
        if plain != address and self._listed(plain):
            return True
        if _reserved(address):
            return False
        if self.text is None or named:
            return True
        return self.public and _public(plain)

    def refusal(self, host: str, addresses: Iterable[Address]) -> str | None:
        """Why a request to ``host``, resolved to ``addresses``, is refused (None: it is
        not), as the channel's writer may read it: the host they wrote, never what it
        resolved to (that goes to the log). Every address must be allowed: any of them
        may be the one connected to."""
        named = self.named(host)
        for address in addresses:
            if self.allows(address, named=named):
                continue
            _log.warning(
                "webhook to %s refused: its address %s is not allowed by %s=%s",
                host, address, SETTING, self.shown,
            )  # fmt: skip
            if _address(host) is not None and _reserved(address):
                # The writer wrote this address: saying what it is tells them nothing new.
                return (
                    f"{host} is (or embeds) a link-local or cloud metadata address; only a "
                    f"network entry in {ADMIN_SETTING} allows it"
                )
            return _not_allowed(host)
        return None

    def unresolved(self, host: str, error: OSError) -> str | None:
        """Why a request to ``host``, which did not resolve (``error``), is refused; None
        when the failure may be told as it is: the setting is unset, or allows ``host``
        by name or ``*``. Otherwise the writer of a channel would learn whether an
        internal name resolves (theirs may be an alias of it), so it is a refusal like
        any other, and ``error`` goes to the log."""
        if self.text is None or self.everything or self.named(host):
            return None
        _log.warning(
            "webhook to %s refused: it does not resolve (%s), so its addresses cannot be "
            "checked against %s=%s", host, error, SETTING, self.shown,
        )  # fmt: skip
        return _not_allowed(host)

    @property
    def shown(self) -> str:
        """The setting as the log shows it (never a caller: see the module docstring)."""
        return repr(self.text) if self.text is not None else "(unset)"

    def check_new(
        self,
        channels: Sequence[str],
        known: Collection[str] = (),
        field: str = "alerts",
        at: Located | None = None,
    ) -> None:
        """:meth:`check` each of ``channels`` the stored record did not already have
        (``known``), naming it ``field[i]`` (and its line, given the spec file's
        :class:`~driftline.core.yamlfile.Located` ``at``): a record stored before the
        setting changed still runs, and re-applying it does not fail because a known
        host briefly does not resolve. Deployments, monitors and retraining policies all
        accept channels this way."""
        for i, channel in enumerate(channels):
            if channel in known:
                continue
            where = f"{field}[{i}]"
            if at is None:
                self.check(channel, where)
                continue
            try:
                self.check(channel)
            except InvalidArgumentError as exc:
                raise at.error(where, f"{where}: {exc}") from None

    def check(self, channel: str, field: str | None = None) -> None:
        """Refuse a (parsed) channel whose webhook this setting does not allow, when it
        is accepted; ``field`` names it in the message (``alerts[1]``).

        A host allowed by name or by ``*`` is not resolved here (its addresses are
        checked at each delivery). Other names are resolved, for
        :data:`CHECK_RESOLVE_TIMEOUT` seconds at most: a name that does not resolve in
        time is refused unless the setting is unset (then it is a delivery that fails,
        as for any receiver that is down).

        Raises:
            InvalidArgumentError: Naming the channel and the setting (see
                :meth:`refusal` for what it does not say).
        """
        if not channel.startswith("webhook:"):
            return
        host = urlsplit(channel.removeprefix("webhook:")).hostname or ""
        addresses: Sequence[Address]
        literal = _address(host)
        if literal is not None:
            addresses = [literal]
        elif self.everything or self.named(host):
            return
        else:
            try:
                addresses = resolve(host, None, timeout=CHECK_RESOLVE_TIMEOUT)
            except OSError as exc:
                reason = self.unresolved(host, exc)
                if reason is None:
                    return
                raise InvalidArgumentError(
                    f"{_where(field)}Webhook {channel!r} refused: {reason}"
                ) from None
        reason = self.refusal(host, addresses)
        if reason is not None:
            raise InvalidArgumentError(f"{_where(field)}Webhook {channel!r} refused: {reason}")

    def _listed(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


def _not_allowed(host: str) -> str:
    return (
        f"{host} is not allowed by {ADMIN_SETTING}; the admin may list the host "
        "(hooks.example.com), its domain (*.example.com) or its network (10.1.0.0/16) there"
    )


def resolve(host: str, port: int | None, *, timeout: float | None = None) -> list[Address]:
    """Every address ``host`` resolves to for a TCP connection, in the resolver's order;
    with ``timeout``, the system resolver (which has no time limit of its own) runs in a
    worker thread that is left behind after ``timeout`` seconds.

    Raises:
        OSError: It does not resolve (``socket.gaierror``), or not in time
            (``TimeoutError``).
    """
    if timeout is None:
        return _lookup(host, port)
    outcome: list[list[Address] | OSError] = []
    done = threading.Event()

    def look_up() -> None:
        try:
            outcome.append(_lookup(host, port))
        except OSError as exc:
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=look_up, name=f"resolve {host}", daemon=True).start()
    if not done.wait(max(timeout, 0.0)):
        raise TimeoutError(f"{host} did not resolve within {timeout:g} s")
    found = outcome[0]
    if isinstance(found, OSError):
        raise found
    return found


def _lookup(host: str, port: int | None) -> list[Address]:
    try:
        infos = socket.getaddrinfo(_ascii(host), port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:  # a label too long for IDNA: no such name either
        raise socket.gaierror(f"{host} is not a valid host name: {exc}") from None
    found: list[Address] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in found:
            found.append(address)
    if not found:
        raise socket.gaierror(f"{host} has no address")
    return found


def _where(field: str | None) -> str:
    return f"{field}: " if field else ""


def _plain(address: Address) -> Address:
    """The IPv4 address an IPv6 one delivers to, or ``address``: IPv4-mapped
    (``::ffff:169.254.169.254`` is ``169.254.169.254`` on the wire), IPv4-compatible
    (``::a9fe:a9fe``, not ``::`` or ``::1``), NAT64 (``64:ff9b::a9fe:a9fe``), 6to4 (the
    gateway's ``2002:a9fe:a9fe::``) and Teredo (the client's, last 32 bits inverted)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or 1 < int(address) <= 0xFFFFFFFF:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _reserved(address: Address) -> bool:
    """Refused unless a network entry names it: a link-local or metadata address (as
    it is or embedded) or an address of an opaque translation prefix."""
    plain = _plain(address)
    return any(plain in network for network in METADATA_NETWORKS) or any(
        address in network for network in OPAQUE_NETWORKS
    )


def _public(address: Address) -> bool:
    """Globally routable: not private, shared, reserved, nor IPv6 site-local (which
    Python counts as global, yet is routed inside a site)."""
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return False
    return address.is_global


def _address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None


def _network(entry: str) -> Network | None:
    text = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            raise InvalidArgumentError(
                f"Invalid entry {entry!r} in {SETTING}: {exc} (did you mean "
                f"{ipaddress.ip_network(text, strict=False)}?)"
            ) from None
        return None


def _is_name_pattern(entry: str) -> bool:
    name = entry.removeprefix("*.").rstrip(".")
    labels = _ascii(name).split(".")
    return bool(name) and all(
        label and len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)
        for label in labels
    )


def _ascii(host: str) -> str:
    """An internationalized host name as the resolver and the URL spell it."""
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host
