"""A process pool whose workers load the models once, with known readiness, that can be rebuilt.

ProcessPoolExecutor cannot stop one running call: after a crash it is broken for good,
and a call that hangs holds its process forever. So a hung or cancelled analysis is
stopped by killing the pool's processes and building a new pool, and a crash is
answered the same way. Each build sends one warm-up call per process, which tells when
the models are loaded (readiness) and how long that took (metrics).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from fakescope.orphans import exit_with_parent
from fakescope.serve import workers

if TYPE_CHECKING:
    from fakescope.serve.settings import ServeSettings

log = logging.getLogger(__name__)


class WorkerPool:
    """`size` spawned processes running `init_process` (`workers.init_worker`); `generation` counts builds."""

    def __init__(
        self,
        name: str,
        size: int,
        settings: ServeSettings,
        *,
        threads: int,
        on_warm: Callable[[str, dict[str, Any]], None] = lambda name, info: None,
    ) -> None:
        self.name = name
        self.size = size
        self.settings = settings
        self.threads = threads
        self.on_warm = on_warm
        self.generation = 0
        self.info: dict[str, Any] | None = None
        self.load_error: str | None = None
        self._lock = threading.RLock()
        self._executor: ProcessPoolExecutor | None = None
        self._warm = 0
        self._ready = threading.Event()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.load_error is None

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout) and self.load_error is None

    def start(self) -> None:
        with self._lock:
            if self._executor is None:
                self._build()

    def submit(self, fn: Callable[..., Any], *args: Any) -> tuple[Future[Any], int]:
        """Run `fn(*args)` in a worker; returns the future and the pool generation it went to."""
        with self._lock:
            if self._executor is None:
                raise RuntimeError(f"{self.name} pool is not running")
            try:
                return self._executor.submit(fn, *args), self.generation
            except BrokenProcessPool:
                log.warning("%s pool was broken: rebuilding it", self.name)
                self._rebuild()
                return self._executor.submit(fn, *args), self.generation

    def restart(self, generation: int | None = None, reason: str = "") -> bool:
        """Kill the processes and build a new pool, unless `generation` says it was already rebuilt. True if rebuilt."""
        with self._lock:
            if self._executor is None or (generation is not None and generation != self.generation):
                return False
            log.warning("restarting %s pool%s", self.name, f": {reason}" if reason else "")
            self._rebuild()
            return True

    def pids(self) -> list[int]:
        """Process ids of the current workers (for operators and tests)."""
        with self._lock:
            processes = getattr(self._executor, "_processes", None) or {}
            return [p.pid for p in processes.values() if p.pid is not None]

    def stop(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            self.generation += 1
            self._ready.clear()
        if executor is not None:
            _kill(executor)

    def _rebuild(self) -> None:
        old = self._executor
        self._build()
        if old is not None:
            _kill(old)

    def _build(self) -> None:
        self.generation += 1
        self._ready.clear()
        self._warm = 0
        self._executor = ProcessPoolExecutor(
            self.size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_process,
            initargs=(self.settings, self.threads),
        )
        generation = self.generation
        for _ in range(self.size):
            self._executor.submit(workers.warm_up).add_done_callback(lambda f, g=generation: self._warmed(f, g))

    def _warmed(self, future: Future[dict[str, Any]], generation: int) -> None:
        with self._lock:
            if generation != self.generation or future.cancelled():
                return
            err = future.exception()
            if err is not None:
                log.warning("%s pool warm-up failed: %s", self.name, err)
                return
            info = future.result()
            if info.get("error"):
                self.load_error = info["error"]
            else:
                self.info = info
            self._warm += 1
            if self._warm >= self.size:
                self._ready.set()
        log.info("%s worker %s loaded its models in %.2f s", self.name, info.get("pid"), info.get("load_seconds", 0.0))
        self.on_warm(self.name, info)


def init_process(settings: ServeSettings, threads: int) -> None:
    """Pool initializer: the worker ends with the server (even one killed with SIGKILL, which cannot
    stop its pools), then loads its models."""
    exit_with_parent()
    workers.init_worker(settings, threads)


def _kill(executor: ProcessPoolExecutor) -> None:
    """Stop an executor now, running calls included (their futures fail with BrokenProcessPool).

    Python 3.11 has no public way to do this (3.14 adds kill_workers), hence `_processes`."""
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, ValueError, AttributeError):
            continue
    executor.shutdown(wait=False, cancel_futures=True)


def threads_per_worker(processes: int) -> int:
    """Torch threads per worker so that all workers together use the machine's cores once."""
    return max(1, (os.cpu_count() or 1) // max(1, processes))
