"""Token buckets on a fake clock: burst, refill, Retry-After, isolation, bounded memory, threads."""

from __future__ import annotations

import threading

import pytest

from fakescope.serve.ratelimit import RateLimiter


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
