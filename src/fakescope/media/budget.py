"""A process-wide ledger of the decoded pixels analyses hold, so concurrent files share one bound.

Decoded sound counts too, by its bytes (`hold_bytes`): a pixel is BYTES_PER_PIXEL bytes (RGB), so
one budget bounds a process's pictures and recordings together.

The service analyses several files at once on threads of one process; each bounding its own
frames is not enough (two 8K uploads at once were twice the memory). An analysis asks
`DECODE_BUDGET.hold(pixels)` for what it will decode before decoding it and gives it back when
its pictures are no longer needed; a request that does not fit waits, in arrival order, until
enough is given back. A request larger than the whole budget is granted the whole budget (it runs
alone), so nothing ever waits forever; callers keep their requests within the budget by scaling
their frames (`media.video.decode_side`).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from fakescope.media.limits import DEFAULT_LIMITS

BYTES_PER_PIXEL = 3


class DecodeBudget:
    """At most `capacity` decoded pixels held at once by all `hold`ers; `peak` is the most ever held."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"the decoded pixel budget must be at least 1, got {capacity}")
        self.capacity = capacity
        self.held = 0
        self.peak = 0
        self._cond = threading.Condition()
        self._queue: deque[int] = deque()
        self._tickets = itertools.count()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[int]:
        """Hold `pixels` (capped at the capacity) for the block; waits first-come first-served.

        Yields what was granted. Not reentrant: a thread holding part of the budget that asks
        for more could wait for itself.
        """
        want = min(max(0, int(pixels)), self.capacity)
        ticket = next(self._tickets)
        with self._cond:
            self._queue.append(ticket)
            try:
                while self._queue[0] != ticket or self.held + want > self.capacity:
                    self._cond.wait()
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()
            self.held += want
            self.peak = max(self.peak, self.held)
        try:
            yield want
        finally:
            with self._cond:
                self.held -= want
                self._cond.notify_all()

    def hold_bytes(self, nbytes: int) -> AbstractContextManager[int]:
        """`hold` for decoded data that is not pictures (a recording's samples), counted by its size."""
        return self.hold(-(-max(0, int(nbytes)) // BYTES_PER_PIXEL))


DECODE_BUDGET = DecodeBudget(DEFAULT_LIMITS.decoded_pixel_budget)
