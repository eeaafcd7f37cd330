"""Per-owner token buckets: `per_minute` requests a minute, bursts up to the same number.

In memory, per process: the service is one process, and a limit that resets on restart
is acceptable for protecting the workers. Memory stays bounded because a bucket idle
long enough to be full again carries no state and is dropped.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


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
