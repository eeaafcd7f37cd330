"""Where the service may connect on a caller's behalf: one address policy for webhooks and URL jobs.

A webhook_url or a job's url makes the server open a connection a caller chose. Without a
policy that is server-side request forgery: cloud metadata (169.254.169.254), the loopback
admin ports, the private network behind the server. So a host is resolved the way the
connection itself would resolve it (numeric forms such as 2852039166, 0x7f000001 or 0177.0.0.1
included: getaddrinfo reads them as IPv4, so must we) and every address it gives must be
globally routable; IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4,
Teredo) are judged by that IPv4 address too. Names that only mean something inside a network
(localhost, *.internal, *.local, single labels such as "metadata") are refused before any lookup.

The check runs twice: when the URL is submitted (a clear 422) and again inside the HTTP client's
connect (`PinnedTransport`), which connects to exactly the address it has just checked; so a DNS
answer that changes between the two (rebinding) cannot reach an internal address. The URL, the Host
header and TLS (SNI and certificate checks) keep the host name. Redirects are never followed by the
callers. The operator's `egress_allow` setting lists host names, addresses or networks (CIDR) that
may be reached although they are not public.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
import httpcore
import httpx

from fakescope.errors import FakescopeError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}
# Names that never denote a public host (RFC 6761 / 6762 / 8375, ICANN's .internal); "metadata" and
# other single labels are refused as well (they resolve through the server's search domains).
INTERNAL_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan")
INTERNAL_NAMES = frozenset({"localhost", "localhost.localdomain", "metadata.google.internal"})
MAX_HOST_CHARS = 253

_IPV4_COMPAT = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
# Not globally routable, though `is_global` of older Pythons (before 3.12.4) says they are.
_SPECIAL = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "5f00::/16", "3fff::/20"))


class RefusedAddressError(FakescopeError):
    """The host is not one the server may connect to on a caller's behalf (the API answers 422)."""


def resolve_name(host: str, port: int) -> list[str]:
    """Addresses of a host name as the system resolver gives them (hosts file, DNS); tests replace this."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def numeric_address(host: str) -> IPAddress | None:
    """The address a numeric host denotes, read as getaddrinfo reads it (decimal, hex, octal, short forms); else None."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(infos[0][4][0].split("%", 1)[0]) if infos else None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo client), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _IPV4_COMPAT and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why a connection to `ip` is refused by default ("a loopback address"...), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            why = address_refusal(inner)
            if why is not None:
                return f"an IPv6 form of {inner}, {why}"
            if ip.ipv4_mapped is not None or ip in _IPV4_COMPAT or ip in _NAT64:
                return None
        if ip in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        if ip.is_site_local:
            return "a site-local address"
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED, "a shared (carrier-grade NAT) address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (any(ip in net for net in _SPECIAL if net.version == ip.version), "a special-purpose address"),
        (not ip.is_global, "not a globally routable address"),
    )
    return next((why for refused, why in checks if refused), None)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def internal_name(host: str) -> bool:
    """A name that only means something inside a network (checked before any lookup)."""
    return host in INTERNAL_NAMES or host.endswith(INTERNAL_NAME_SUFFIXES) or "." not in host


def normal_host(host: str) -> str:
    """Lower case, no brackets, no trailing dot: the form names are compared in."""
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class EgressPolicy:
    """Public addresses, plus what the operator allowed: `hostnames` (exact) and `networks` (CIDR)."""

    hostnames: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def from_entries(cls, entries: Iterable[str] = ()) -> EgressPolicy:
        """From the egress_allow setting: each entry an address, a network (10.0.0.0/8, fd00::/8) or a host name."""
        hostnames: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = normal_host(str(raw))
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if "/" in entry or ":" in entry:
                    raise FakescopeError(f"egress_allow: {raw!r} is neither an address, a network nor a host name") from None
                hostnames.add(entry)
        return cls(frozenset(hostnames), tuple(networks))

    def allowed(self, ip: IPAddress) -> bool:
        """Whether the operator listed a network holding `ip` (or the IPv4 address it carries)."""
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
            candidates.append(inner)
        return any(c in net for c in candidates for net in self.networks if c.version == net.version)

    def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Every address `host` resolves to, if each may be connected to; else RefusedAddressError (one line)."""
        name = normal_host(host)
        if not name or len(name) > MAX_HOST_CHARS:
            raise RefusedAddressError("not a valid host name")
        listed = name in self.hostnames
        numeric = numeric_address(name)
        if numeric is not None:
            found: list[IPAddress] = [numeric]
            shown = name if _literal(name) == numeric else f"{name} (= {numeric})"
        else:
            if internal_name(name) and not listed:
                raise RefusedAddressError(f"{name} is an internal host name")
            try:
                found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve_name(name, port)]
            except (OSError, UnicodeError, ValueError):
                raise RefusedAddressError(f"{name} does not resolve") from None
            if not found:
                raise RefusedAddressError(f"{name} does not resolve")
            shown = name
        if listed:
            return found
        for ip in found:
            why = None if self.allowed(ip) else address_refusal(ip)
            if why is not None:
                verb = "is" if numeric is not None else "resolves to"
                raise RefusedAddressError(f"{shown} {verb} {why} (the server's egress_allow setting can permit it)")
        return found

    def check_url(self, url: str, what: str) -> list[IPAddress]:
        """Resolve and check the host of an http(s) URL (blocking: call it in a thread); errors start with `what`."""
        try:
            parts = urlsplit(url)
            port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 0)
            host = parts.hostname or ""
        except ValueError:
            raise RefusedAddressError(f"{what}: not a valid URL") from None
        if parts.scheme.lower() not in DEFAULT_PORTS or not host:
            raise RefusedAddressError(f"{what}: must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise RefusedAddressError(f"{what}: must not contain credentials (user:password@)")
        try:
            return self.addresses(host, port)
        except RefusedAddressError as err:
            raise RefusedAddressError(f"{what}: {err}") from None


class _PinnedBackend(httpcore.NetworkBackend):
    """Checks the host at connect time and connects to exactly the address it checked."""

    def __init__(self, policy: EgressPolicy, inner: httpcore.NetworkBackend | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        last: Exception = httpcore.ConnectError("no address")
        for ip in self.policy.addresses(host, port):
            try:
                return self.inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as err:
                last = err
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        raise RefusedAddressError("unix sockets are not reachable")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _AsyncPinnedBackend(httpcore.AsyncNetworkBackend):
    """`_PinnedBackend` for async clients; the lookup runs in a thread, off the event loop."""

    def __init__(self, policy: EgressPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        last: Exception = httpcore.ConnectError("no address")
        for ip in await anyio.to_thread.run_sync(self.policy.addresses, host, port):
            try:
                return await self.inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as err:
                last = err
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddressError("unix sockets are not reachable")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """An httpx transport whose every connection passes `policy` at connect time; no proxy from the environment."""

    def __init__(self, policy: EgressPolicy, *, inner: httpcore.NetworkBackend | None = None) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend, httpcore does: the pool is rebuilt with ours (tests/hostile/test_ssrf checks it).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_PinnedBackend(policy, inner), retries=0
        )


class AsyncPinnedTransport(httpx.AsyncHTTPTransport):
    """`PinnedTransport` for `httpx.AsyncClient`."""

    def __init__(self, policy: EgressPolicy, *, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_AsyncPinnedBackend(policy, inner), retries=0
        )


def pinned_client(policy: EgressPolicy, timeout: float) -> httpx.Client:
    """A client for one caller-chosen URL: checked at connect time, redirects not followed, no environment proxies."""
    return httpx.Client(transport=PinnedTransport(policy), timeout=timeout, follow_redirects=False, trust_env=False)


def async_pinned_client(policy: EgressPolicy, timeout: float) -> httpx.AsyncClient:
    """`pinned_client` for async code."""
    return httpx.AsyncClient(transport=AsyncPinnedTransport(policy), timeout=timeout, follow_redirects=False, trust_env=False)
