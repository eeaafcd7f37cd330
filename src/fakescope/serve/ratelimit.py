"""Rate limits: token buckets per caller and per client address, and where a request comes from.

A bucket allows `per_minute` requests a minute, in bursts up to the same number. Every
request is counted twice: against its client address (before authentication, so failed
attempts cost too, and a new key or client id does not start a fresh budget) and against
its caller. The address is the TCP peer's; X-Forwarded-For is believed only when the peer
is a proxy the settings trust.

In memory, per process: the service is one process, and a limit that resets on restart
is acceptable for protecting the workers. Memory stays bounded because a bucket idle
long enough to be full again carries no state and is dropped.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import Request

    from fakescope.serve.settings import ServeSettings

Networks = Sequence[IPv4Network | IPv6Network]
# A host holds a whole IPv6 /64, so addresses inside one share a bucket.
IPV6_BUCKET_PREFIX = 64
# Hops of X-Forwarded-For looked at: more than any real proxy chain.
MAX_FORWARDED_HOPS = 16


@dataclass
class _Bucket:
    tokens: float
    last: float


class RateLimiter:
    """Thread-safe: the app's sync dependencies run in a thread pool."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic, max_owners: int = 100_000) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.full_after = 60.0
        self.max_owners = max_owners
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, owner: str) -> float | None:
        """None if the request may go ahead (one token taken), else whole seconds to wait (for Retry-After)."""
        with self._lock:
            now = self._clock()
            self._drop_idle(now)
            bucket = self._buckets.pop(owner, None) or _Bucket(self.capacity, now)
            self._buckets[owner] = bucket
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.last) * self.rate)
            bucket.last = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return float(max(1, math.ceil((1.0 - bucket.tokens) / self.rate)))

    def __len__(self) -> int:
        return len(self._buckets)

    def _drop_idle(self, now: float) -> None:
        """Buckets are kept in last-use order: the idle ones are at the front."""
        while self._buckets:
            owner, bucket = next(iter(self._buckets.items()))
            if now - bucket.last < self.full_after and len(self._buckets) < self.max_owners:
                return
            del self._buckets[owner]


class RateLimits:
    """The service's buckets: requests per caller, requests per address, and page beacons (per caller and per address)."""

    def __init__(
        self,
        per_caller: int,
        per_address: int,
        beacons: int,
        trusted_proxies: Iterable[str] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_caller = per_caller
        self.per_address = per_address
        self.callers = RateLimiter(per_caller, clock=clock)
        self.addresses = RateLimiter(per_address, clock=clock)
        self.beacons = RateLimiter(beacons, clock=clock)
        self.trusted: Networks = [ip_network(p, strict=False) for p in trusted_proxies]

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> RateLimits:
        return cls(
            settings.rate_limit_per_minute, settings.address_rate_limit(), settings.beacon_per_minute, settings.trusted_proxies
        )

    def client_address(self, request: Request) -> str:
        """The bucket name of the request's client address (see `client_address`)."""
        peer = request.client.host if request.client else "unknown"
        return client_address(peer, request.headers.getlist("x-forwarded-for"), self.trusted)


def client_address(peer: str, forwarded_for: list[str], trusted: Networks) -> str:
    """Who a request comes from, as a bucket name: the peer, or, behind trusted proxies, the first hop they vouch for.

    X-Forwarded-For is read from the right (the hop the nearest proxy added) and trusted hops are
    skipped; the first untrusted one is the client. With no trusted proxies the header is ignored,
    so a client cannot pick a fresh address per request.
    """
    hops = [h.strip() for value in forwarded_for for h in value.split(",")][-MAX_FORWARDED_HOPS:]
    current = peer
    while hops and _is_trusted(current, trusted):
        candidate = hops.pop()
        if _parse(candidate) is None:
            break  # the trusted proxy wrote something that is not an address: the proxy is the client
        current = candidate
    return _bucket(current)


def _parse(host: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(host.strip("[]"))
    except ValueError:
        return None


def _is_trusted(host: str, trusted: Networks) -> bool:
    address = _parse(host)
    if address is None or not trusted:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in trusted)


def _bucket(host: str) -> str:
    address = _parse(host)
    if address is None:
        return f"addr:{host[:100]}"
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return f"addr:{address.ipv4_mapped}"
        return f"addr:{ip_network(f'{address}/{IPV6_BUCKET_PREFIX}', strict=False)}"
    return f"addr:{address}"
