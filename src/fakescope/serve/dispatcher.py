"""The dispatcher: one thread that feeds queued jobs to the job workers and writes what they answer.

Each tick it stops jobs deleted while running, collects finished analyses, stops those past
job_timeout_s, renews its leases, reaps jobs whose server died (job_queue) and claims more while
a worker is free. A worker process that dies is replaced and its job runs again, up to
MAX_ATTEMPTS starts; jobs stopped for someone else's sake go back to the queue unpenalised.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakescope.detect.failures import internal_error
from fakescope.serve import workers
from fakescope.serve.db import Job, utcnow
from fakescope.serve.job_queue import MAX_ATTEMPTS, JobQueue
from fakescope.serve.metrics import Metrics
from fakescope.serve.pool import WorkerPool
from fakescope.serve.result_cache import StoredResults
from fakescope.serve.stats import record_analysis

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from fakescope.serve.settings import ServeSettings
    from fakescope.serve.storage import BlobStore

log = logging.getLogger(__name__)

RENEW_EVERY_S = 15.0
REAP_EVERY_S = 15.0
TICK_S = 0.5


@dataclass
class _Running:
    job_id: str
    attempts: int
    future: Future[dict[str, Any]]
    generation: int
    started: float = field(default_factory=time.monotonic)


class Dispatcher:
    """Runs the queue on `pool`; `on_finished` is told of every job it finishes or fails."""

    def __init__(
        self,
        settings: ServeSettings,
        sessions: sessionmaker[Session],
        queue: JobQueue,
        pool: WorkerPool,
        blobs: BlobStore,
        results: StoredResults,
        metrics: Metrics,
        *,
        thumbs_for: Callable[[str], Path],
        on_finished: Callable[[Job], None],
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.queue = queue
        self.pool = pool
        self.blobs = blobs
        self.results = results
        self.metrics = metrics
        self.thumbs_for = thumbs_for
        self.on_finished = on_finished
        self._running: dict[str, _Running] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_renew = self._next_reap = 0.0

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="fakescope-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread; the jobs still running go back to the queue for the next start, unpenalised."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            running, self._running = list(self._running.values()), {}
        for r in running:
            self._requeue(r, penalty=False)

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> int:
        return len(self._running)

    def cancel(self, job_id: str) -> None:
        """Stop the job at the next tick if it runs here (its row is already deleted)."""
        with self._lock:
            if job_id in self._running:
                self._cancelled.add(job_id)
                self._wake.set()

    def requeue_expired(self, *, at_start: bool = False) -> int:
        """Queue again the running jobs whose server died, fail those out of attempts (JobQueue.recover)."""
        with self._lock:
            ours = set(self._running)
        requeued, failed = self.queue.recover(at_start=at_start, ours=ours)
        if requeued or failed:
            self._wake.set()
        for job in failed:
            self.on_finished(job)
        return requeued

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:
                log.exception("dispatcher tick failed")
            self._wake.wait(TICK_S)
            self._wake.clear()

    def _tick(self) -> None:
        self._handle_cancelled()
        self._collect_finished()
        self._enforce_timeouts()
        now = time.monotonic()
        if now >= self._next_renew:
            with self._lock:
                ids = list(self._running)
            self.queue.renew_leases(ids)
            self._next_renew = now + RENEW_EVERY_S
        if now >= self._next_reap:
            self.requeue_expired()
            self._next_reap = now + REAP_EVERY_S
        self._claim_more()
        self.metrics.jobs_running.set(len(self._running))

    def _claim_more(self) -> None:
        while len(self._running) < self.settings.workers and self.pool.ready and not self._stopping.is_set():
            claim = self.queue.claim()
            if claim is None:
                return
            path = self.blobs.path_for(claim.sha256)
            if not path.is_file():
                self._fail(claim.job_id, claim.attempts, "the uploaded file is no longer stored")
                continue
            future, generation = self.pool.submit(
                workers.run_detect, str(path), claim.filename, str(self.thumbs_for(claim.job_id))
            )
            future.add_done_callback(lambda _f: self._wake.set())
            with self._lock:
                self._running[claim.job_id] = _Running(claim.job_id, claim.attempts, future, generation)
            log.info("job %s started (attempt %d)", claim.job_id, claim.attempts)

    def _collect_finished(self) -> None:
        with self._lock:
            finished = [r for r in self._running.values() if r.future.done()]
            for r in finished:
                del self._running[r.job_id]
        for r in finished:
            err = r.future.exception() if not r.future.cancelled() else BrokenProcessPool("cancelled")
            if err is None:
                self._finish(r, r.future.result())
            elif isinstance(err, BrokenProcessPool):
                log.warning("job %s: its worker process died (attempt %d)", r.job_id, r.attempts)
                if self.pool.restart(r.generation, "a worker process died"):
                    self.metrics.worker_restarts.labels("jobs").inc()
                if r.attempts >= MAX_ATTEMPTS:
                    self._fail(r.job_id, r.attempts, f"the analysis crashed its worker process {r.attempts} times")
                else:
                    self._requeue(r, penalty=True)
            else:
                log.error("job %s failed in its worker: %r", r.job_id, err)
                self._fail(r.job_id, r.attempts, internal_error(err))

    def _enforce_timeouts(self) -> None:
        limit = self.settings.job_timeout_s
        now = time.monotonic()
        with self._lock:
            late = [r for r in self._running.values() if now - r.started > limit and not r.future.done()]
        for r in late:
            log.warning("job %s timed out after %g s", r.job_id, limit)
            self._stop_running(r)
            self._fail(r.job_id, r.attempts, f"timed out after {limit:g} s")

    def _handle_cancelled(self) -> None:
        with self._lock:
            cancelled = [self._running[i] for i in self._cancelled if i in self._running]
            self._cancelled.clear()
        for r in cancelled:
            log.info("job %s deleted while running: stopping it", r.job_id)
            self._stop_running(r)
            shutil.rmtree(self.thumbs_for(r.job_id), ignore_errors=True)

    def _stop_running(self, victim: _Running) -> None:
        """Kill the pool that runs `victim`; the other jobs it was running go back to the queue unpenalised."""
        with self._lock:
            self._running.pop(victim.job_id, None)
            others = [r for r in self._running.values() if r.generation == victim.generation]
            for r in others:
                del self._running[r.job_id]
        if self.pool.restart(victim.generation, f"stopping job {victim.job_id}"):
            self.metrics.worker_restarts.labels("jobs").inc()
        for r in others:
            self._requeue(r, penalty=False)

    def _finish(self, r: _Running, data: dict[str, Any]) -> None:
        with self.sessions.begin() as session:
            job = session.get(Job, r.job_id)
            if job is None or job.status != "running" or job.attempts != r.attempts:
                log.info("job %s finished but was deleted or taken over meanwhile", r.job_id)
                if job is None:
                    shutil.rmtree(self.thumbs_for(r.job_id), ignore_errors=True)
                return
            self.results.fill(job, data)
            job.finished_at, job.lease_until = utcnow(), None
            record_analysis(
                session, user=job.owner, job_id=job.id, verdict=job.verdict, media_type=job.media_type, status=data.get("status")
            )
        log.info("job %s done: %s", r.job_id, job.verdict or data.get("status"))
        self.on_finished(job)

    def _fail(self, job_id: str, attempts: int, error: str) -> None:
        with self.sessions.begin() as session:
            job = session.get(Job, job_id)
            if job is None or job.status != "running" or job.attempts != attempts:
                return
            job.status, job.error, job.finished_at, job.lease_until = "failed", error, utcnow(), None
            record_analysis(session, user=job.owner, job_id=job.id, verdict=None, media_type=job.media_type, status="error")
        log.warning("job %s failed: %s", job_id, error)
        self.on_finished(job)

    def _requeue(self, r: _Running, *, penalty: bool) -> None:
        self.queue.requeue(r.job_id, r.attempts, penalty=penalty)
        self._wake.set()
