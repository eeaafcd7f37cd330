"""POST /v1/detect requests collected into batches for the detect workers.

A request waits at most `window_ms` for others, and longer only while every detect worker
is busy (then the queue would hold it anyway): the waiting requests leave together as one
`workers.run_detect_batch` call as soon as a worker is free or `max_files` are waiting.
In the worker their model calls share forwards (detect.batching). Runs on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from fakescope.serve import workers
from fakescope.serve.pool import WorkerPool

Item = tuple[str, str, str | None]


@dataclass
class PendingDetect:
    """One request: its future answers with the Result dict; `generation` is the pool's when the batch left."""

    item: Item
    future: asyncio.Future[dict[str, Any]]
    generation: int | None = None


@dataclass
class DetectBatcher:
    pool: WorkerPool
    window_ms: float
    max_files: int
    on_batch: Callable[[int], None] = lambda size: None
    _pending: list[PendingDetect] = field(default_factory=list)
    _in_flight: int = 0
    _window_open: bool = False

    def submit(self, item: Item) -> PendingDetect:
        """Queue one file (blob path, display name, thumbnail folder); await `.future` for its Result dict."""
        pending = PendingDetect(item, asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        if len(self._pending) == 1 and self.window_ms > 0:
            self._window_open = True
            asyncio.get_running_loop().call_later(self.window_ms / 1000.0, self._window_closed)
        self._flush()
        return pending

    def cancel(self, pending: PendingDetect) -> None:
        """Forget a request still waiting (its caller gave up); one already sent runs to its end."""
        if pending in self._pending:
            self._pending.remove(pending)

    def _window_closed(self) -> None:
        self._window_open = False
        self._flush()

    def _flush(self) -> None:
        while self._pending and (
            len(self._pending) >= self.max_files or (not self._window_open and self._in_flight < self.pool.size)
        ):
            batch, self._pending = self._pending[: self.max_files], self._pending[self.max_files :]
            self._send(batch)

    def _send(self, batch: list[PendingDetect]) -> None:
        try:
            future, generation = self.pool.submit(workers.run_detect_batch, [p.item for p in batch])
        except Exception as err:  # noqa: BLE001 - a pool that cannot take work fails these requests, not the loop
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(err)
            return
        self._in_flight += 1
        self.on_batch(len(batch))
        for p in batch:
            p.generation = generation
        loop = asyncio.get_running_loop()
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(self._answered, batch, f))

    def _answered(self, batch: list[PendingDetect], future: Future[list[dict[str, Any]]]) -> None:
        self._in_flight -= 1
        error = future.exception() if not future.cancelled() else asyncio.CancelledError()
        for i, p in enumerate(batch):
            if p.future.done():
                continue
            if error is not None:
                p.future.set_exception(error)
            elif "error" in (answer := future.result()[i]):
                p.future.set_exception(RuntimeError(answer["error"]))
            else:
                p.future.set_result(answer["result"])
        self._flush()
