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
  and the request is made to the checked address (see :mod:`driftline.core.notify`),
  so a name that resolves differently a moment later is not asked again.

The setting is a comma-separated list of entries:

- ``hooks.example.com`` (that host) or ``*.example.com`` (any host under it): a host
  allowed by name may resolve to any address except a link-local / cloud metadata one;
- ``10.1.0.0/16``, ``127.0.0.1`` or ``fd00::/8``: addresses in that network (the only
  way, with ``*``, to allow a link-local or metadata address);
- ``public``: any host whose every address is public (globally routable);
- ``*``: everything, metadata addresses included.

Unset, every destination is allowed except link-local and cloud metadata addresses
(``169.254.0.0/16``, ``fe80::/10``, ``fd00:ec2::254``): a workspace on one machine
posts to hooks on ``127.0.0.1`` and on its network. A team server is stricter: unset
there means ``public`` (see :data:`SERVER_DEFAULT`), since its editors are not its
admins; the admin lists the internal receivers it may reach.

Residual risks, known: a name is resolved with the system resolver, which has no time
limit of its own, so a slow resolver adds to a delivery's time budget; a process that
delivers for a team (``driftline agent``, a serving process with a database URI) uses
its own settings, so give it the server's ``webhook_allow``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from driftline.errors import InvalidArgumentError

__all__ = ["METADATA_NETWORKS", "SERVER_DEFAULT", "SETTING", "WebhookAllow", "resolve"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: How messages name the setting.
SETTING = "webhook_allow (DRIFTLINE_WEBHOOK_ALLOW)"

#: What a team server allows when ``webhook_allow`` is unset.
SERVER_DEFAULT = "public"

#: Link-local and cloud metadata addresses: refused unless a network entry (or ``*``)
#: names them, whatever else the setting says.
METADATA_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


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
        entry)."""
        address = _plain(address)
        if self.everything or any(address in network for network in self.networks):
            return True
        if any(address in network for network in METADATA_NETWORKS):
            return False
        if self.text is None or named:
            return True
        return self.public and address.is_global

    def refusal(self, host: str, addresses: Iterable[Address]) -> str | None:
        """Why a request to ``host``, resolved to ``addresses``, is refused (None: it is
        not). Every address must be allowed: any of them may be the one connected to."""
        named = self.named(host)
        for address in addresses:
            if self.allows(address, named=named):
                continue
            what = host if host == str(address) else f"{host} (resolved to {address})"
            if any(_plain(address) in network for network in METADATA_NETWORKS):
                return (
                    f"{what} is a link-local or cloud metadata address; only a network "
                    f"entry in {SETTING} allows it"
                )
            return f"{what} is not allowed by {SETTING}={self.shown}; {_how}"
        return None

    @property
    def shown(self) -> str:
        """The setting as messages show it."""
        return repr(self.text) if self.text is not None else "(unset)"

    def check(self, channel: str, field: str | None = None) -> None:
        """Refuse a (parsed) channel whose webhook this setting does not allow, when it
        is accepted; ``field`` names it in the message (``alerts[1]``).

        A host allowed by name or by ``*`` is not resolved here (its addresses are
        checked at each delivery). Other names are resolved: a name that does not
        resolve is refused unless the setting is unset (then it is a delivery that
        fails, as for any receiver that is down).

        Raises:
            InvalidArgumentError: Naming the channel, why, and the setting.
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
                addresses = resolve(host, None)
            except OSError:
                if self.text is None:
                    return
                raise InvalidArgumentError(
                    f"{_where(field)}Webhook {channel!r} refused: {host} does not resolve, so "
                    f"its addresses cannot be checked against {SETTING}={self.shown}; "
                    f"{_how}"
                ) from None
        reason = self.refusal(host, addresses)
        if reason is not None:
            raise InvalidArgumentError(f"{_where(field)}Webhook {channel!r} refused: {reason}")


_how = (
    "list the host (hooks.example.com), its domain (*.example.com) or its network "
    "(10.1.0.0/16) in that setting"
)


def resolve(host: str, port: int | None) -> list[Address]:
    """Every address ``host`` resolves to for a TCP connection, in the resolver's order.

    Raises:
        OSError: It does not resolve (``socket.gaierror``).
    """
    found: list[Address] = []
    for *_, sockaddr in socket.getaddrinfo(_ascii(host), port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in found:
            found.append(address)
    if not found:
        raise socket.gaierror(f"{host} has no address")
    return found


def _where(field: str | None) -> str:
    return f"{field}: " if field else ""


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 one (``::ffff:169.254.169.254`` is
    ``169.254.169.254`` on the wire)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


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
