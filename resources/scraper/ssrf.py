"""SSRF guard: refuse requests whose host resolves to a non-public address.

Two layers:

* :class:`AddressPolicy` (stdlib only, no Scrapy): decides whether a host (name or literal)
  may be fetched. A name is resolved with ``socket.getaddrinfo`` and *every* address it
  resolves to must be allowed (one private A record among public ones is a refusal).
* ``middlewares.SsrfGuardMiddleware``: a Scrapy downloader middleware. ``process_request`` runs for
  start URLs, followed links, robots.txt fetches and redirect targets alike (RedirectMiddleware
  hands the new request back to the engine, which passes it through every downloader
  middleware again), so one check covers all four.

Refused: anything that is not globally routable (``ipaddress`` ``is_global`` is False: private,
loopback, link-local incl. 169.254.169.254, CGNAT 100.64/10 incl. 100.100.100.200, ULA
fc00::/7 incl. fd00:ec2::254, documentation, unspecified, reserved), multicast, and IPv6
addresses that embed a refused IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4, Teredo).

Allow-list entries (job spec ``ssrf_allow``): an IP (``127.0.0.1``), a CIDR (``10.0.0.0/8``),
a host name (``intranet.local``) or a name suffix (``.corp.example``). A listed host name
skips resolution entirely; a listed address/CIDR allows just those addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Named explicitly for the report; all are already non-global.
CLOUD_METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, ...
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
    }
)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # (server, client): the client is the one reached
    for net in _NAT64:
        if ip in net:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched, or None when it is a public unicast address."""
    if ip in CLOUD_METADATA:
        return "cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            problem = address_problem(inner)
            return f"embeds {inner}: {problem}" if problem else None
        if ip.scope_id:
            return "scoped (link-local) address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_private:
        return "private address"
    if not ip.is_global:
        return "non-global address"
    return None


@dataclass
class AddressPolicy:
    allow: Iterable[str] = ()
    resolver: Resolver = system_resolver
    _nets: list[IPNetwork] = field(init=False, default_factory=list)
    _hosts: set[str] = field(init=False, default_factory=set)
    _suffixes: tuple[str, ...] = field(init=False, default=())
    _cache: dict[tuple[str, int], str | None] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        suffixes: list[str] = []
        for entry in self.allow:
            text = entry.strip().lower()
            if not text:
                continue
            try:
                self._nets.append(ipaddress.ip_network(text.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if text.startswith("."):
                suffixes.append(text)
            else:
                self._hosts.add(text)
        self._suffixes = tuple(suffixes)

    def _allowed_ip(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self._nets)

    def _host_listed(self, host: str) -> bool:
        return host in self._hosts or bool(self._suffixes and host.endswith(self._suffixes))

    def cached(self, host: str, port: int) -> tuple[bool, str | None]:
        """(known, problem): a cached verdict, so callers can skip the resolver thread."""
        key = (host.lower().strip("[]"), port)
        return (key in self._cache, self._cache.get(key))

    def check_resolved(self, host: str, address: str) -> str | None:
        """The connect-time check: may ``host``, resolved to ``address``, be connected to?"""
        host = host.lower().strip("[]")
        if self._host_listed(host):
            return None
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
        if self._allowed_ip(ip):
            return None
        problem = address_problem(ip)
        return f"{host} -> {ip} ({problem})" if problem else None

    def check_host(self, host: str, port: int) -> str | None:
        """None when ``host`` may be fetched, else the reason for refusing it. Cached."""
        key = (host.lower().strip("[]"), port)
        if key not in self._cache:
            self._cache[key] = self._check(*key)
        return self._cache[key]

    def _check(self, host: str, port: int) -> str | None:
        if not host:
            return "no host"
        if self._host_listed(host):
            return None
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            literal = None
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            try:
                addresses = [
                    ipaddress.ip_address(a.split("%", 1)[0]) for a in self.resolver(host, port)
                ]
            except (OSError, UnicodeError):
                # Not a refusal: the download then fails with Scrapy's own DNS error kind.
                return None
            if not addresses:
                return None
        for ip in addresses:
            if self._allowed_ip(ip):
                continue
            problem = address_problem(ip)
            if problem:
                return f"{host} -> {ip} ({problem})"
        return None

    def check_url(self, url: str) -> str | None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return None if parts.scheme in ("data",) else f"scheme {parts.scheme!r} not allowed"
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return "invalid port"
        return self.check_host(parts.hostname or "", port)
