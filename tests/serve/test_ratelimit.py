"""Token buckets on a fake clock (burst, refill, Retry-After, isolation, bounded memory, threads) and client addresses."""

from __future__ import annotations

import threading

import pytest

from fakescope.serve.ratelimit import RateLimiter, RateLimits, client_address
from fakescope.serve.settings import ServeSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_per_minute_then_a_wait_until_the_next_token():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    assert all(limiter.check("key:a") is None for _ in range(60))
    assert limiter.check("key:a") == 1.0
    clock.now += 0.5
    assert limiter.check("key:a") == 1.0, "half a token: still wait, rounded up"
    clock.now += 0.5
    assert limiter.check("key:a") is None
    assert limiter.check("key:a") == 1.0


def test_retry_after_is_whole_seconds_rounded_up():
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)  # one token every 30 s
    assert limiter.check("o") is None and limiter.check("o") is None
    assert limiter.check("o") == 30.0
    clock.now += 10.2
    assert limiter.check("o") == 20.0
    clock.now += 19.8
    assert limiter.check("o") is None


def test_owners_have_separate_buckets_and_refill_caps_at_the_burst():
    clock = Clock()
    limiter = RateLimiter(3, clock=clock)
    for _ in range(3):
        assert limiter.check("key:a") is None
    assert limiter.check("key:a") is not None
    assert limiter.check("session:b") is None
    clock.now += 3600
    assert [limiter.check("key:a") for _ in range(4)] == [None, None, None, 20.0]


def test_idle_buckets_are_dropped_and_memory_is_bounded():
    clock = Clock()
    limiter = RateLimiter(10, clock=clock, max_owners=50)
    for i in range(20):
        limiter.check(f"key:{i}")
    assert len(limiter) == 20
    clock.now += 61
    limiter.check("key:new")
    assert len(limiter) == 1, "buckets idle long enough to be full again carry no state"
    for i in range(500):
        limiter.check(f"flood:{i}")
    assert len(limiter) <= 50


def test_an_active_owner_is_not_reset_by_dropping_idle_ones():
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    limiter.check("idle")
    clock.now += 30
    assert limiter.check("busy") is None and limiter.check("busy") is None
    clock.now += 31
    assert limiter.check("busy") is None, "one token refilled in 31 s"
    assert limiter.check("busy") is not None, "but not two: the busy bucket was kept"


def test_thread_safe_exactly_the_burst_is_allowed():
    limiter = RateLimiter(100, clock=Clock())
    allowed = []

    def hammer() -> None:
        allowed.append(sum(limiter.check("key:shared") is None for _ in range(50)))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 100


def test_per_minute_must_be_positive():
    with pytest.raises(ValueError):
        RateLimiter(0)


def trusted(*networks: str) -> list:
    from ipaddress import ip_network

    return [ip_network(n, strict=False) for n in networks]


def test_forwarded_for_is_ignored_from_an_untrusted_peer():
    assert client_address("203.0.113.7", ["198.51.100.1"], []) == "addr:203.0.113.7"
    assert client_address("127.0.0.1", ["198.51.100.1"], []) == "addr:127.0.0.1", "loopback is not trusted by default"
    assert client_address("203.0.113.7", ["198.51.100.1"], trusted("10.0.0.0/8")) == "addr:203.0.113.7"


def test_behind_trusted_proxies_the_first_untrusted_hop_is_the_client():
    proxies = trusted("10.0.0.0/8", "127.0.0.1")
    assert client_address("10.0.0.2", ["198.51.100.1"], proxies) == "addr:198.51.100.1"
    # a client's own X-Forwarded-For comes first; the proxies append what they saw: the spoofed part is never reached
    assert client_address("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.0.0.9"], proxies) == "addr:198.51.100.1"
    assert client_address("10.0.0.2", ["6.6.6.6", "198.51.100.1"], proxies) == "addr:198.51.100.1", "repeated headers"
    assert client_address("10.0.0.2", ["not-an-ip"], proxies) == "addr:10.0.0.2", "garbage from the proxy: the proxy"
    assert client_address("10.0.0.2", [], proxies) == "addr:10.0.0.2"
    assert client_address("10.0.0.2", ["10.0.0.3, 10.0.0.4"], proxies) == "addr:10.0.0.3", "all trusted: the farthest"


def test_ipv6_clients_share_a_bucket_per_64_and_mapped_ipv4_is_ipv4():
    assert client_address("2001:db8:1:2:aaaa::1", [], []) == "addr:2001:db8:1:2::/64"
    assert client_address("2001:db8:1:2:bbbb::9", [], []) == "addr:2001:db8:1:2::/64"
    assert client_address("2001:db8:1:3::1", [], []) == "addr:2001:db8:1:3::/64"
    assert client_address("::ffff:203.0.113.7", [], []) == "addr:203.0.113.7"
    assert client_address("testclient", [], []) == "addr:testclient"


def test_a_new_identity_does_not_reset_the_address_budget():
    clock = Clock()
    limits = RateLimits(per_caller=3, per_address=5, beacons=2, clock=clock)
    allowed = 0
    for i in range(20):  # a fresh key (or client id) for every request, all from one address
        if limits.addresses.check("addr:203.0.113.7") is None and limits.callers.check(f"key:{i}") is None:
            allowed += 1
    assert allowed == 5
    assert limits.addresses.check("addr:198.51.100.1") is None, "another address has its own budget"


def test_limits_from_settings_default_the_address_budget_to_a_few_callers(tmp_path):
    limits = RateLimits.from_settings(ServeSettings(data_dir=tmp_path, rate_limit_per_minute=10))
    assert (limits.per_caller, limits.per_address) == (10, 40)
    limits = RateLimits.from_settings(ServeSettings(data_dir=tmp_path, rate_limit_per_address_per_minute=7))
    assert limits.per_address == 7


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path):
    from pydantic import ValidationError

    assert ServeSettings(data_dir=tmp_path, trusted_proxies=[" 10.0.0.0/8", "::1"]).trusted_proxies == ["10.0.0.0/8", "::1"]
    with pytest.raises(ValidationError, match="does not appear to be an IPv4 or IPv6"):
        ServeSettings(data_dir=tmp_path, trusted_proxies=["proxy.example"])
